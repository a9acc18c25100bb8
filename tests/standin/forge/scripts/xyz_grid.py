"""Forge dfdcbab6. Mirrors ``scripts/xyz_grid.py``; the body is in ``standin_common.xyz_grid``.

Loaded like the host loads it: ``script_loading.load_module`` under the name ``"xyz_grid.py"``.
"""

from modules import scripts
from standin_common import xyz_grid as common
from standin_common.xyz_grid import (  # noqa: F401  (the names extensions use on this module)
    AxisInfo,
    AxisOption,
    AxisOptionImg2Img,
    AxisOptionTxt2Img,
    apply_field,
    apply_override,
    apply_prompt,
    confirm_range,
    csv_string_to_list_strip,
    do_nothing,
    format_nothing,
    format_value,
    format_value_add_label,
    list_to_csv_string,
    str_permutations,
)

axis_options = common.default_axis_options()
# Forge adds this axis after "CFG Scale"
axis_options.insert(next(i for i, x in enumerate(axis_options) if x.label == "CFG Scale") + 1,
                    AxisOption("Distilled CFG Scale", float, apply_field("distilled_cfg_scale")))


class Script(common.XYZGridScript, scripts.Script):
    axis_options = axis_options
