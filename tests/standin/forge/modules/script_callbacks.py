"""Forge dfdcbab6. Mirrors ``modules/script_callbacks.py``: see standin_common.script_callbacks."""
from standin_common.script_callbacks import *  # noqa: F401,F403
