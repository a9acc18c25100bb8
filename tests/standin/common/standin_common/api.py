"""Mirrors ``modules/api/api.py`` ``Api.apply_infotext`` and ``Api.init_script_args`` (A1111 v1.10.1
82a973c0 lines 335-430; Forge dfdcbab6 lines 337-443, the same but for pydantic 2's field
annotation) — how the API's ``infotext`` field reaches the scripts.

Kept as the host has it: ``parse_generation_parameters`` *without* ``on_infotext_pasted``
callbacks; the request's own fields first; ``get_override_settings(params)`` on the raw params
(so the host casts "Clip skip" itself, before any script sees the text); then each script's
paste field, called with the same params, its value cast to the type of the component's value,
into ``mentioned_script_args``; ``init_script_args``: the defaults, then the infotext's script
args, then ``alwayson_scripts``.  Left out: the request model's own fields (none of ours has
``api``), selectable scripts, HTTP errors.
"""

from __future__ import annotations

from modules import infotext_utils


class Request:
    """The parts of ``StableDiffusionTxt2ImgProcessingAPI`` that ``apply_infotext`` reads."""

    __fields__: dict = {}

    def __init__(self, infotext="", override_settings=None, alwayson_scripts=None):
        self.infotext = infotext
        self.override_settings = override_settings
        self.alwayson_scripts = alwayson_scripts or {}

    def dict(self, exclude_unset=False):
        return {}


class Api:
    def apply_infotext(self, request, tabname, *, script_runner=None, mentioned_script_args=None):
        if not request.infotext:
            return {}
        possible_fields = infotext_utils.paste_fields[tabname]["fields"]
        set_fields = request.dict(exclude_unset=True)
        params = infotext_utils.parse_generation_parameters(request.infotext)

        def get_field_value(field, params):
            value = field.function(params) if field.function else params.get(field.label)
            if value is None:
                return None
            if field.api in request.__fields__:
                target_type = request.__fields__[field.api]
            else:
                target_type = type(field.component.value)
            if target_type == type(None):  # noqa: E721 (the host compares types with ==)
                return None
            if isinstance(value, dict) and value.get("__type__") == "generic_update":
                value = value.get("value")
            if value is not None and not isinstance(value, target_type):
                value = target_type(value)
            return value

        for field in possible_fields:
            if not field.api or field.api in set_fields:
                continue
            value = get_field_value(field, params)
            if value is not None:
                setattr(request, field.api, value)
        if request.override_settings is None:
            request.override_settings = {}
        overridden_settings = infotext_utils.get_override_settings(params)
        for _, setting_name, value in overridden_settings:
            if setting_name not in request.override_settings:
                request.override_settings[setting_name] = value
        if script_runner is not None and mentioned_script_args is not None:
            indexes = {v: i for i, v in enumerate(script_runner.inputs)}
            script_fields = ((field, indexes[field.component]) for field in possible_fields if field.component in indexes)
            for field, index in script_fields:
                value = get_field_value(field, params)
                if value is None:
                    continue
                mentioned_script_args[index] = value
        return params

    def init_script_args(self, request, default_script_args, script_runner, *, input_script_args=None):
        script_args = default_script_args.copy()
        if input_script_args is not None:
            for index, value in input_script_args.items():
                script_args[index] = value
        for name, data in (request.alwayson_scripts or {}).items():
            script = script_runner.script(name)
            if "args" in data:
                for idx in range(min(script.args_to - script.args_from, len(data["args"]))):
                    script_args[script.args_from + idx] = data["args"][idx]
        return script_args
