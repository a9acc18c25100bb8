"""Mirrors ``modules/shared.py`` + the options of ``modules/shared_options.py`` we read (A1111 v1.10.1).

``CLIP_stop_at_last_layers`` is an int slider 1..12 with infotext "Clip skip"; ``sdxl_clip_l_skip``
has no infotext.  ``opts.data`` starts from config.json when one is loaded (see ``load_config``).
"""

from __future__ import annotations

import types

from modules.options import OptionInfo, Options, options_section

options_templates = {}
options_templates.update(options_section(("sd", "Stable Diffusion", "sd"), {
    "sd_model_checkpoint": OptionInfo(None, "Stable Diffusion checkpoint"),
    "sdxl_clip_l_skip": OptionInfo(False, "Clip skip SDXL"),
    "CLIP_stop_at_last_layers": OptionInfo(1, "Clip skip", None, {"minimum": 1, "maximum": 12, "step": 1}, infotext="Clip skip"),
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
    "infotext_skip_pasting": OptionInfo([], "Disregard fields from pasted infotext"),
    "quicksettings_list": OptionInfo(["sd_model_checkpoint"], "Quicksettings list"),
}))

opts = Options(options_templates, ())
sd_model = None
config_filename = "config.json"
cmd_opts = types.SimpleNamespace(no_prompt_history=True, api=False, nowebui=False)
state = types.SimpleNamespace(interrupted=False, skipped=False, stopping_generation=False, job="", job_count=0)


def load_config(filename):
    """What webui start-up does: ``opts.load(config_filename)``."""
    global config_filename
    config_filename = str(filename)
    opts.load(config_filename)
