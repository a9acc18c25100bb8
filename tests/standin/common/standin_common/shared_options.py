"""The options of ``modules/shared_options.py`` that A1111 v1.10.1 and Forge dfdcbab6 define alike
(the ones the extension or the stand-in reads).  Each host's ``modules/shared.py`` adds the two
that differ: ``CLIP_stop_at_last_layers`` and the quicksettings list."""

from __future__ import annotations

from standin_common.options import OptionInfo


def common_options() -> dict:
    return {
        "sd_model_checkpoint": OptionInfo(None, "Stable Diffusion checkpoint"),
        "sdxl_clip_l_skip": OptionInfo(False, "Clip skip SDXL"),
        "comma_padding_backtrack": OptionInfo(20, "Prompt word wrap length limit"),
        "emphasis": OptionInfo("Original", "Emphasis mode", infotext="Emphasis"),
        "use_old_scheduling": OptionInfo(False, "Use old prompt editing timelines"),
        "persistent_cond_cache": OptionInfo(True, "Persistent cond cache"),
        "hires_fix_use_firstpass_conds": OptionInfo(False, "For hires fix, calculate conds of second pass using extra networks of first pass"),
        "sdxl_crop_left": OptionInfo(0, "SDXL crop left"),
        "sdxl_crop_top": OptionInfo(0, "SDXL crop top"),
        "fp8_storage": OptionInfo("Disable", "FP8 weight"),
        "cache_fp16_weight": OptionInfo(False, "Cache FP16 weight for LoRA"),
        "textual_inversion_add_hashes_to_infotext": OptionInfo(True, "Add TI hashes to infotext"),
        "return_grid": OptionInfo(True, "Show grid in gallery"),
        "grid_only_if_multiple": OptionInfo(True, "Do not save grids consisting of one picture"),
        "infotext_skip_pasting": OptionInfo([], "Disregard fields from pasted infotext"),
    }
