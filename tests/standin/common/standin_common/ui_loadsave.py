"""Mirrors ``modules/ui_loadsave.py`` (A1111 v1.10.1 82a973c0 lines 14-139; Forge dfdcbab6 the same
plus its gradio-4 Textbox fix at lines 56-59): the registry of UI defaults in ``ui-config.json``.

Kept as the host has it: ``add_block`` walks a tab's blocks and registers every component with a
label (or a button by its text) under ``<tab>/<label>`` — prefixed ``customscript/<script file>/``
for a script's ``ui()`` controls, which ``ScriptRunner`` marks with ``custom_script_source`` —
and ``add_component``'s ``apply_field``: a key already in the file (or registered earlier in this
run) is *applied* to the component, so two components of one script with one label share one
value, whatever its type.  ``InputAccordion`` saves its open state under ``<label>/value``.
Left out: the Settings-page "defaults" editor (``ui_view``/``ui_apply``), writing the file
(``dump_defaults`` writes ``ui_settings`` as JSON), tabs.
"""

from __future__ import annotations

import json

import gradio as gr
from modules.ui_components import InputAccordion

#: Forge stores ``''`` for a Textbox whose value is None (gradio 4)
TEXTBOX_NONE_AS_EMPTY = False


def radio_choices(comp):
    return [x[0] if isinstance(x, tuple) else x for x in getattr(comp, "choices", [])]


class UiLoadsave:
    def __init__(self, filename):
        self.filename = filename
        self.ui_settings = {}
        self.component_mapping = {}
        self.error_loading = False
        self.finalized_ui = False
        try:
            self.ui_settings = self.read_from_file()
        except FileNotFoundError:
            pass
        except Exception:
            self.error_loading = True

    def add_component(self, path, x):
        assert not self.finalized_ui

        def apply_field(obj, field, condition=None, init_field=None):
            key = f"{path}/{field}"
            if getattr(obj, "custom_script_source", None) is not None:
                key = f"customscript/{obj.custom_script_source}/{key}"
            if getattr(obj, "do_not_save_to_config", False):
                return
            saved_value = self.ui_settings.get(key, None)
            if isinstance(obj, gr.Accordion) and isinstance(x, InputAccordion) and field == "value":
                field = "open"
            if saved_value is None:
                value = getattr(obj, field)
                if TEXTBOX_NONE_AS_EMPTY and isinstance(obj, gr.Textbox) and field == "value" and value is None:
                    value = ""
                self.ui_settings[key] = value
            elif condition and not condition(saved_value):
                pass
            else:
                if isinstance(obj, gr.Textbox) and field == "value":
                    saved_value = str(saved_value)
                elif isinstance(obj, gr.Number) and field == "value":
                    try:
                        saved_value = float(saved_value)
                    except ValueError:
                        return
                setattr(obj, field, saved_value)
                if init_field is not None:
                    init_field(saved_value)
            if field == "value" and key not in self.component_mapping:
                self.component_mapping[key] = obj

        if type(x) in [gr.Slider, gr.Radio, gr.Checkbox, gr.Textbox, gr.Number, gr.Dropdown, gr.Button] and x.visible:
            apply_field(x, "visible")
        if type(x) == gr.Slider:  # noqa: E721 (the host compares exact types)
            apply_field(x, "value")
            apply_field(x, "minimum")
            apply_field(x, "maximum")
            apply_field(x, "step")
        if type(x) == gr.Radio:  # noqa: E721
            apply_field(x, "value", lambda val: val in radio_choices(x))
        if type(x) == gr.Checkbox:  # noqa: E721
            apply_field(x, "value")
        if type(x) == gr.Textbox:  # noqa: E721
            apply_field(x, "value")
        if type(x) == gr.Number:  # noqa: E721
            apply_field(x, "value")
        if type(x) == InputAccordion:  # noqa: E721
            if hasattr(x, "custom_script_source"):
                x.accordion.custom_script_source = x.custom_script_source
            if x.accordion.visible:
                apply_field(x.accordion, "visible")
            apply_field(x, "value")
            apply_field(x.accordion, "value")

    def add_block(self, x, path=""):
        if hasattr(x, "children"):
            for c in x.children:
                self.add_block(c, path)
        elif x.label is not None:
            self.add_component(f"{path}/{x.label}", x)
        elif isinstance(x, gr.Button) and x.value is not None:
            self.add_component(f"{path}/{x.value}", x)

    def read_from_file(self):
        with open(self.filename, encoding="utf8") as file:
            return json.load(file)

    def write_to_file(self, current_ui_settings):
        with open(self.filename, "w", encoding="utf8") as file:
            json.dump(current_ui_settings, file, indent=4, ensure_ascii=False)

    def dump_defaults(self):
        self.write_to_file(self.ui_settings)
