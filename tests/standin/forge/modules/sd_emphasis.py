"""Mirrors ``modules/sd_emphasis.py`` (Forge dfdcbab6)."""
from standin_common.emphasis import *  # noqa: F401,F403
