"""Mirrors ``modules/infotext_utils.py`` (A1111 v1.10.1 82a973c04367123ae98bd9abdf80d9eda9b910e2;
Forge dfdcbab685e57677014f05a3309b48cc87383167 is the same for these, plus its Civitai-FLUX
clean-up in ``forge/modules/infotext_utils.py``).

Kept as the host has them: the ``re_param`` regex and ``quote``/``unquote``; ``PasteField``
(a ``(component, target)`` tuple with ``label``/``function``/``api``); ``paste_fields`` per tab and
``add_paste_fields``; ``parse_generation_parameters`` (prompt / "Negative prompt:" / last line of
``key: value`` pairs, ``WxH`` split into ``-1``/``-2``, **"Clip skip": "1" added when missing**, the
other defaults it adds, ``opts.infotext_skip_pasting`` dropped); ``get_override_settings`` and
``create_override_settings_dict`` (the ``OptionInfo(infotext=…)`` mapping, values cast with
``opts.cast_value``); ``connect_paste``'s paste function (parse → ``infotext_pasted_callback`` →
one update per field: a callable key is called with the params and its exception reported, a
``None`` is ``gr.update()``, a plain value is cast to the component's value type, and the
override dropdown shows the settings not already bound to a field); the "Send to" copy of
``paste_field_names``.  Left out: params.txt, styles extraction, images, hires back-compat.
"""

from __future__ import annotations

import json
import re

import gradio as gr
from modules import script_callbacks, scripts, shared

re_param_code = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)
re_imagesize = re.compile(r"^(\d+)x(\d+)$")
type_of_gr_update = type(gr.update())


class PasteField(tuple):
    def __new__(cls, component, target, *, api=None):
        return super().__new__(cls, (component, target))

    def __init__(self, component, target, *, api=None):
        super().__init__()
        self.api = api
        self.component = component
        self.label = target if isinstance(target, str) else None
        self.function = target if callable(target) else None


paste_fields: dict[str, dict] = {}


def reset():
    paste_fields.clear()


def quote(text):
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


def add_paste_fields(tabname, init_img, fields, override_settings_component=None):
    if fields:
        for i in range(len(fields)):
            if not isinstance(fields[i], PasteField):
                fields[i] = PasteField(*fields[i])
    paste_fields[tabname] = {"init_img": init_img, "fields": fields, "override_settings_component": override_settings_component}


def clean_last_line(lastline):
    """Forge rewrites Civitai-FLUX metadata here; A1111 leaves the line as it is."""
    return lastline


_DEFAULTS = {
    "Hires resize-1": 0, "Hires resize-2": 0, "Hires sampler": "Use same sampler",
    "Hires schedule type": "Use same scheduler", "Hires checkpoint": "Use same checkpoint",
    "Hires prompt": "", "Hires negative prompt": "", "Mask mode": "Inpaint masked",
    "Masked content": "original", "Inpaint area": "Whole picture", "Masked area padding": 32,
    "RNG": "GPU", "Schedule type": "Automatic", "Schedule max sigma": 0, "Schedule min sigma": 0,
    "Schedule rho": 0, "VAE Encoder": "Full", "VAE Decoder": "Full", "FP8 weight": "Disable",
}


def parse_generation_parameters(x: str, skip_fields: list[str] | None = None):
    if skip_fields is None:
        skip_fields = shared.opts.infotext_skip_pasting
    res = {}
    prompt = ""
    negative_prompt = ""
    done_with_prompt = False
    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative_prompt += ("" if negative_prompt == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    lastline = clean_last_line(lastline)
    for k, v in re_param.findall(lastline):
        try:
            if v[0] == '"' and v[-1] == '"':
                v = unquote(v)
            m = re_imagesize.match(v)
            if m is not None:
                res[f"{k}-1"] = m.group(1)
                res[f"{k}-2"] = m.group(2)
            else:
                res[k] = v
        except Exception:
            print(f'Error parsing "{k}: {v}"')
    res["Prompt"] = prompt
    res["Negative prompt"] = negative_prompt
    # Missing CLIP skip means it was set to 1 (the default)
    if "Clip skip" not in res:
        res["Clip skip"] = "1"
    for key, value in _DEFAULTS.items():
        res.setdefault(key, value)
    if "Cache FP16 weight for LoRA" not in res and res["FP8 weight"] != "Disable":
        res["Cache FP16 weight for LoRA"] = False
    if "Refiner switch by sampling steps" not in res:
        res["Refiner switch by sampling steps"] = False
    for key in skip_fields:
        res.pop(key, None)
    return res


infotext_to_setting_name_mapping = []


def create_override_settings_dict(text_pairs):
    res = {}
    params = {}
    for pair in text_pairs:
        k, v = pair.split(":", maxsplit=1)
        params[k] = v.strip()
    mapping = [(info.infotext, k) for k, info in shared.opts.data_labels.items() if info.infotext]
    for param_name, setting_name in mapping + infotext_to_setting_name_mapping:
        value = params.get(param_name, None)
        if value is None:
            continue
        res[setting_name] = shared.opts.cast_value(setting_name, value)
    return res


def get_override_settings(params, *, skip_fields=None):
    res = []
    mapping = [(info.infotext, k) for k, info in shared.opts.data_labels.items() if info.infotext]
    for param_name, setting_name in mapping + infotext_to_setting_name_mapping:
        if param_name in (skip_fields or {}):
            continue
        v = params.get(param_name, None)
        if v is None:
            continue
        v = shared.opts.cast_value(setting_name, v)
        current_value = getattr(shared.opts, setting_name, None)
        if v == current_value:
            continue
        res.append((param_name, setting_name, v))
    return res


def paste_function(paste_fields, override_settings_component=None):
    """The ``paste_func`` that ``connect_paste`` binds to the button (nested there in the host).

    Returns ``(function, outputs)``; the function maps an infotext to one update per output.
    """

    def paste_func(prompt):
        params = parse_generation_parameters(prompt)
        script_callbacks.infotext_pasted_callback(prompt, params)
        res = []
        for output, key in fields:
            if callable(key):
                try:
                    v = key(params)
                except Exception:
                    scripts.report(f"Error executing {key}")
                    v = None
            else:
                v = params.get(key, None)
            if v is None:
                res.append(gr.update())
            elif isinstance(v, type_of_gr_update):
                res.append(v)
            else:
                try:
                    valtype = type(output.value)
                    if valtype == bool and v == "False":  # noqa: E721 (the host compares types with ==)
                        val = False
                    elif valtype == int:  # noqa: E721
                        val = float(v)
                    else:
                        val = valtype(v)
                    res.append(gr.update(value=val))
                except Exception:
                    res.append(gr.update())
        return res

    fields = list(paste_fields)
    if override_settings_component is not None:
        already_handled_fields = {key: 1 for _, key in paste_fields}

        def paste_settings(params):
            vals = get_override_settings(params, skip_fields=already_handled_fields)
            vals_pairs = [f"{infotext_text}: {value}" for infotext_text, setting_name, value in vals]
            return gr.update(value=vals_pairs, choices=vals_pairs, visible=bool(vals_pairs))

        fields = fields + [(override_settings_component, paste_settings)]
    return paste_func, [x[0] for x in fields]


def connect_paste(button, paste_fields, input_comp, override_settings_component, tabname):
    func, outputs = paste_function(paste_fields, override_settings_component)
    button.click(fn=func, inputs=[input_comp], outputs=outputs, show_progress=False)


def send_to_fields(source_fields, fields, paste_field_names):
    """``connect_paste_params_buttons`` with ``source_tabname``: copy components whose infotext
    name is in the list, from one tab's fields to the other's (returns (inputs, outputs))."""
    names = ["Prompt", "Negative prompt", "Steps", "Face restoration"] + list(paste_field_names)
    return ([field for field, name in source_fields if name in names], [field for field, name in fields if name in names])
