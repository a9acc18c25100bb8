"""Mirrors ``modules/shared.py`` + the options of ``modules/shared_options.py`` we read (reForge 3b56b268).

As A1111 v1.10.1 (``../a1111/modules/shared.py``), plus reForge's Dynamic clip skip options
(``shared_options.py:204-207``) and its default quicksettings (``:286``: the checkpoint, the VAE and
Clip skip).  ``sdxl_clip_l_skip`` is still offered, and ``forge_clip`` never reads it.
"""

from __future__ import annotations

import types

from modules.options import OptionInfo, Options, options_section
from standin_common.shared_options import common_options

options_templates = {}
options_templates.update(options_section(("sd", "Stable Diffusion", "sd"), {
    **common_options(),
    "CLIP_stop_at_last_layers": OptionInfo(1, "Clip skip", None, {"minimum": 1, "maximum": 12, "step": 1}, infotext="Clip skip"),
    "dynamic_clip_skip_enabled": OptionInfo(False, "Dynamic clip skip ramp", None),
    "dynamic_clip_skip_start": OptionInfo(4, "Dynamic clip skip: starting clip skip", None, {"minimum": 2, "maximum": 12, "step": 1}),
    "dynamic_clip_skip_use_schedule": OptionInfo(False, "Dynamic clip skip: use custom schedule", None),
    "dynamic_clip_skip_schedule_values": OptionInfo("", "Dynamic clip skip: schedule (comma-separated)"),
    "quicksettings_list": OptionInfo(["sd_model_checkpoint", "sd_vae", "CLIP_stop_at_last_layers"], "Quicksettings list"),
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
