"""A1111 v1.10.1 (82a973c0). Mirrors ``modules/infotext_utils.py``: see standin_common.infotext_utils."""
import sys

from standin_common.infotext_utils import *  # noqa: F401,F403
from standin_common.infotext_utils import (  # noqa: F401
    PasteField,
    parse_generation_parameters,
    paste_fields,
    paste_function,
    quote,
    unquote,
)

sys.modules["modules.generation_parameters_copypaste"] = sys.modules[__name__]  # alias for the old name
