"""Settings: one table registered in ``on_ui_settings``, validated on read, never written by a
generation; the master toggle and the defaults on both hosts' stand-ins."""

from __future__ import annotations

import json
import logging
import math

import pytest
from test_generation import assert_same, sampled

from lib_clipskip import settings
from lib_clipskip.values import Family

EXPECTED = {
    "clipskip_enabled": True,
    "clipskip_default_sd1": 1.0,
    "clipskip_default_sd2": 2.0,
    "clipskip_default_sdxl_l": 2.0,
    "clipskip_default_sdxl_g": 2.0,
    "clipskip_console_warnings": True,
    "clipskip_write_infotext": True,
    "clipskip_remember_per_checkpoint": True,
}


def test_registered_in_its_own_section_as_plain_options(webui):
    import gradio as gr

    labels = webui.shared.opts.data_labels
    ours = {k: v for k, v in labels.items() if k.startswith("clipskip_")}
    assert {k: v.default for k, v in ours.items()} == EXPECTED
    for key, info in ours.items():
        assert type(info) is webui.shared.OptionInfo  # plain: Quicksettings and the API can use it
        assert info.section == ("clipskip", "CLIP skip") and info.category_id == "sd"  # not "Uncategorized"
        assert info.label
        assert webui.shared.opts.data[key] == EXPECTED[key]  # add_option puts the default in data
        if isinstance(EXPECTED[key], bool):
            assert info.component is None  # the host infers a checkbox
        else:
            assert info.component is gr.Slider
            assert info.component_args["minimum"] == 1 and info.component_args["step"] == settings.SLIDER_STEP
    assert labels["clipskip_enabled"].label == "Enable CLIP skip extension"
    assert labels["clipskip_default_sdxl_g"].component_args["maximum"] == 32


def test_quicksettings_can_list_them(webui):
    name = "quick_setting_list" if webui.host == "forge" else "quicksettings_list"
    webui.shared.opts.set(name, ["sd_model_checkpoint", "clipskip_enabled", "clipskip_default_sd1"])
    assert all(k in webui.shared.opts.data_labels for k in getattr(webui.shared.opts, name))
    assert webui.shared.opts.set("clipskip_default_sd1", 2.5)
    assert settings.read("clipskip_default_sd1") == 2.5


@pytest.mark.parametrize("key, bad", [
    ("clipskip_default_sd1", "abc"), ("clipskip_default_sd1", 99), ("clipskip_default_sd1", math.nan),
    ("clipskip_default_sd1", [2]), ("clipskip_default_sd1", None), ("clipskip_default_sd1", True),
    ("clipskip_default_sd1", "2"), ("clipskip_default_sd2", 0.5), ("clipskip_default_sdxl_g", math.inf),
    ("clipskip_default_sdxl_l", 13), ("clipskip_enabled", "yes"), ("clipskip_enabled", 0),
    ("clipskip_write_infotext", None), ("clipskip_console_warnings", {"a": 1}),
])
def test_a_bad_value_falls_back_to_the_default_with_one_message(key, bad, caplog):
    class Opts:
        def __init__(self):
            self.data = {key: bad}

    settings._warned.clear()
    with caplog.at_level(logging.WARNING):
        assert settings.read(key, Opts()) == EXPECTED[key]
        assert settings.read(key, Opts()) == EXPECTED[key]
        settings.current(Opts())
    messages = [r.getMessage() for r in caplog.records if key in r.getMessage()]
    assert len(messages) == 1 and "using the default" in messages[0]


def test_good_values_are_used():
    class Opts:
        def __init__(self):
            self.data = {"clipskip_default_sd1": 2, "clipskip_default_sdxl_g": 3.5, "clipskip_enabled": False}

    current = settings.current(Opts())
    assert current.enabled is False
    defaults = {(f, n): v for f, n, v in current.defaults}
    assert defaults[(Family.SD1, "clip_l")] == 2
    assert defaults[(Family.SDXL, "clip_g")] == 3.5 and defaults[(Family.SDXL_REFINER, "clip_g")] == 3.5
    assert defaults[(Family.SD2, "clip_h")] == 2


def test_without_a_webui_the_defaults_apply():
    current = settings.current(object())
    assert current.enabled is True and current.write_infotext is True


def test_hand_edited_config_json_never_raises(tmp_path, caplog):
    from webui import WebUI

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"clipskip_enabled": "abc", "clipskip_default_sd1": "NaN",
                                  "clipskip_default_sdxl_l": 99, "clipskip_write_infotext": [1]}), encoding="utf8")
    settings._warned.clear()
    for host in ("a1111", "forge"):
        ui = WebUI(host, config_file=config)
        try:
            ui.load("sd1")
            with caplog.at_level(logging.WARNING):
                p = ui.txt2img("a cat", enabled=True, clip_skip=0)
                processed = ui.run(p)
            assert "CLIP skip ext: 1," in processed.infotexts[0]  # the SD1 default, the extension on
            assert not ui.scripts.reported_errors
        finally:
            ui.close()
    assert caplog.text.count("clipskip_default_sdxl_l = 99") == 1


def test_master_toggle_off_means_nothing_of_ours_runs(webui):
    webui.load("sd1")
    host = webui.txt2img("a cat", enabled=False)
    webui.run(host)
    webui.shared.opts.clipskip_enabled = False
    p = webui.txt2img("a cat", enabled=True, clip_skip=3)
    processed = webui.run(p)
    assert_same(sampled(p), sampled(host))
    assert "clipskip_state" not in vars(p) and "cached_params" not in vars(p)
    assert "CLIP skip" not in processed.infotexts[0] and "Clip skip" not in processed.infotexts[0]
    assert not any(callable(v) for v in p.extra_generation_params.values())


def test_auto_uses_the_settings_defaults(webui):
    webui.load("sd1")
    webui.shared.opts.clipskip_default_sd1 = 3
    auto = webui.txt2img("a cat", enabled=True, clip_skip=0)
    processed = webui.run(auto)
    explicit = webui.txt2img("a cat", enabled=True, clip_skip=3)
    webui.run(explicit)
    assert_same(sampled(auto), sampled(explicit))
    assert "CLIP skip ext: 3," in processed.infotexts[0]
    webui.load("sdxl")
    webui.shared.opts.clipskip_default_sdxl_g = 4
    processed = webui.run(webui.txt2img("a cat", enabled=True, clip_skip=0, clip_skip_g=0))
    assert "CLIP skip ext L: 2, CLIP skip ext G: 4" in processed.infotexts[0]


def test_console_warnings_can_be_silenced(webui, caplog):
    webui.load("sd1")
    with caplog.at_level(logging.WARNING):
        webui.run(webui.txt2img("a cat", enabled=True, clip_skip=20))
    assert "beyond this encoder" in caplog.text
    caplog.clear()
    webui.shared.opts.clipskip_console_warnings = False
    with caplog.at_level(logging.WARNING):
        webui.run(webui.txt2img("a cat", enabled=True, clip_skip=20))
    assert "beyond this encoder" not in caplog.text


def test_write_infotext_off_keeps_the_host_clip_skip_truthful(webui):
    webui.load("sd1")
    webui.shared.opts.clipskip_write_infotext = False
    processed = webui.run(webui.txt2img("a cat", enabled=True, clip_skip=3))
    assert "CLIP skip ext" not in processed.infotexts[0]
    assert "Clip skip: 3" in processed.infotexts[0]


def test_saved_settings_and_config_json_are_byte_identical_after_generations(tmp_path):
    from paste_helpers import paste_values
    from webui import WebUI

    for host in ("a1111", "forge"):
        config = tmp_path / f"{host}.json"
        config.write_text(json.dumps({"clipskip_default_sd1": 1.5, "CLIP_stop_at_last_layers": 2,
                                      "clipskip_default_sdxl_g": 3}, indent=4), encoding="utf8")
        ui = WebUI(host, config_file=config)
        try:
            ui.shared.opts.save(str(config))  # what "Apply settings" writes
            before = config.read_bytes()
            data_before = json.dumps(ui.shared.opts.data, sort_keys=True)
            ui.load("sd1")
            made = ui.run(ui.txt2img("a cat", enabled=True, clip_skip=3))
            ui.run(ui.txt2img("a cat <clipskip:2.5>", enabled=False))
            ui.run(ui.txt2img("a cat", enabled=True, clip_skip=0, n_iter=2))
            values = paste_values(ui, made.infotexts[0] + ", CLIP skip ext source: xyz")
            ui.run(ui.txt2img("a cat", enabled=values["enabled"], clip_skip=values["clip_skip"]))
            ui.load("sdxl")
            ui.run(ui.txt2img("a cat <clipskip:l=3:g=4>", enabled=True, clip_skip=0, enable_hr=True))
            assert config.read_bytes() == before
            assert json.dumps(ui.shared.opts.data, sort_keys=True) == data_before
            again = tmp_path / f"{host}-again.json"
            ui.shared.opts.save(str(again))
            assert again.read_bytes() == before
        finally:
            ui.close()
