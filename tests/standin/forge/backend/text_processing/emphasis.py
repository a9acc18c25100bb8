"""Forge dfdcbab6. Mirrors ``backend/text_processing/emphasis.py`` (the same classes as A1111's sd_emphasis)."""
from standin_common.emphasis import *  # noqa: F401,F403
