"""Forge dfdcbab6. Mirrors ``modules/scripts.py``: see standin_common.scripts."""
from standin_common.scripts import *  # noqa: F401,F403
from standin_common.scripts import load_module, register_scripts_from_file, reported_errors, scripts_data  # noqa: F401
