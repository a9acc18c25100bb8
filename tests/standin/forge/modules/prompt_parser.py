"""Mirrors ``modules/prompt_parser.py`` (Forge dfdcbab6)."""
from standin_common.prompt_parser import *  # noqa: F401,F403
