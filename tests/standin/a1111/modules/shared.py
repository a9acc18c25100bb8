"""Mirrors ``modules/shared.py`` + the options of ``modules/shared_options.py`` we read (A1111 v1.10.1).

``CLIP_stop_at_last_layers`` is an int slider 1..12 with infotext "Clip skip"; ``sdxl_clip_l_skip``
has no infotext.  ``opts.data`` starts from config.json when one is loaded (see ``load_config``).
"""

from __future__ import annotations

import types

from modules.options import OptionInfo, Options, options_section
from standin_common.shared_options import common_options

options_templates = {}
options_templates.update(options_section(("sd", "Stable Diffusion", "sd"), {
    **common_options(),
    "CLIP_stop_at_last_layers": OptionInfo(1, "Clip skip", None, {"minimum": 1, "maximum": 12, "step": 1}, infotext="Clip skip"),
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
