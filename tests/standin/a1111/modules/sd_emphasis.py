"""Mirrors ``modules/sd_emphasis.py`` (A1111 v1.10.1)."""
from standin_common.emphasis import *  # noqa: F401,F403
