"""A1111 v1.10.1 (82a973c0). Mirrors ``scripts/xyz_grid.py``; the body is in ``standin_common.xyz_grid``.

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


class Script(common.XYZGridScript, scripts.Script):
    axis_options = axis_options
