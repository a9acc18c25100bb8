"""Forge dfdcbab6. Mirrors ``modules/ui_loadsave.py``: see standin_common.ui_loadsave (plus the Textbox fix)."""
from standin_common import ui_loadsave as _common
from standin_common.ui_loadsave import *  # noqa: F401,F403
from standin_common.ui_loadsave import UiLoadsave  # noqa: F401

_common.TEXTBOX_NONE_AS_EMPTY = True
