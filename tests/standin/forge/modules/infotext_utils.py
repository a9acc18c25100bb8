"""Forge dfdcbab6. Mirrors ``modules/infotext_utils.py``: see standin_common.infotext_utils.

Forge differs in ``parse_generation_parameters``: before reading the key/value line, a line that
mentions both "Civitai" and "FLUX" loses any "Clip skip: 0, " … "Clip skip: 8, " (Civitai writes
Clip skip into FLUX metadata, where it means nothing).  The VAE/TE module handling is left out.
"""
import sys

from standin_common import infotext_utils as _common
from standin_common.infotext_utils import *  # noqa: F401,F403
from standin_common.infotext_utils import (  # noqa: F401
    PasteField,
    parse_generation_parameters,
    paste_fields,
    paste_function,
    quote,
    unquote,
)


def clean_last_line(lastline):
    if "Civitai" in lastline and "FLUX" in lastline:
        for n in range(9):
            lastline = lastline.replace(f"Clip skip: {n}, ", "")
    return lastline


_common.clean_last_line = clean_last_line  # the shared parser calls the host's version
sys.modules["modules.generation_parameters_copypaste"] = sys.modules[__name__]  # alias for the old name
