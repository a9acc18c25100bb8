"""What the panel shows, on both hosts, without a browser: values and their source, the model
family, no-effect notes, which controls make sense, the LoRA / embedding list, the explorer's
messages, and that the element ids and classes the JS and CSS use are the ones the panel makes."""

from __future__ import annotations

import re
import time
from pathlib import Path

import compat_files
import pytest
import torch

from lib_clipskip import panel, panel_ui, prompt_files, values
from lib_clipskip.hosts import HOST_LABELS, detect
from lib_clipskip.values import Family

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folders(webui, tmp_path):
    """A models folder as the WebUI has it: models/Lora and embeddings, known to ``shared``."""
    models = tmp_path / "models"
    lora = models / "Lora"
    embeddings = tmp_path / "embeddings"
    lora.mkdir(parents=True)
    embeddings.mkdir()
    webui.shared.models_path = str(models)
    webui.shared.cmd_opts.lora_dir = str(lora)
    webui.shared.cmd_opts.embeddings_dir = str(embeddings)
    prompt_files._indexes.clear()
    return lora, embeddings


def lines(shown):
    return [(line.name, line.value, line.source) for line in shown.lines]


# --- values, sources, families --------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "label", "g_visible", "expected"),
    [
        ("sd1", "SD 1.x", False, [("clip_l", 2.0, "panel")]),
        ("sd2", "SD 2.x", False, [("clip_h", 2.0, "panel")]),
        ("sdxl", "SDXL", True, [("clip_l", 2.0, "panel"), ("clip_g", 3.0, "panel")]),
        ("sdxl_refiner", "SDXL refiner", True, [("clip_g", 3.0, "panel")]),
    ],
)
def test_family_values_and_the_g_slider(webui, family, label, g_visible, expected):
    webui.load(family)
    shown = panel.view(True, 2, 3, "a cat")
    assert shown.family is Family(family) and shown.family_label == label
    assert lines(shown) == expected
    assert shown.g_visible is g_visible
    assert shown.clip_skip_interactive
    html = panel.status_html(shown)
    assert "Applies" in html and label in html and HOST_LABELS[detect().name] in html


def test_the_g_slider_follows_the_loaded_model(webui):
    seen = []
    for family in ("sd1", "sdxl", "sd1", "sd2", "sdxl_refiner"):
        webui.load(family)
        _status, _files, _main, g_update, _plot, _plot_model = panel_ui.refresh_outputs(True, 0, 0, "")
        seen.append(g_update["visible"])
    assert seen == [False, True, False, False, True]


def test_sd2_slider_reaches_24_layers(webui):
    webui.load("sd2")
    assert panel.view(True, 0, 0, "").clip_skip_maximum == 24
    webui.load("sd1")
    assert panel.view(True, 0, 0, "").clip_skip_maximum == 12


def test_auto_comes_from_the_settings_default(webui):
    webui.load("sdxl")
    shown = panel.view(True, 0, 0, "a cat")
    assert lines(shown) == [("clip_l", 2.0, "settings"), ("clip_g", 2.0, "settings")]
    assert "Settings default" in panel.status_html(shown)


def test_a_prompt_tag_beats_the_panel_even_when_the_panel_is_off(webui):
    webui.load("sdxl")
    shown = panel.view(False, 1, 0, "a cat <clipskip:3:4>")
    assert lines(shown) == [("clip_l", 3.0, "prompt tag"), ("clip_g", 4.0, "prompt tag")]
    assert "prompt tag" in panel.status_html(shown)


def test_a_bad_prompt_tag_is_reported_and_the_panel_applies(webui):
    webui.load("sd1")
    shown = panel.view(True, 2, 0, "a cat <clipskip:banana>")
    assert lines(shown) == [("clip_l", 2.0, "panel")]
    assert any("banana" in note for note in shown.notes)


def test_off_shows_the_hosts_own_value(webui):
    webui.load("sd1")
    shown = panel.view(False, 2, 0, "a cat")
    assert not shown.active
    assert lines(shown) == [("clip_l", 1.0, "host")]
    assert "Off: the host" in panel.status_html(shown)


def test_the_settings_master_toggle_turns_the_panel_off(webui):
    webui.load("sd1")
    webui.shared.opts.data["clipskip_enabled"] = False
    shown = panel.view(True, 2, 0, "a cat <clipskip:3>")
    assert not shown.active and "turned off in Settings" in shown.notes[0]


def test_value_equal_to_the_hosts_own_is_said(webui):
    webui.load("sd1")
    shown = panel.view(True, 1, 0, "")
    assert any("does by itself" in remark for remark in shown.infos)
    assert not shown.notes


def test_forge_sd2_value_1_is_a_no_op_note(forge):
    forge.load("sd2")
    shown = panel.view(True, 1, 0, "")
    assert lines(shown) == [("clip_h", 2.0, "host")]
    assert any("does not load" in note for note in shown.notes)


def test_a1111_sd2_value_1_is_the_true_last_layer(a1111):
    a1111.load("sd2")
    assert lines(panel.view(True, 1, 0, "")) == [("clip_h", 1.0, "panel")]


def test_flux_on_forge_has_no_effect_and_the_controls_say_so(forge):
    forge.load("flux")
    shown = panel.view(True, 2, 0, "")
    assert shown.family is Family.OTHER and not shown.lines
    assert not shown.g_visible and not shown.clip_skip_interactive
    assert any("no effect" in note and "pooled" in note for note in shown.notes)
    off = panel.view(False, 2, 0, "")
    assert any("no effect" in note for note in off.notes)


def test_no_model_loaded(webui):
    webui.shared.sd_model = None
    shown = panel.view(True, 2, 0, "")
    assert shown.family is Family.OTHER and shown.clip_skip_interactive
    assert any("no model" in note.lower() for note in shown.notes)
    assert 'data-clipskip-loading="1"' in panel.status_html(shown)  # the browser asks again


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_a1111_reloading_weights_says_loading_not_no_effect(a1111, family):
    """``reload_model_weights`` undoes the hijack while it loads: the encoders are the upstream
    classes for a moment (sd_hijack.py ``undo_hijack``); that is not "no effect"."""
    model = a1111.load(family)
    if family == "sd1":
        model.cond_stage_model = model.cond_stage_model.wrapped
    else:
        for index, embedder in enumerate(list(model.conditioner.embedders)):
            model.conditioner.embedders[index] = embedder.wrapped
    shown = panel.view(True, 2, 0, "a cat")
    assert shown.notes == ["The model is loading; this panel updates when it is ready."]
    assert not any("no effect" in note or "XLM" in note for note in shown.notes)
    assert 'data-clipskip-loading="1"' in panel.status_html(shown)


def test_a1111_unknown_text_encoders_are_named(a1111):
    model = a1111.load("sd1")

    class FrozenXLMREmbedderWithCustomWords(torch.nn.Module):
        pass

    model.cond_stage_model = FrozenXLMREmbedderWithCustomWords()
    assert any("Alt-Diffusion" in note for note in panel.view(True, 2, 0, "").notes)

    class T5Wrapper(torch.nn.Module):
        pass

    model.cond_stage_model = T5Wrapper()
    notes = panel.view(True, 2, 0, "").notes
    assert any("(T5Wrapper) is not a CLIP model" in note for note in notes) and not any("Alt-Diffusion" in n for n in notes)


# --- LoRAs and embeddings ---------------------------------------------------------------------


def test_prompt_loras_and_embeddings_with_warnings(webui, folders):
    lora, embeddings = folders
    webui.load("sd1")
    compat_files.write_kohya_lora(lora / "anime.safetensors", family="sd1", clip_skip=2)
    compat_files.write_kohya_lora(lora / "sub" / "plain.safetensors", family="sd1")
    compat_files.write_non_json_header(lora / "broken.safetensors")
    compat_files.write_safetensors(embeddings / "goodcat.safetensors", compat_files.emb_params_tensors())
    prompt = "goodcat sitting <lora:anime:0.7> <lora:broken:1> <lora:plain> <lora:missing:1>"
    shown = panel.view(True, 1, 0, prompt)
    names = [(ref.name, ref.kind) for ref, _ in shown.files]
    assert names == [("anime", "lora"), ("broken", "lora"), ("plain", "lora"), ("missing", "lora"), ("goodcat", "embedding")]
    reports = {ref.name: report for ref, report in shown.files}
    assert reports["anime"].trained_clip_skip == 2
    assert [w.code for w in reports["anime"].warnings] == ["trained-clip-skip-mismatch"]
    assert reports["broken"].error and [w.code for w in reports["broken"].warnings] == ["unreadable"]
    assert reports["missing"] is None
    html = panel.files_html(shown, "slider-id", "accordion-id")
    assert html.count("clipskip-row-warning") == 1 and html.count("clipskip-row-unreadable") == 1
    assert "clipskip-row-missing" in html and "not found" in html
    # one button, on the file whose trained value differs, setting our slider to it
    assert html.count('class="clipskip-apply"') == 1
    assert 'data-clipskip-slider="slider-id"' in html and 'data-clipskip-value="2"' in html
    # at anime's trained value its mismatch and button go; plain (trained at 1) now gets one
    again = panel.view(True, 2, 0, prompt)
    assert "trained-clip-skip-mismatch" not in [w.code for w in again.files[0][1].warnings]
    buttons = re.findall(r'<button[^>]*data-clipskip-value="(\w+)"', panel.files_html(again, "slider-id"))
    assert buttons == ["1"]


def test_no_apply_button_on_sdxl_where_a_recorded_skip_had_no_effect(webui, folders):
    lora, _ = folders
    webui.load("sdxl")
    compat_files.write_kohya_lora(lora / "xl.safetensors", family="sdxl", clip_skip=2)
    shown = panel.view(True, 1, 1, "<lora:xl>")
    assert shown.files and "clipskip-apply" not in panel.files_html(shown, "slider-id")


def test_files_outside_the_model_folders_are_not_inspected(webui, folders, tmp_path):
    lora, _ = folders
    webui.load("sd1")
    outside = tmp_path / "elsewhere"
    compat_files.write_kohya_lora(outside / "sneaky.safetensors", family="sd1", clip_skip=2)
    (lora / "sneaky.safetensors").symlink_to(outside / "sneaky.safetensors")
    webui.shared.models_path = str(tmp_path / "models" / "Lora" / "nothing")  # roots: the Lora folder only
    prompt_files._indexes.clear()
    shown = panel.view(True, 1, 0, "<lora:sneaky> <lora:../elsewhere/sneaky>")
    reports = [report for _ref, report in shown.files]
    assert reports[1] is None  # a name is a file stem, never a path
    assert reports[0] is not None  # a link inside the folder is the user's own model folder


def test_panel_update_with_five_loras_is_fast(webui, folders):
    lora, _ = folders
    webui.load("sd1")
    for i in range(5):
        compat_files.write_kohya_lora(lora / f"style{i}.safetensors", family="sd1", clip_skip=2)
    prompt = "a cat " + " ".join(f"<lora:style{i}:0.5>" for i in range(5))
    panel_ui.refresh_outputs(True, 1, 0, prompt)  # cold: headers read once
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        panel_ui.refresh_outputs(True, 1, 0, prompt)
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[3] < 0.05, timings


def test_refresh_never_raises(webui, monkeypatch):
    webui.load("sd1")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(panel_ui, "view", broken)
    status, files, _main, _g, _plot, plot_model = panel_ui.refresh_outputs(True, 1, 0, "", plot_model="SD 1.x")
    assert "boom" in status and files == "" and plot_model == "SD 1.x"


# --- layer explorer messages ------------------------------------------------------------------


def test_explore_draws_a_plot_for_the_loaded_model(webui):
    webui.load("sd1")
    html = panel_ui.explore(True, 2, 0, "a man standing <lora:x:1>")
    assert '<svg class="clipskip-plot"' in html and "now: 2" in html and "&lt;lora" not in html


def test_the_plot_goes_when_the_checkpoint_changes(webui):
    import gradio
    """A refresh after a checkpoint change (the browser asks for one on every model change) replaces
    the last model's plot with a line saying so, once; the same model keeps its plot."""
    webui.load("sd1")
    html, plot_model = panel_ui.explore_plot(True, 2, 0, "a cat")
    assert '<svg class="clipskip-plot"' in html and plot_model.startswith("SD 1.x") and f"one pass of {plot_model}" in html
    *_, plot, kept = panel_ui.refresh_outputs(True, 2, 0, "a cat", plot_model=plot_model)
    assert plot == gradio.update() and kept == plot_model  # same model: the plot stays
    webui.load("sdxl")
    *_, plot, kept = panel_ui.refresh_outputs(True, 2, 0, "a cat", plot_model=plot_model)
    assert "clipskip-plot" not in plot["value"] and kept is None
    assert f"The plot was drawn for {plot_model}; the model is now SDXL" in plot["value"]
    *_, plot, kept = panel_ui.refresh_outputs(True, 2, 0, "a cat", plot_model=kept)
    assert plot == gradio.update() and kept is None  # said once; nothing drawn to clear any more


def test_a_message_is_not_a_plot_of_any_model(webui):
    webui.shared.sd_model = None
    html, plot_model = panel_ui.explore_plot(True, 2, 0, "a cat")
    assert "No model is loaded" in html and plot_model is None


def test_explore_without_a_model(webui):
    webui.shared.sd_model = None
    assert "No model is loaded" in panel_ui.explore(True, 2, 0, "a cat")


def test_explore_never_during_a_generation(webui):
    webui.load("sd1")
    webui.shared.state.job_count = 1
    try:
        assert "A generation is running" in panel_ui.explore(True, 2, 0, "a cat")
    finally:
        webui.shared.state.job_count = 0


def test_explore_on_a_model_clip_skip_cannot_change(forge):
    forge.load("flux")
    assert "no effect" in panel_ui.explore(True, 2, 0, "a cat")


# --- built in the WebUI ---------------------------------------------------------------------


def test_panel_built_by_the_host_keeps_the_api_args_and_the_id_scheme(webui):
    for tab in ("txt2img", "img2img"):
        script = webui.script(tab)
        p = script.panel
        assert p.inputs == [p.enabled, p.clip_skip, p.clip_skip_g, p.schedule, p.negative]
        assert script.args_to - script.args_from == len(values.ARG_NAMES) == 5
        assert p.schedule.elem_id == f"script_{tab}_clip_skip_schedule"
        assert p.negative.elem_id == f"script_{tab}_clip_skip_negative"
        assert p.clip_skip.elem_id == f"script_{tab}_clip_skip_clip_skip"
        assert p.clip_skip_g.elem_id == f"script_{tab}_clip_skip_clip_skip_g"
        assert p.status.elem_id == f"script_{tab}_clip_skip_status"
        assert p.prompt.elem_id == f"script_{tab}_clip_skip_prompt"
        classes = set(p.prompt.elem_classes) | set(p.refresh.elem_classes)
        assert {"clipskip-prompt-sink", "clipskip-refresh", f"clipskip-tab-{tab}"} <= classes


def test_js_and_css_use_only_prefixed_names_that_the_panel_makes():
    js = (ROOT / "javascript" / "clipskip.js").read_text(encoding="utf-8")
    css = (ROOT / "style.css").read_text(encoding="utf-8")
    python = "".join((ROOT / "lib_clipskip" / name).read_text(encoding="utf-8")
                     for name in ("panel.py", "panel_ui.py", "explorer.py", "paste.py"))
    # every top-level JS global starts with clipskip
    globals_ = re.findall(r"^(?:var|let|const|function)\s+(\w+)", js, flags=re.MULTILINE)
    assert globals_ and all(name.startswith("clipskip") for name in globals_), globals_
    # every class selector in the CSS and the JS is ours and is made by the Python side
    for source in (js, css):
        for name in set(re.findall(r"\.(clipskip-[\w-]+)", source)):
            stem = name if not name.startswith("clipskip-tab-") else "clipskip-tab-"
            stem = "clipskip-source-" if name.startswith("clipskip-source-") else stem
            stem = "clipskip-line-" if name.startswith("clipskip-line-") and name != "clipskip-line-label" else stem
            assert stem in python, f"{name} is not produced by the panel"
        others = [c for c in re.findall(r"(?<![\w-])\.([a-z][\w-]*)", css) if not c.startswith("clipskip")]
        if source is css:
            assert not others, others


def test_a_stale_refresh_never_overwrites_a_newer_one():
    from types import SimpleNamespace

    from lib_clipskip.panel_ui import RefreshTickets

    tickets, me, other = RefreshTickets(), SimpleNamespace(session_hash="a"), SimpleNamespace(session_hash="b")
    older = tickets.take(me)
    newer = tickets.take(me)
    theirs = tickets.take(other)  # another browser's refresh does not make mine stale
    assert not tickets.is_newest(me, older)
    assert tickets.is_newest(me, newer) and tickets.is_newest(other, theirs)


def test_lora_folders_are_the_ones_each_host_reads(webui, tmp_path):
    from lib_clipskip.hosts import current

    opts = webui.shared.cmd_opts
    opts.lora_dir, opts.lyco_dir_backcompat, opts.embeddings_dir = str(tmp_path / "Lora"), str(tmp_path / "LyCORIS"), str(tmp_path / "emb")
    lora, embeddings, _roots = prompt_files.model_folders(webui.shared, current())
    expected = [opts.lora_dir] if webui.host in ("forge", "reforge", "neo") else [opts.lora_dir, opts.lyco_dir_backcompat]
    if webui.host == "neo":  # Neo also reads every --lora-dirs
        opts.lora_dirs = [str(tmp_path / "more")]
        lora, _, _ = prompt_files.model_folders(webui.shared, current())
        expected = [opts.lora_dir, str(tmp_path / "more")]
    assert lora == expected and embeddings == [opts.embeddings_dir]


def test_the_negative_prompts_files_are_listed_at_the_negative_value(webui, tmp_path):
    webui.load("sd1")
    lora = tmp_path / "Lora"
    lora.mkdir()
    webui.shared.cmd_opts.lora_dir = str(lora)
    webui.shared.cmd_opts.embeddings_dir = str(tmp_path)
    compat_files.write_kohya_lora(lora / "anime.safetensors", family="sd1", clip_skip=2)
    compat_files.write_a1111_pt_embedding(tmp_path / "badhands.pt", width=1024)
    text = "a cat <lora:anime:1>" + panel.NEGATIVE_MARK + "badhands, <lora:anime:1>"
    shown = panel.view(True, 2, 0, text, negative="1", name_wait=5)
    assert [ref.name for ref, _ in shown.files] == ["anime"]  # the prompt's LoRA at 2: trained at 2
    assert "trained-clip-skip-mismatch" not in {w.code for w in shown.files[0][1].warnings}
    assert sorted(ref.name for ref, _ in shown.negative_files) == ["anime", "badhands"]
    html_text = panel.files_html(shown, "slider", "accordion")
    assert html_text.count("negative prompt</span>") == 2 and "here it stays text" in html_text
    assert "Use 2" not in html_text  # nothing to offer: the prompt already runs at 2


def test_a1111_loading_a_checkpoint_says_loading_not_no_model(a1111):
    """A1111's load_model holds ``model_data.sd_model = None`` for the whole load (sd_models.py:794) and
    loads the selected checkpoint lazily after start-up (seen in real A1111 v1.10.1: 25-80 s)."""
    a1111.load("sd1")
    a1111.shared.opts.data["sd_model_checkpoint"] = "sd15-random.safetensors"
    a1111.shared.sd_model = None  # the stand-in has no model_data: the adapter reads shared.sd_model then
    shown = panel.view(True, 2, 0, "a cat")
    assert shown.loading and shown.notes == ["The model is loading; this panel updates when it is ready."]
    assert 'data-clipskip-loading="1"' in panel.status_html(shown)


def test_forge_before_its_first_generation_says_loading(forge):
    from modules import sd_models

    forge.shared.sd_model = sd_models.FakeInitialModel()
    shown = panel.view(True, 2, 0, "a cat")
    assert shown.loading and not any("no effect" in note for note in shown.notes)
    assert shown.notes == ["The model is loading (Forge loads the selected checkpoint at the first generation); "
                           "this panel updates when it is ready."]


def test_long_file_names_can_break_between_words():
    assert panel._breakable("anime_skip2-v1.final<x>") == "anime_<wbr>skip2-<wbr>v1.<wbr>final&lt;x&gt;"
