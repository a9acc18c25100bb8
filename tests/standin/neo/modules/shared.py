"""Mirrors ``modules/shared.py`` + the options of ``modules/shared_options.py`` we read (Forge Neo, copy 7862a96).

Unlike Forge, ``CLIP_stop_at_last_layers`` is a visible Settings slider "Clip Skip" 1..12
(``modules_forge/shared_options.py``; the top bar's slider writes the same option), quicksettings
are ``quicksettings_list`` again, and the FP8 options (``fp8_storage``, ``cache_fp16_weight``) are gone.
"""

from __future__ import annotations

import types

from modules.options import OptionInfo, Options, options_section
from standin_common.shared_options import common_options

options_templates = {}
options_templates.update(options_section(("sd", "Stable Diffusion", "sd"), {
    **{k: v for k, v in common_options().items() if k not in ("fp8_storage", "cache_fp16_weight")},
    "CLIP_stop_at_last_layers": OptionInfo(1, "Clip Skip", None, {"minimum": 1, "maximum": 12, "step": 1}, infotext="Clip skip"),
    "quicksettings_list": OptionInfo(["sd_model_checkpoint"], "Quicksettings list"),
}))

opts = Options(options_templates, ())
sd_model = None
config_filename = "config.json"
cmd_opts = types.SimpleNamespace(no_prompt_history=True, api=False, nowebui=False, lora_dirs=[])  # cmd_args.py:72
state = types.SimpleNamespace(interrupted=False, skipped=False, stopping_generation=False, job="", job_count=0)


def load_config(filename):
    """What webui start-up does: ``opts.load(config_filename)``."""
    global config_filename
    config_filename = str(filename)
    opts.load(config_filename)
