"""Forge Neo (copy 7862a96). Mirrors ``modules/processing.py``: Forge's (``../forge/modules/processing.py``),
except that ``cached_params`` no longer keys the FP8 options (``:415-433``), which Neo dropped.
``get_conds_with_caching``, ``setup_conds``, the hires conds and ``create_infotext``'s "Clip skip"
(``int(...)``, left out at 1) are Forge's; Neo writes ``Version: neo``.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from standin_common.processing import Processed, create_infotext, fix_seed, process_images, process_images_inner  # noqa: F401

# Forge's file under a name of its own (``standin.purge`` forgets it with the rest of ``standin_common``)
_spec = importlib.util.spec_from_file_location("standin_common.forge_processing",
                                               Path(__file__).resolve().parents[2] / "forge" / "modules" / "processing.py")
forge = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(forge)


def _neo_key(self, required_prompts, steps, extra_network_data, hires_steps=None, use_old_scheduling=False):
    from modules import shared

    opts = shared.opts
    return (required_prompts, self.distilled_cfg_scale, self.hr_distilled_cfg, steps, hires_steps, use_old_scheduling,
            opts.CLIP_stop_at_last_layers, shared.sd_model.sd_checkpoint_info, extra_network_data, opts.sdxl_crop_left,
            opts.sdxl_crop_top, self.width, self.height, opts.emphasis)


@dataclass(repr=False)
class StableDiffusionProcessing(forge.StableDiffusionProcessing):
    cached_params = _neo_key


@dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(forge.StableDiffusionProcessingTxt2Img):
    cached_params = _neo_key


@dataclass(repr=False)
class StableDiffusionProcessingImg2Img(forge.StableDiffusionProcessingImg2Img):
    cached_params = _neo_key
