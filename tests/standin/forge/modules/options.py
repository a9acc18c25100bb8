"""Mirrors ``modules/options.py`` (Forge dfdcbab6): see standin_common.options."""
from standin_common.options import OptionHTML, OptionInfo, Options, options_section  # noqa: F401
