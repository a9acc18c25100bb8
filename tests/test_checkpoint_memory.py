"""Values remembered per checkpoint in ``<checkpoint>.json`` (the host's "Edit metadata" file),
the creator's recorded value, loading on a checkpoint switch and after a restart, and the
``checkpoint`` source in the panel, a generation, the API and infotext — on both hosts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import compat_files
import numpy as np
import pytest

from lib_clipskip import checkpoint_memory, panel, panel_ui
from lib_clipskip.checkpoint_memory import KEY, Memory, metadata_path
from lib_clipskip.values import Family


def host_metadata(checkpoint: Path, metadata: dict) -> Path:
    """What the host's "Edit metadata" dialog writes (``ui_extra_networks_user_metadata.py:131-138``)."""
    path = Path(metadata_path(str(checkpoint)))
    with open(path, "w", encoding="utf8") as file:
        json.dump(metadata, file, indent=4, ensure_ascii=False)
    return path


def checkpoint(folder: Path, name: str, metadata: dict | None = None) -> Path:
    """A small safetensors "checkpoint" with the ``__metadata__`` a trainer writes."""
    return compat_files.write_safetensors(folder / f"{name}.safetensors", {"w": np.zeros((2,), np.float32)}, metadata)


USER = {"description": "Mein Modell – für Anime", "notes": "käse", "vae": "None", "sd_version": "SD1"}


# --- the file ---------------------------------------------------------------------------------


def test_remember_keeps_the_users_keys_and_writes_as_the_host_does(tmp_path):
    model = checkpoint(tmp_path, "anime")
    path = host_metadata(model, USER)
    saved, message = checkpoint_memory.remember(str(model), {"clip_skip": 2, "clip_skip_g": 0, "schedule": "3..1",
                                                             "clip_skip_negative": "1"})
    assert saved and "anime.json" in message and "CLIP skip 2" in message
    text = path.read_text(encoding="utf8")
    data = json.loads(text)
    assert {k: data[k] for k in USER} == USER
    assert data[KEY] == {"clip_skip": 2, "clip_skip_g": 0, "schedule": "3..1", "clip_skip_negative": "1"}
    assert "für Anime" in text and text.startswith("{\n    ")  # ensure_ascii=False, indent=4
    assert checkpoint_memory.load(str(model)) == (Memory(2.0, 0.0, "3..1", "1"), None)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".clipskip-")] == []


def test_remember_creates_the_file_and_all_auto_forgets(tmp_path):
    model = checkpoint(tmp_path, "plain")
    assert checkpoint_memory.remember(str(model), [True, 1.5, 0, "", ""])[0]
    assert json.loads(Path(metadata_path(str(model))).read_text())[KEY]["clip_skip"] == 1.5
    host_metadata(model, {**json.loads(Path(metadata_path(str(model))).read_text()), "notes": "mine"})
    saved, message = checkpoint_memory.remember(str(model), [True, 0, 0, "", ""])
    assert saved and message.startswith("Forgotten")
    assert json.loads(Path(metadata_path(str(model))).read_text()) == {"notes": "mine"}
    assert checkpoint_memory.load(str(model)) == (None, None)


@pytest.mark.parametrize(("content", "why"), [
    (b'{"description": "unterminated', "not valid JSON"),
    (b'["a", "list"]', "JSON list"),
    (b"\xff\xfe garbage", "not valid JSON"),
])
def test_an_unusable_file_is_reported_and_never_overwritten(tmp_path, content, why):
    model = checkpoint(tmp_path, "broken")
    path = Path(metadata_path(str(model)))
    path.write_bytes(content)
    memory, problem = checkpoint_memory.load(str(model))
    assert memory is None and why in problem and "broken.json" in problem
    saved, message = checkpoint_memory.remember(str(model), [True, 2, 0, "", ""])
    assert not saved and why in message
    assert path.read_bytes() == content


def test_a_huge_file_is_not_read(tmp_path):
    model = checkpoint(tmp_path, "huge")
    path = Path(metadata_path(str(model)))
    with open(path, "wb") as file:
        file.write(b'{"notes": "')
        file.truncate(100_000_000)  # 100 MB (sparse)
    memory, problem = checkpoint_memory.load(str(model))
    assert memory is None and "100,000,000 bytes" in problem
    assert not checkpoint_memory.remember(str(model), [True, 2, 0, "", ""])[0]
    assert path.stat().st_size == 100_000_000


def test_an_unwritable_folder_is_a_message_and_the_file_stays(tmp_path, monkeypatch):
    model = checkpoint(tmp_path, "readonly")
    path = host_metadata(model, USER)
    before = path.read_bytes()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint_memory.tempfile, "mkstemp", refuse)
    saved, message = checkpoint_memory.remember(str(model), [True, 2, 0, "", ""])
    assert not saved and "can't be written (Permission denied)" in message
    assert path.read_bytes() == before


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_for_real(tmp_path):
    model = checkpoint(tmp_path, "ro")
    path = host_metadata(model, USER)
    tmp_path.chmod(0o555)
    try:
        saved, message = checkpoint_memory.remember(str(model), [True, 2, 0, "", ""])
    finally:
        tmp_path.chmod(0o755)
    assert not saved and "can't be written" in message and json.loads(path.read_text()) == USER


def test_bad_remembered_values_are_reported(tmp_path):
    model = checkpoint(tmp_path, "hand-edited")
    host_metadata(model, {**USER, KEY: {"clip_skip": "abc"}})
    memory, problem = checkpoint_memory.load(str(model))
    assert memory is None and "'abc' is not a number" in problem


# --- the creator's value ----------------------------------------------------------------------


@pytest.mark.parametrize(("metadata", "family", "expected"), [
    ({"ss_clip_skip": "2"}, Family.SD1, (2.0, "ss_clip_skip=2")),
    ({"ss_clip_skip": "None", "modelspec.encoder_layer": "2"}, Family.SD1, (2.0, "modelspec.encoder_layer=2")),
    ({"ss_clip_skip": "1"}, Family.SD2, (2.0, "ss_clip_skip=1 (kohya counts SD2's 23 layers: clip skip 2 here)")),
    ({"ss_clip_skip": "2"}, Family.SDXL, None),  # kohya ignores clip skip for SDXL
    ({"ss_clip_skip": "None"}, Family.SD1, None),
    ({}, Family.SD1, None),
])
def test_creator_value_from_safetensors_metadata(tmp_path, metadata, family, expected):
    model = checkpoint(tmp_path, "trained", metadata)
    assert checkpoint_memory.creator_value(str(model), family) == expected


def test_creator_value_of_an_unreadable_file_is_none(tmp_path):
    model = tmp_path / "page.safetensors"
    model.write_text("<html>login</html>")
    assert checkpoint_memory.creator_value(str(model), Family.SD1) is None


# --- loading on a switch (pure) ---------------------------------------------------------------


def test_switching_loads_and_leaving_puts_back_what_the_panel_had():
    remembered = Memory(2.0, 0.0, "", "")
    mine = (False, 1.5, 0.0, "", "")
    seen, values = checkpoint_memory.on_checkpoint(None, "/m/a.safetensors", remembered, mine, True)
    assert values == (True, 2.0, 0.0, "", "")
    assert checkpoint_memory.on_checkpoint(seen, "/m/a.safetensors", remembered, values, True) == (seen, None)
    seen, back = checkpoint_memory.on_checkpoint(seen, "/m/b.safetensors", None, values, True)
    assert back == mine
    seen, values = checkpoint_memory.on_checkpoint(seen, "/m/a.safetensors", remembered, mine, True)
    changed = (True, 3.0, 0.0, "", "")  # the user moved the slider: leaving keeps it
    assert checkpoint_memory.on_checkpoint(seen, "/m/b.safetensors", None, changed, True)[1] is None
    assert checkpoint_memory.on_checkpoint(None, "/m/a.safetensors", remembered, mine, False)[1] is None


# --- in the hosts -----------------------------------------------------------------------------


@pytest.fixture
def models(tmp_path):
    folder = tmp_path / "Stable-diffusion"
    folder.mkdir()
    a = checkpoint(folder, "anime", {"ss_clip_skip": "2"})
    b = checkpoint(folder, "photo")
    host_metadata(a, USER)
    return a, b


def infotext_params(webui, text):
    import importlib

    return importlib.import_module("modules.infotext_utils").parse_generation_parameters(text)


def test_remembered_values_come_back_after_a_switch_and_a_restart(webui, models):
    from webui import WebUI

    # (no negative value here: main 2857c40 writes the negative prompt's plan as "CLIP skip ext")

    a, b = models
    webui.load("sd1", checkpoint=a)
    assert panel_ui.remember_now((True, 3.0, 0.0, "", "")).startswith("Remembered")
    webui.load("sd1", checkpoint=b)
    seen, loaded = panel_ui.follow_checkpoint(None, (True, 3.0, 0.0, "", ""))
    assert loaded is None and seen["checkpoint"] == str(b)
    webui.load("sd1", checkpoint=a)
    seen, loaded = panel_ui.follow_checkpoint(seen, (False, 0.0, 0.0, "", ""))
    assert loaded == (True, 3.0, 0.0, "", "")

    restarted = WebUI(webui.host)  # a new process: nothing but the file carries the values
    try:
        restarted.load("sd1", checkpoint=a)
        seen, loaded = panel_ui.follow_checkpoint(None, (False, 0.0, 0.0, "", ""))
        assert loaded == (True, 3.0, 0.0, "", "")
        shown = panel.view(*loaded[:3], "a cat", schedule=loaded[3], negative=loaded[4])
        assert [(line.value, line.source) for line in shown.lines] == [(3.0, "checkpoint")]
        html = panel.status_html(shown, "slider", "accordion")
        assert "remembered CLIP skip 3 " in html and "anime.json" in html
        p = restarted.txt2img("a cat", enabled=True, clip_skip=3.0)
        params = infotext_params(restarted, restarted.run(p).infotexts[0])
        assert params["CLIP skip ext"] == "3" and params["CLIP skip ext source"] == "checkpoint"
    finally:
        restarted.close()


def test_a_changed_value_is_the_panels(webui, models):
    a, _ = models
    webui.load("sd1", checkpoint=a)
    checkpoint_memory.remember(str(a), [True, 2, 0, "", ""])
    assert [line.source for line in panel.view(True, 3, 0, "a cat").lines] == ["panel"]
    p = webui.txt2img("a cat", enabled=True, clip_skip=3)
    params = infotext_params(webui, webui.run(p).infotexts[0])
    assert params["CLIP skip ext"] == "3" and "CLIP skip ext source" not in params


def test_auto_means_the_checkpoint_then_the_settings_default(webui, models):
    a, b = models
    webui.load("sd1", checkpoint=a)
    checkpoint_memory.remember(str(a), [True, 2, 0, "", ""])
    p = webui.api_txt2img("a cat", alwayson_scripts={"CLIP skip": {"args": [{"enabled": True, "clip_skip": 0}]}})
    params = infotext_params(webui, webui.run(p).infotexts[0])
    assert params["CLIP skip ext"] == "2" and params["CLIP skip ext source"] == "checkpoint"
    assert [line.source for line in panel.view(True, 0, 0, "a cat").lines] == ["checkpoint"]

    webui.shared.opts.data["clipskip_remember_per_checkpoint"] = False
    p = webui.api_txt2img("a cat", alwayson_scripts={"CLIP skip": {"args": [{"enabled": True, "clip_skip": 0}]}})
    params = infotext_params(webui, webui.run(p).infotexts[0])
    assert params["CLIP skip ext"] == "1" and "CLIP skip ext source" not in params  # the SD1 Settings default
    assert "not used: turned off in Settings" in panel.status_html(panel.view(True, 0, 0, "a cat"))
    assert panel_ui.follow_checkpoint(None, (False, 0.0, 0.0, "", ""))[1] is None

    webui.shared.opts.data["clipskip_remember_per_checkpoint"] = True
    webui.load("sd1", checkpoint=b)  # no memory: the Settings default
    p = webui.api_txt2img("a cat", alwayson_scripts={"CLIP skip": {"args": [{"enabled": True, "clip_skip": 0}]}})
    assert infotext_params(webui, webui.run(p).infotexts[0])["CLIP skip ext"] == "1"


def test_a_tag_beats_the_checkpoint(webui, models):
    a, _ = models
    webui.load("sd1", checkpoint=a)
    checkpoint_memory.remember(str(a), [True, 2, 0, "", ""])
    p = webui.txt2img("a cat <clipskip:4>", enabled=True, clip_skip=0)
    params = infotext_params(webui, webui.run(p).infotexts[0])
    assert params["CLIP skip ext"] == "4" and params["CLIP skip ext source"] == "prompt tag"


def test_the_api_checkpoint_override_uses_that_checkpoints_memory(webui, models):
    a, b = models
    webui.load("sd1", checkpoint=b)
    webui.checkpoint_info(a)  # listed, not loaded
    checkpoint_memory.remember(str(a), [True, 3, 0, "", ""])
    p = webui.api_txt2img("a cat", alwayson_scripts={"CLIP skip": {"args": [{"enabled": True, "clip_skip": 0}]}})
    p.override_settings["sd_model_checkpoint"] = "anime"
    assert webui.module.extension.adapter().checkpoint_file(p) == str(a)
    p.override_settings.clear()
    assert webui.module.extension.adapter().checkpoint_file(p) == str(b)


def test_forge_memory_follows_the_selection_before_it_loads(forge, models):
    a, b = models
    forge.load("sd1", checkpoint=b)
    checkpoint_memory.remember(str(a), [True, 2, 0, "", ""])
    forge.select(a)  # Forge loads it at the next generation
    assert forge.module.extension.adapter().checkpoint_file() == str(a)
    assert panel_ui.follow_checkpoint(None, (False, 0.0, 0.0, "", ""))[1] == (True, 2.0, 0.0, "", "")


def test_the_creators_value_is_offered_with_use(webui, models):
    a, b = models
    webui.load("sd1", checkpoint=a)
    html = panel.status_html(panel.view(True, 0, 0, "a cat"), "txt2img_slider", "txt2img_accordion")
    assert "The creator recorded Clip skip <b>2</b>" in html and "ss_clip_skip=2" in html
    assert 'class="clipskip-apply clipskip-use-creator" data-clipskip-slider="txt2img_slider"' in html
    webui.load("sd1", checkpoint=b)
    assert "creator recorded" not in panel.status_html(panel.view(True, 0, 0, "a cat"))


def test_a_broken_memory_file_is_said_in_the_panel_and_the_generation_runs(webui, models):
    a, _ = models
    Path(metadata_path(str(a))).write_text("[1, 2]")
    webui.load("sd1", checkpoint=a)
    assert any("JSON list" in note for note in panel.view(True, 2, 0, "a cat").notes)
    p = webui.txt2img("a cat", enabled=True, clip_skip=2)
    assert infotext_params(webui, webui.run(p).infotexts[0])["CLIP skip ext"] == "2"
    assert "Not remembered" in panel_ui.remember_now((True, 2.0, 0.0, "", ""))
    assert Path(metadata_path(str(a))).read_text() == "[1, 2]"
