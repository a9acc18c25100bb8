"""Mirrors ``modules/prompt_parser.py`` (A1111 v1.10.1)."""
from standin_common.prompt_parser import *  # noqa: F401,F403
