"""Mirrors ``modules/scripts.py`` (A1111 v1.10.1; Forge dfdcbab6 adds ``sorting_priority`` and calls the same hooks).

Kept: ``Script`` hook names and signatures, ``elem_id``, ``AlwaysVisible``, ``ScriptClassData``,
``scripts_data`` registration of every ``Script`` subclass of a loaded file (module spec name =
file basename, as ``script_loading.load_module`` does), ``ScriptRunner`` arg slicing
(``p.script_args[script.args_from:script.args_to]``, index 0 = selected script), UI creation of
alwayson scripts (``args_from``/``args_to``, ``infotext_fields``, ``paste_field_names``), and the
per-hook ``try/except`` that reports a script's exception instead of raising it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import traceback
from collections import namedtuple

AlwaysVisible = object()
ScriptClassData = namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])
scripts_data = []
reported_errors = []  # what errors.report would have printed; tests read it


class PostprocessImageArgs:
    def __init__(self, image):
        self.image = image


class Script:
    name = None
    section = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname = None
    group = None
    create_group = True
    infotext_fields = None
    paste_field_names = None
    api_info = None
    setup_for_ui_only = False
    controls = None

    def title(self):
        raise NotImplementedError

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def run(self, p, *args):
        pass

    def setup(self, p, *args):
        pass

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def before_process_batch(self, p, *args, **kwargs):
        pass

    def after_extra_networks_activate(self, p, *args, **kwargs):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass

    def postprocess_batch(self, p, *args, **kwargs):
        pass

    def postprocess_image(self, p, pp, *args):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def before_hr(self, p, *args):
        pass

    def elem_id(self, item_id):
        need_tabname = self.show(True) == self.show(False)
        tabkind = "img2img" if self.is_img2img else "txt2img"
        tabname = f"{tabkind}_" if need_tabname else ""
        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"script_{tabname}{title}_{item_id}"


def report(message):
    reported_errors.append((message, traceback.format_exc()))


def load_module(path):
    """``modules/script_loading.load_module``: the spec name is the file's basename."""
    spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_scripts_from_file(path):
    module = load_module(path)
    for value in module.__dict__.values():
        if isinstance(value, type) and issubclass(value, Script) and value is not Script:
            scripts_data.append(ScriptClassData(value, path, os.path.dirname(path), module))
    return module


class ScriptRunner:
    _hooks = ("before_process", "process", "before_process_batch", "after_extra_networks_activate",
              "process_batch", "postprocess_batch", "postprocess_image", "postprocess", "before_hr")

    def __init__(self):
        self.scripts = []
        self.selectable_scripts = []
        self.alwayson_scripts = []
        self.infotext_fields = []
        self.paste_field_names = []
        self.inputs = [None]

    def initialize_scripts(self, is_img2img):
        self.scripts.clear()
        self.alwayson_scripts.clear()
        self.selectable_scripts.clear()
        for script_data in scripts_data:
            script = script_data.script_class()
            script.filename = script_data.path
            script.is_txt2img = not is_img2img
            script.is_img2img = is_img2img
            script.tabname = "img2img" if is_img2img else "txt2img"
            visibility = script.show(script.is_img2img)
            if visibility is AlwaysVisible:
                self.scripts.append(script)
                self.alwayson_scripts.append(script)
                script.alwayson = True
            elif visibility:
                self.scripts.append(script)
                self.selectable_scripts.append(script)

    def create_script_ui(self, script):
        script.args_from = len(self.inputs)
        script.args_to = len(self.inputs)
        try:
            controls = script.ui(script.is_img2img)
        except Exception:
            report(f"Error creating UI for {script.filename}")
            return
        script.controls = controls
        if controls is None:
            return
        script.name = script.title().lower()
        for control in controls:  # scripts.py:658: ui-config.json keys become customscript/<file>/…
            control.custom_script_source = os.path.basename(script.filename)
        if script.infotext_fields is not None:
            self.infotext_fields += script.infotext_fields
        if script.paste_field_names is not None:
            self.paste_field_names += script.paste_field_names
        self.inputs += controls
        script.args_to = len(self.inputs)

    def setup_ui(self):
        for script in self.alwayson_scripts + self.selectable_scripts:
            self.create_script_ui(script)

    def default_script_args(self):
        """``api.init_default_script_args``: every control's initial value, index 0 = no selected script."""
        args = [None] * len(self.inputs)
        args[0] = 0
        for index, control in enumerate(self.inputs[1:], start=1):
            args[index] = getattr(control, "value", None)
        return args

    def script(self, title):
        return next((s for s in self.scripts if s.title().lower() == title.lower()), None)

    def run(self, p, *args):
        script_index = args[0]
        if script_index == 0 or script_index is None:
            return None
        script = self.selectable_scripts[script_index - 1]
        return script.run(p, *args[script.args_from:script.args_to])

    def _call(self, hook, p, *extra, **kwargs):
        for script in self.alwayson_scripts:
            if getattr(type(script), hook) is getattr(Script, hook):
                continue  # ordered_scripts only calls scripts that override the hook
            try:
                script_args = p.script_args[script.args_from:script.args_to]
                getattr(script, hook)(p, *extra, *script_args, **kwargs)
            except Exception:
                report(f"Error running {hook}: {script.filename}")

    def __getattr__(self, hook):
        if hook in ScriptRunner._hooks:
            return lambda p, *extra, **kwargs: self._call(hook, p, *extra, **kwargs)
        raise AttributeError(hook)
