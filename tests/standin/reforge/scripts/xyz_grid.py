"""reForge 3b56b268. Mirrors ``scripts/xyz_grid.py``: A1111 v1.10.1's (the body is in
``standin_common.xyz_grid``) with reForge's four Dynamic clip skip axes after "Clip skip" (``:269-272``).

Loaded like the host loads it: ``script_loading.load_module`` under the name ``"xyz_grid.py"``.
"""

from modules import scripts
from standin_common import xyz_grid as common
from standin_common.xyz_grid import *  # noqa: F403  (the names extensions use on this module: A1111's)
from standin_common.xyz_grid import AxisOption, apply_override, confirm_range


def boolean_choice(reverse: bool = False):
    def choice():
        return ["False", "True"] if reverse else ["True", "False"]

    return choice


axis_options = common.default_axis_options()
axis_options[next(i for i, x in enumerate(axis_options) if x.label == "Clip skip") + 1:0] = [
    AxisOption("Dynamic clip skip", str, apply_override("dynamic_clip_skip_enabled", boolean=True), choices=boolean_choice(reverse=True)),
    AxisOption("Dynamic clip skip start", int, apply_override("dynamic_clip_skip_start"),
               confirm=confirm_range(2, 12, "Dynamic clip skip start")),
    AxisOption("Dynamic clip skip use schedule", str, apply_override("dynamic_clip_skip_use_schedule", boolean=True),
               choices=boolean_choice(reverse=True)),
    AxisOption("Dynamic clip skip schedule", str, apply_override("dynamic_clip_skip_schedule_values")),
]


class Script(common.XYZGridScript, scripts.Script):
    axis_options = axis_options
