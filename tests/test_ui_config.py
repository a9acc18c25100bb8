"""UI defaults in ``ui-config.json``: both hosts key a component's saved value by its *label*
(``modules/ui_loadsave.py``, stand-in mirrored from A1111 v1.10.1 / Forge dfdcbab6).  Two of
our components with one label would share one saved value — in A1111 the accordion's ``false``
became the slider's value, and a pasted 1.5 then became ``True``."""

from __future__ import annotations

import json

import pytest
from paste_helpers import paste_updates

from lib_clipskip.values import request_from_args


def registrations(ui, tab):
    """(key, component) for every field ``add_block`` looks up in a tab, recorded the host's way."""
    from modules import ui_loadsave

    seen = []
    current = []

    class Settings(dict):
        def get(self, key, default=None):  # apply_field reads every key it registers
            seen.append((key, current[-1]))
            return super().get(key, default)

    class Recording(ui_loadsave.UiLoadsave):
        def add_component(self, path, x):
            current.append(x)
            super().add_component(path, x)

    loadsave = Recording("/nonexistent/ui-config.json")
    loadsave.ui_settings = Settings()
    loadsave.add_block(ui.interfaces[tab], tab)
    return seen


def ours(ui, tab):
    script = ui.script(tab)
    panel = script.panel
    components = [panel.enabled, panel.clip_skip, panel.clip_skip_g, panel.status, panel.files, panel.prompt,
                  panel.refresh, panel.explore, panel.plot, panel.plot_model]
    return {id(c) for c in components}


@pytest.mark.parametrize("tab", ["txt2img", "img2img"])
def test_every_component_of_ours_has_its_own_keys(webui, tab):
    keys, mine = {}, ours(webui, tab)
    for key, component in registrations(webui, tab):
        if id(component) in mine or key in keys:
            assert keys.setdefault(key, component) is component, f"{key} is shared by two components"
    assert keys, "the panel registers its controls"
    for key in keys:  # nothing of ours can collide with another script's or the host's labels
        assert "CLIP skip" in key or "clipskip" in key.lower() or "How does each layer" in key, key


@pytest.mark.parametrize("tab", ["txt2img", "img2img"])
def test_saved_defaults_keep_their_types_across_a_restart(tmp_path, tab):
    from webui import WebUI

    config = tmp_path / "ui-config.json"
    for _start in range(2):  # the first start writes the file, the second reads it back
        ui = WebUI("a1111", ui_config_file=config)
        try:
            panel = ui.script(tab).panel
            assert panel.enabled.value is False
            # a float: the API's infotext field casts a pasted 2.5 to the type of this value
            assert type(panel.clip_skip.value) is float and type(panel.clip_skip_g.value) is float
            assert panel.clip_skip.value == 0 and panel.clip_skip_g.value == 0
            args = ui.script_args(tab)
            script = ui.script(tab)
            parsed = request_from_args(args[script.args_from:script.args_to])
            assert parsed.messages == []  # the API's default args are usable as they are
        finally:
            ui.close()
    saved = json.loads(config.read_text(encoding="utf8"))
    ours = {k: v for k, v in saved.items() if k.startswith(f"customscript/clipskip.py/{tab}/")}
    values = {k.rsplit("/", 2)[1]: v for k, v in ours.items() if k.endswith("/value")}
    assert values == {"CLIP skip": False, "CLIP skip value": 0, "SDXL OpenCLIP-G": 0,
                      "CLIP skip over the steps": "", "Negative prompt CLIP skip": ""}


def test_paste_after_a_restart_gives_the_slider_a_number(tmp_path):
    from webui import WebUI

    config = tmp_path / "ui-config.json"
    for _start in range(2):
        ui = WebUI("a1111", ui_config_file=config)
        ui.load("sd1")
        try:
            updates = paste_updates(ui, "a cat\nSteps: 20, Sampler: Euler, Seed: 1, CLIP skip ext: 1.5")
        finally:
            ui.close()
        assert updates["clip_skip"] == {"value": 1.5} and updates["enabled"] == {"value": True}


def test_a_saved_integer_default_does_not_truncate_an_api_paste(tmp_path):
    """"Apply" of the Settings' UI defaults writes a slider at 0 as the integer 0; the API's infotext
    field casts pasted values to that type, so 2.5 would become 2 without the extension's fix."""
    from webui import WebUI

    config = tmp_path / "ui-config.json"
    config.write_text(json.dumps({"customscript/clipskip.py/txt2img/CLIP skip value/value": 0,
                                  "customscript/clipskip.py/txt2img/SDXL OpenCLIP-G/value": 0}), encoding="utf8")
    ui = WebUI("a1111", ui_config_file=config)
    try:
        ui.load("sd1")
        p = ui.api_txt2img("a cat", infotext="a cat\nSteps: 4, Sampler: Euler, Seed: 1, CLIP skip ext: 2.5")
        script = ui.script()
        assert p.script_args[script.args_from:script.args_to] == [True, 2.5, 0.0, "", ""]
    finally:
        ui.close()
