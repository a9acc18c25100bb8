"""Infotext: what a generation writes, what a paste restores, other tools' values and hostile
input, on both hosts' stand-ins (``modules/infotext_utils.py`` mirrors the hosts' parser and
paste function)."""

from __future__ import annotations

import copy
import html
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paste_helpers import paste_updates, paste_values
from test_generation import assert_same, sampled

from lib_clipskip import __version__, extension, infotext, paste, request
from lib_clipskip.plan import EncoderPlan, SkipPlan
from lib_clipskip.values import FAMILY_ENCODERS, ClipSkipRequest, Family, format_value, pick_layers

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def params_of(text):
    from modules import infotext_utils

    return infotext_utils.parse_generation_parameters(text)


def run(ui, prompt="a cat", **kwargs):
    p = ui.txt2img(prompt, **kwargs)
    return p, ui.run(p)


def line(infotext_text):
    return infotext_text.strip().split("\n")[-1]


# --- writing -------------------------------------------------------------------------------------------

def test_sd1_writes_ours_and_the_hosts_clip_skip(webui):
    webui.load("sd1")
    _, processed = run(webui, enabled=True, clip_skip=3)
    assert line(processed.infotexts[0]).endswith(f"Clip skip: 3, CLIP skip ext: 3, CLIP skip ext version: {__version__}")
    _, processed = run(webui, enabled=True, clip_skip=1.5)
    assert "CLIP skip ext: 1.5," in processed.infotexts[0] and "Clip skip" not in processed.infotexts[0]


def test_sd1_value_1_writes_no_host_clip_skip_even_when_the_option_is_2(webui):
    webui.load("sd1")
    _, processed = run(webui, enabled=True, clip_skip=1, override_settings={"CLIP_stop_at_last_layers": 2})
    text = processed.infotexts[0]
    assert "Clip skip:" not in text and "CLIP skip ext: 1," in text


@pytest.mark.parametrize("family, ours, expect_host", [
    ("sd2", {"clip_skip": 3}, {"a1111": None, "forge": "Clip skip: 2", "reforge": "Clip skip: 3"}),
    ("sd2", {"clip_skip": 2}, {"a1111": None, "forge": None, "reforge": None}),  # its default already makes 2
    ("sdxl", {"clip_skip": 3}, {"a1111": None, "forge": "Clip skip: 3", "reforge": "Clip skip: 3"}),
    ("sdxl", {"clip_skip": 1}, {"a1111": None, "forge": None, "reforge": None}),
    ("sdxl", {"clip_skip": 3, "clip_skip_g": 4}, {"a1111": None, "forge": None, "reforge": None}),
    ("sdxl", {"clip_skip": 2.5}, {"a1111": None, "forge": None, "reforge": None}),
])
def test_host_clip_skip_only_where_the_host_reproduces_it(webui, family, ours, expect_host):
    webui.load(family)
    # the host option is 4: without us the host would print "Clip skip: 4" (a lie on A1111 SD2/SDXL)
    _, processed = run(webui, enabled=True, override_settings={"CLIP_stop_at_last_layers": 4}, **ours)
    text = line(processed.infotexts[0])
    expected = expect_host["forge" if webui.host == "neo" else webui.host]  # Neo numbers as Forge
    host_items = [item.strip() for item in text.split(",") if item.strip().startswith("Clip skip:")]
    assert host_items == ([expected] if expected else [])
    assert "CLIP skip ext" in text


def test_nothing_written_when_the_extension_did_nothing(webui):
    webui.load("sd1")
    _, disabled = run(webui, enabled=False, override_settings={"CLIP_stop_at_last_layers": 2})
    assert "CLIP skip ext" not in disabled.infotexts[0] and "Clip skip: 2" in disabled.infotexts[0]
    _, bad = run(webui, enabled=True, clip_skip=20)  # beyond CLIP-L: the host's own value is used
    assert "CLIP skip ext" not in bad.infotexts[0]


def test_nothing_written_on_a_model_it_cannot_change(forge):
    forge.load("flux")
    _, processed = run(forge, enabled=True, clip_skip=3)
    assert "CLIP skip ext" not in processed.infotexts[0]


def test_only_the_failure_is_written_when_the_encode_failed(webui, monkeypatch):
    webui.load("sd1")
    adapter = extension.adapter()

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(type(adapter), "encoding", broken)
    _, processed = run(webui, enabled=True, clip_skip=3, override_settings={"CLIP_stop_at_last_layers": 2})
    text = processed.infotexts[0]
    assert "CLIP skip ext:" not in text and "CLIP skip ext version" not in text
    assert "Clip skip: 2" in text  # what the host itself did
    assert "CLIP skip ext failed: RuntimeError" in text  # and that ours was not used


def test_each_batch_describes_its_own_tag(webui):
    """Per-batch prompts (Dynamic Prompts, wildcards) with and without a tag.  The hosts build each
    image's infotext without ``iteration`` (batch-local lists and an index), the grid's with
    ``use_main_prompt``: each names its own batch."""
    webui.load("sd1")
    _, processed = run(webui, ["a cat <clipskip:3>", "a cat <clipskip:2.5>", "a cat"], n_iter=3, enabled=False)
    grid, first, second, third = processed.infotexts  # the grid first, as the host shows it
    assert "CLIP skip ext: 3," in first and "Clip skip: 3" in first
    assert "CLIP skip ext: 2.5," in second and "Clip skip" not in second
    assert "CLIP skip" not in third and "Clip skip" not in third
    assert line(grid) == line(first)  # the grid describes the main (first) prompt


@pytest.mark.parametrize("call, expected", [
    # A1111 processing.py:1026 / Forge :1031, in batch 2's loop: batch-local lists, index in the batch
    ({"all_prompts": ["c", "d"], "index": 1}, 2),
    # Processed.infotext (A1111 :610): the job's lists, iteration and position
    ({"all_prompts": list("abcdef"), "iteration": 1, "index": 3}, 1),
    # the hires-fix / X/Y/Z callers: the job's lists and an index into them
    ({"all_prompts": list("abcdef"), "index": 5}, 2),
    # the grid: use_main_prompt
    ({"all_prompts": ["c", "d"], "index": 0, "use_main_prompt": True}, 0),
    # a caller of the old signature without an index
    ({"iteration": 1}, 1),
])
def test_batch_number_from_each_hosts_call_shape(call, expected):
    import types

    p = types.SimpleNamespace(batch_size=2, iteration=2)
    assert infotext.batch_number(p, **call) == expected


def test_each_image_of_a_batch_of_two_describes_its_batch(webui):
    webui.load("sd1")
    prompts = ["a cat <clipskip:3>", "a cat <clipskip:3>", "a dog <clipskip:4>", "a dog <clipskip:4>"]
    _, processed = run(webui, prompts, n_iter=2, batch_size=2, enabled=False)
    assert ["CLIP skip ext: 3," in t for t in processed.infotexts[1:]] == [True, True, False, False]
    assert ["CLIP skip ext: 4," in t for t in processed.infotexts[1:]] == [False, False, True, True]


def test_xyz_cells_sharing_one_dict_each_describe_themselves(webui):
    webui.load("sd1")
    base = webui.txt2img("a cat", enabled=True, clip_skip=2)
    cells = []
    for value in (None, 3, 4.5):
        cell = copy.copy(base)  # what XYZ does: a shallow copy, one extra_generation_params dict
        if value is not None:
            request.set_cell(cell, value=value)
        cells.append(webui.run(cell).infotexts[0])
    assert cells[0].count("CLIP skip ext: 2,") == 1 and "source" not in cells[0]
    assert "CLIP skip ext: 3, CLIP skip ext source: xyz" in cells[1]
    assert "CLIP skip ext: 4.5, CLIP skip ext source: xyz" in cells[2] and "Clip skip" not in cells[2]


# --- round trip -------------------------------------------------------------------------------------------

def plan_of(family, values, source="panel"):
    specs = {Family.SD1: ("clip_l",), Family.SD2: ("clip_h",), Family.SDXL: ("clip_l", "clip_g"),
             Family.SDXL_REFINER: ("clip_g",)}[family]
    depth = {"clip_l": 12, "clip_h": 24, "clip_g": 32}
    return SkipPlan(family, source, tuple(EncoderPlan(n, v, pick_layers(v, depth[n]), False, 2.0)
                                          for n, v in zip(specs, values)))


def value_strategy(maximum):
    return st.floats(min_value=1, max_value=maximum, allow_nan=False).map(lambda v: round(v, 4))


plans = st.one_of(
    st.tuples(st.just(Family.SD1), st.tuples(value_strategy(12))),
    st.tuples(st.just(Family.SD2), st.tuples(value_strategy(24))),
    st.tuples(st.just(Family.SDXL), st.tuples(value_strategy(12), value_strategy(32))),
    st.tuples(st.just(Family.SDXL), st.tuples(st.sampled_from([1, 2, 3, 2.5]).map(float)).map(lambda t: t * 2)),
    st.tuples(st.just(Family.SDXL_REFINER), st.tuples(value_strategy(32))),
)


def test_every_value_set_round_trips_through_infotext(webui):
    from modules import infotext_utils

    @HYPOTHESIS
    @given(plans, st.sampled_from(["panel", "prompt tag", "xyz"]))
    def check(family_values, source):
        family, values = family_values
        plan = plan_of(family, values, source)
        pairs = {"Steps": 20, "Sampler": "Euler", "Seed": 1, **infotext.entries(plan)}
        text = "a cat, (red:1.2)\nNegative prompt: ugly\n" + ", ".join(f"{k}: {infotext_utils.quote(v)}" for k, v in pairs.items())
        params = infotext_utils.parse_generation_parameters(text)
        paste.on_pasted(text, params)
        pasted = paste.read(params, family)
        assert pasted.enabled is True
        request = ClipSkipRequest(True, pasted.clip_skip or None, pasted.clip_skip_g or None, source)
        for encoder in plan.encoders:
            spec = next(s for s in FAMILY_ENCODERS[family] if s.name == encoder.name)
            assert request.value_for(family, spec) == encoder.value
        assert format_value(values[0]) in text

    check()


def test_generation_paste_generation_gives_the_same_image(webui):
    for family, ours in (("sd1", {"clip_skip": 2.25}), ("sdxl", {"clip_skip": 3, "clip_skip_g": 1.5})):
        webui.load(family)
        first, processed = run(webui, enabled=True, **ours)
        values = paste_values(webui, processed.infotexts[0])
        assert values["enabled"] is True
        again, processed_again = run(webui, enabled=values["enabled"], clip_skip=values["clip_skip"],
                                     clip_skip_g=values["clip_skip_g"])
        assert_same(sampled(first), sampled(again))
        assert line(processed_again.infotexts[0]) == line(processed.infotexts[0])


def test_sdxl_encoder_the_host_kept_is_written_and_replayed(webui):
    """OpenCLIP-G at 40 can't apply (32 layers): G runs at the host's 2, and the infotext says
    so, so that pasting it back replays G at 2, not at CLIP-L's value."""
    webui.load("sdxl")
    first, processed = run(webui, enabled=True, clip_skip=3, clip_skip_g=40)
    assert "CLIP skip ext L: 3, CLIP skip ext G: 2," in processed.infotexts[0]
    values = paste_values(webui, processed.infotexts[0])
    assert (values["clip_skip"], values["clip_skip_g"]) == (3, 2)
    again, _ = run(webui, enabled=True, clip_skip=values["clip_skip"], clip_skip_g=values["clip_skip_g"])
    assert_same(sampled(first), sampled(again))


# --- paste ----------------------------------------------------------------------------------------------

def test_pasted_float_clip_skip_reaches_the_host_as_an_integer(webui):
    """A1111 writes "Clip skip: 2.0" when its option holds a float; the host's own paste then does
    ``int("2.0")`` in ``get_override_settings`` and fails.  The paste hook hands it "2"."""
    from modules import infotext_utils

    text = "a cat\nSteps: 20, Sampler: Euler, Seed: 1, Clip skip: 2.0"
    with pytest.raises(ValueError):
        infotext_utils.get_override_settings(params_of(text))  # the host alone
    params = params_of(text)
    paste.on_pasted(text, params)
    assert params["Clip skip"] == "2"
    assert infotext_utils.get_override_settings(params) == [("Clip skip", "CLIP_stop_at_last_layers", 2)]
    assert paste_values(webui, text)["enabled"] is False  # a host value, not ours: the panel stays off


def test_pasted_text_cannot_switch_off_the_clean_up(webui):
    """``CLIP skip ext notes`` in a pasted text is just text: "Clip skip: 99" is still dropped."""
    from modules import infotext_utils

    text = "a cat\nSteps: 20, Sampler: Euler, Seed: 1, Clip skip: 99, CLIP skip ext notes: x"
    params = params_of(text)
    paste.on_pasted(text, params)
    assert "Clip skip" not in params
    assert infotext_utils.get_override_settings(params) == []
    assert any("99" in note for note in paste.read(params).messages)



ENABLED = {"enabled": True, "clip_skip": 5.0, "clip_skip_g": 6.0, "status": "old"}


def test_paste_from_an_image_made_without_the_extension_leaves_the_panel_off(webui):
    webui.load("sd1")
    _, processed = run(webui, enabled=False, override_settings={"CLIP_stop_at_last_layers": 2})
    updates = paste_updates(webui, processed.infotexts[0])
    assert updates["enabled"] == {"value": False}
    assert updates["clip_skip"] == {} and updates["clip_skip_g"] == {}
    # the host's own Clip skip keeps working: it is not bound to our fields, so the override shows it
    from modules import infotext_utils

    overrides = infotext_utils.get_override_settings(params_of(processed.infotexts[0]))
    assert ("Clip skip", "CLIP_stop_at_last_layers", 2) in overrides


@pytest.mark.parametrize("bad", [
    "CLIP skip ext: banana", "CLIP skip ext: ", "CLIP skip ext: NaN", "CLIP skip ext: inf", "CLIP skip ext: 0.5",
    "CLIP skip ext: 1e999", "CLIP skip ext: " + "9" * 5000, 'CLIP skip ext: "' + "x" * 10000 + '"',
    "Clip skip: 99", "Clip skip: banana", "Clip skip: ", "Clip skip: nan", "CLIP skip ext L: x, CLIP skip ext G: y",
])
def test_bad_values_are_ignored_with_a_message_and_the_panel_kept(webui, bad):
    text = f"a cat\nSteps: 20, Sampler: Euler, {bad}, Seed: 1"
    values = paste_values(webui, text, current=ENABLED)
    controls = ("enabled", "clip_skip", "clip_skip_g")
    assert {k: values[k] for k in controls} == {k: ENABLED[k] for k in controls}
    assert "Ignored" in values["status"]
    assert not webui.scripts.reported_errors


def test_bad_host_clip_skip_is_not_offered_as_an_override(webui):
    from modules import infotext_utils

    text = "a cat\nSteps: 20, Sampler: Euler, Clip skip: 99, Seed: 1"
    params = params_of(text)
    paste.on_pasted(text, params)
    assert "Clip skip" not in params
    assert infotext_utils.get_override_settings(params) == []


def test_sdnext_values_are_translated_and_reported(webui):
    text = "a cat\nSteps: 20, Sampler: Euler, CLiP-skip: 1.5, Seed: 1"
    webui.load("sd1")
    values = paste_values(webui, text)
    assert values["enabled"] is True and values["clip_skip"] == 1.5 and "SD.Next CLiP-skip 1.5 on SD 1.x is 1.5" in values["status"]
    webui.load("sdxl")
    values = paste_values(webui, text)
    assert values["clip_skip"] == 2.5 and "CLiP-skip 1.5 on SDXL is 2.5 on both encoders" in values["status"]
    params = params_of(text)
    assert paste.read(params, Family.SDXL).clip_skip == 2.5  # the API path: no callback, same reading


def test_comfyui_negative_numbers(webui):
    webui.load("sd1")
    values = paste_values(webui, "a cat\nSteps: 20, Sampler: Euler, Clip skip: -2, Seed: 1")
    assert values["enabled"] is True and values["clip_skip"] == 2.0
    assert "ComfyUI numbering" in values["status"]
    params = params_of("a cat\nSteps: 20, Sampler: Euler, Clip skip: -3, Seed: 1")
    paste.on_pasted("", params)
    assert params["Clip skip"] == "3"  # the host's own override gets a value it can use
    values = paste_values(webui, "a cat\nSteps: 20, Sampler: Euler, CLIP skip ext: -4, Seed: 1")
    assert values["clip_skip"] == 4.0


def test_reforge_dynamic_clip_skip_is_noted_not_applied(webui):
    """reForge's per-step schedule can't be restored: its first step (``Clip skip``) is what the host makes."""
    text = "a cat\nSteps: 20, Sampler: Euler, Clip skip: 2, Dynamic clip skip: 9->2, Dynamic clip skip start: 9, Seed: 1"
    webui.load("sd1")
    values = paste_values(webui, text, current=ENABLED)
    assert values["enabled"] is False
    assert "(Dynamic clip skip: 9->2); only its first step, Clip skip 2" in html.unescape(values["status"])


def test_api_infotext_path_without_the_callback_reads_the_same(webui):
    webui.load("sdxl")
    for text in ("a\nSteps: 2, Sampler: Euler, CLiP-skip: 2, Seed: 1", "a\nSteps: 2, Sampler: Euler, Clip skip: -3, Seed: 1",
                 "a\nSteps: 2, Sampler: Euler, CLIP skip ext L: 3, CLIP skip ext G: 4.5, Seed: 1"):
        fields = webui.runners["txt2img"].infotext_fields
        direct = [key(params_of(text)) for _, key in fields if callable(key)]
        params = params_of(text)
        paste.on_pasted(text, params)
        via_callback = [key(params) for _, key in fields if callable(key)]
        assert direct == via_callback


def test_paste_fields_are_named_for_send_to_img2img(webui):
    from modules import infotext_utils

    script = webui.script("txt2img")
    assert script.paste_field_names == paste.PASTE_FIELD_NAMES
    fields = webui.runners["txt2img"].infotext_fields
    inputs, outputs = infotext_utils.send_to_fields(fields, webui.runners["img2img"].infotext_fields, script.paste_field_names)
    assert script.panel.clip_skip in inputs and webui.script("img2img").panel.clip_skip in outputs


def test_any_pasted_text_never_raises(webui, caplog):
    webui.load("sdxl")
    keys = st.sampled_from(["CLIP skip ext", "CLIP skip ext L", "CLIP skip ext G", "CLIP skip ext source",
                            "Clip skip", "CLiP-skip", "Dynamic clip skip", "Steps", "Size"])
    junk = (st.text(max_size=60) | st.from_regex(r"-?[0-9.eE+-]{0,12}", fullmatch=True)
            | st.sampled_from(["nan", "inf", "-inf", '"', "1,2", "a:b", "9" * 5000]))

    @HYPOTHESIS
    @given(st.text(max_size=300), st.lists(st.tuples(keys, junk), max_size=6))
    def check(free, pairs):
        from modules import infotext_utils

        text = free + "\n" + ", ".join(f"{k}: {infotext_utils.quote(v)}" for k, v in pairs)
        for raw in (text, free):
            paste_updates(webui, raw)
            paste.read(params_of(raw))
            paste.read(dict(pairs))
        assert not webui.scripts.reported_errors

    with caplog.at_level(logging.ERROR):
        check()
    assert "Traceback" not in caplog.text


def test_fractional_host_clip_skip_goes_to_the_panel_not_the_host(webui):
    from modules import infotext_utils

    text = "a cat\nSteps: 20, Sampler: Euler, Clip skip: 1.5, Seed: 1"
    values = paste_values(webui, text)
    assert values["enabled"] is True and values["clip_skip"] == 1.5 and "fractional" in values["status"]
    params = params_of(text)
    paste.on_pasted(text, params)
    assert "Clip skip" not in params and infotext_utils.get_override_settings(params) == []


# --- the API's infotext field (Api.apply_infotext: no paste callbacks) ------------------------------

def test_api_infotext_restores_our_values_and_the_image(webui):
    webui.load("sd1")
    first, processed = run(webui, enabled=True, clip_skip=2.5)
    p = webui.api_txt2img("a cat", infotext=processed.infotexts[0])  # the prompt field is the request's own
    script = webui.script()
    assert p.script_args[script.args_from:script.args_to] == [True, 2.5, 0.0, "", ""]
    webui.run(p)
    assert_same(sampled(p), sampled(first))


def test_api_infotext_host_clip_skip_is_cast_by_the_host_before_any_script(webui):
    """The API never calls paste callbacks: "Clip skip: 2.0" fails in the host's own cast (as real
    A1111 answers HTTP 500), and a "Clip skip: 99" reaches the override (the host's own path)."""
    webui.load("sd1")
    with pytest.raises(ValueError):
        webui.api_txt2img(infotext="a cat\nSteps: 4, Sampler: Euler, Seed: 1, Clip skip: 2.0")
    p = webui.api_txt2img(infotext="a cat\nSteps: 4, Sampler: Euler, Seed: 1, Clip skip: 3, CLIP skip ext notes: x")
    assert p.override_settings == {"CLIP_stop_at_last_layers": 3}
    script = webui.script()
    assert p.script_args[script.args_from] is False  # made without the extension: the panel stays off


@pytest.mark.parametrize("host", ["a1111", "forge", "reforge", "neo", "classic"])
def test_the_jobs_json_carries_our_keys_on_every_host(host):
    """``Processed.js()`` (the API's ``info``, the UI's result) dumps ``extra_generation_params`` as they are:
    Forge Classic without a ``default``, so a value that is not JSON would fail the whole response."""
    import json

    from webui import WebUI

    ui = WebUI(host)
    try:
        ui.load("sd1")
        processed = ui.run(ui.txt2img(enabled=True, clip_skip=3))
        data = json.loads(processed.js())
        assert "CLIP skip ext: 3" in data["infotexts"][0]
        assert data["extra_generation_params"]["CLIP skip ext"] == ""  # computed per image in the infotexts only
    finally:
        ui.close()
