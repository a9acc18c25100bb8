"""Mirrors ``InputAccordion`` of ``modules/ui_components.py``: A1111 v1.10.1 (a class) / Forge dfdcbab6 (``InputAccordionImpl`` behind a factory).

A hidden checkbox whose value is the accordion's open state; the host's
``javascript/inputAccordion.js`` keeps the two in step in the browser (the browser tests load
``tests/standin/common/inputAccordion.js``, our own re-implementation of that behaviour).
"""

from __future__ import annotations

import functools

import gradio as gr

GRADIO_4 = int(gr.__version__.split(".")[0]) >= 4


class InputAccordionImpl(gr.Checkbox):
    global_index = 0

    # as Forge does: gradio 4 builds the config from the __init__ signature, which must be Checkbox's
    @functools.wraps(gr.Checkbox.__init__)
    def __init__(self, value=None, **kwargs):
        self.accordion_id = kwargs.get("elem_id")
        if self.accordion_id is None:
            self.accordion_id = f"input-accordion-{InputAccordionImpl.global_index}"
            InputAccordionImpl.global_index += 1
        kwargs_checkbox = {**kwargs, "elem_id": f"{self.accordion_id}-checkbox", "visible": False}
        super().__init__(value, **kwargs_checkbox)
        js = 'function(checked){ inputAccordionChecked("' + self.accordion_id + '", checked); }'
        self.change(fn=None, inputs=[self], **({"js": js} if GRADIO_4 else {"_js": js}))
        kwargs_accordion = {
            **kwargs,
            "elem_id": self.accordion_id,
            "label": kwargs.get("label", "Accordion"),
            "elem_classes": ["input-accordion"],
            "open": value,
        }
        kwargs_accordion.pop("info", None)
        self.accordion = gr.Accordion(**kwargs_accordion)

    def extra(self):
        return gr.Column(elem_id=self.accordion_id + "-extra", elem_classes="input-accordion-extra", min_width=0)

    def __enter__(self):
        self.accordion.__enter__()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.accordion.__exit__(exc_type, exc_val, exc_tb)

    def get_block_name(self):
        return "checkbox"
