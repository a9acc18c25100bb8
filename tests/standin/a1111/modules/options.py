"""Mirrors ``modules/options.py`` (A1111 v1.10.1): see standin_common.options."""
from standin_common.options import OptionHTML, OptionInfo, Options, options_section  # noqa: F401
