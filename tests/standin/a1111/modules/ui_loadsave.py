"""A1111 v1.10.1. Mirrors ``modules/ui_loadsave.py``: see standin_common.ui_loadsave."""
from standin_common.ui_loadsave import *  # noqa: F401,F403
from standin_common.ui_loadsave import UiLoadsave  # noqa: F401
