"""Forge dfdcbab6. Mirrors ``modules/ui_components.py``: ``InputAccordion`` is a factory of ``InputAccordionImpl``."""
from standin_common.ui_components import InputAccordionImpl


def InputAccordion(value=None, **kwargs):  # noqa: N802 - the host's name
    return InputAccordionImpl(value=value, **kwargs)
