"""A1111 v1.10.1. Mirrors ``modules/ui_components.py``: ``InputAccordion`` is a class."""
from standin_common.ui_components import InputAccordionImpl as InputAccordion  # noqa: F401
