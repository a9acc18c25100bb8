"""Pasting other tools' parameters into each host's stand-in: the panel and the host's own
``Clip skip`` together make the layer the image was really made at (↙ / PNG Info: callbacks, then
the override dropdown; the API's ``infotext``: no callback, overrides from the raw text)."""

from __future__ import annotations

import html

import gradio as gr
import pytest
import tool_images as ti
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_generation import assert_same, sampled
from tool_cases import CASES, TEXT_CASES

from lib_clipskip import extension, infotext, paste
from lib_clipskip.hosts.base import usable_host_option
from lib_clipskip.numbering import HOST_TOOLS, host_layers
from lib_clipskip.plan import EncoderPlan, SkipPlan
from lib_clipskip.values import FAMILY_ENCODERS, ClipSkipRequest, Family, pick_layers

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
OPTION = "CLIP_stop_at_last_layers"
PANEL = ("enabled", "clip_skip", "clip_skip_g", "status")


def paste_button(ui, text, tab="txt2img"):
    """↙ / PNG Info "Send to": our panel's values and the override dropdown's settings after the paste."""
    from modules import infotext_utils

    script = ui.script(tab)
    override = gr.Dropdown(value=[], choices=[], multiselect=True)
    func, outputs = infotext_utils.paste_function(ui.runners[tab].infotext_fields, override)
    by_component = {id(c): u for c, u in zip(outputs, func(text))}
    panel = {"enabled": False, "clip_skip": 0.0, "clip_skip_g": 0.0, "status": ""}
    for name, component in zip(PANEL, (script.panel.enabled, script.panel.clip_skip, script.panel.clip_skip_g,
                                       script.panel.status)):
        if "value" in by_component[id(component)]:
            panel[name] = by_component[id(component)]["value"]
    chosen = by_component[id(override)].get("value") or []
    return panel, infotext_utils.create_override_settings_dict(chosen)


def generate_after_paste(ui, panel, overrides):
    p = ui.txt2img("a photo of a cat", enabled=panel["enabled"], clip_skip=panel["clip_skip"],
                   clip_skip_g=panel["clip_skip_g"], override_settings=dict(overrides))
    ui.run(p)
    return p


def expected_run(ui, layers):
    values = list(layers.values())
    p = ui.txt2img("a photo of a cat", enabled=True, clip_skip=values[0], clip_skip_g=values[-1])
    ui.run(p)
    return p


def effective_layers(ui, panel, overrides):
    """What the next generation conditions on, from the adapter (not from the translation table)."""
    adapter = extension.adapter()
    model = ui.shared.sd_model
    if panel["enabled"]:
        info = adapter.inspect(model).info
        request = ClipSkipRequest(True, panel["clip_skip"] or None, panel["clip_skip_g"] or None)
        return {slot.spec.name: request.value_for(info.family, slot.spec) for slot in info.slots}
    option = usable_host_option(overrides.get(OPTION, ui.shared.opts.CLIP_stop_at_last_layers))
    option = option if option is not None else int(ui.shared.opts.CLIP_stop_at_last_layers)
    return {slot.spec.name: slot.host_value for slot in adapter.inspect(model, host_option=option).info.slots}


ISSUE_CASES = [c for c in CASES if "issue case" in c.name]


@pytest.mark.parametrize("case", ISSUE_CASES, ids=lambda c: c.name)
def test_issue_cases_restore_the_layer_by_paste_and_by_the_api(webui, case):
    """The four cases of issue 11 on both hosts: ↙ and the API's infotext give the image of the layer
    it was made at (our panel at that value, ``torch.equal`` conditioning)."""
    webui.load(case.family)
    text = case.make()
    reference = sampled(expected_run(webui, case.expected))
    panel, overrides = paste_button(webui, text)
    assert_same(sampled(generate_after_paste(webui, panel, overrides)), reference)
    status = html.unescape(panel["status"]) if panel["status"] else ""
    assert status.count("<li>") == 1, status
    api = webui.api_txt2img("a photo of a cat", infotext=text)
    webui.run(api)
    assert_same(sampled(api), reference)


def test_issue_case_2_forge_corrects_its_own_clip_skip(forge):
    """Forge's Clip skip 2 on SD 2.x is our 3: the pasted override becomes 1 and the panel says why."""
    forge.load("sd2")
    panel, overrides = paste_button(forge, ti.webui_text("sd2", 2))
    assert panel["enabled"] is True and panel["clip_skip"] == 2.0
    assert overrides == {}  # 1 is Forge's option already: nothing to override
    assert "AUTOMATIC1111 ignores Clip skip on SD 2.x" in html.unescape(panel["status"])
    assert "Forge's own Clip skip 2 would be 3: set to 1" in html.unescape(panel["status"])


def test_issue_case_4_ambiguity_is_said_on_both_hosts(webui):
    webui.load("sdxl")
    panel, overrides = paste_button(webui, ti.webui_text("sdxl", 3))
    status = html.unescape(panel["status"])
    assert 'unless "Clip skip SDXL" was on' in status and "CLIP-L 3, OpenCLIP-G 2" in status
    if webui.host == "a1111":  # A1111 makes 2 and 2 at its own 3: nothing to correct
        assert panel["enabled"] is False and overrides == {OPTION: 3}
    else:
        assert (panel["enabled"], panel["clip_skip"], panel["clip_skip_g"]) == (True, 2.0, 0.0) and overrides == {}


def test_a1111_with_clip_skip_sdxl_on_corrects_the_override(a1111):
    a1111.load("sdxl")
    a1111.shared.opts.sdxl_clip_l_skip = True
    panel, overrides = paste_button(a1111, ti.webui_text("sdxl", 3))
    assert (panel["enabled"], panel["clip_skip"]) == (True, 2.0) and overrides == {OPTION: 2}


def test_every_text_case_restores_its_layer_on_both_paths(webui):
    """Each row and family of the table, pasted with its family loaded: ↙ and the API's infotext make
    the layer the image was made at, or leave things as the host has them when nothing is known."""
    loaded = None
    for case in TEXT_CASES:
        if case.family != loaded:
            webui.load(case.family)
            loaded = case.family
        text = case.make()
        panel, overrides = paste_button(webui, text)
        if case.expected is None:
            assert panel["enabled"] is not True, case.name
            continue
        assert effective_layers(webui, panel, overrides) == case.expected, case.name
        try:
            api = webui.api_txt2img("a cat", infotext=text)
        except ValueError:  # the host's own cast of a fractional "Clip skip" (A1111 answers HTTP 500)
            assert "." in str(text.split("Clip skip: ")[1].split(",")[0]), case.name
            continue
        args = api.script_args[webui.script().args_from:webui.script().args_to]
        api_panel = dict(zip(PANEL, args))
        extension.guard_host_option(api)  # what before_process does with an override the host can't use
        assert effective_layers(webui, api_panel, api.override_settings) == case.expected, case.name


def test_numbering_table_matches_each_adapter(webui):
    """``numbering.host_layers`` for the running host is what its adapter says the host does."""
    adapter = extension.adapter()
    tool = HOST_TOOLS[adapter.name]
    for family in ("sd1", "sd2", "sdxl", "sdxl_refiner"):
        model = webui.load(family)
        for clip_l_skip in ((False, True) if webui.host == "a1111" and family == "sdxl" else (False,)):
            webui.shared.opts.sdxl_clip_l_skip = clip_l_skip
            for option in range(1, 13):
                slots = adapter.inspect(model, host_option=option).info.slots
                assert {s.spec.name: s.host_value for s in slots} == host_layers(tool, Family(family), option, clip_l_skip)


# --- our own writing, pasted on either host ---------------------------------------------------------------

def value_strategy(depth):
    return st.one_of(st.integers(1, min(depth, 12)).map(float), st.floats(1, depth).map(lambda v: round(v, 2)))


plans = st.one_of(
    st.tuples(st.just(Family.SD1), st.tuples(value_strategy(12))),
    st.tuples(st.just(Family.SD2), st.tuples(value_strategy(24))),
    st.tuples(st.just(Family.SDXL), st.tuples(value_strategy(12), value_strategy(32))),
    st.tuples(st.just(Family.SDXL), st.sampled_from([2.0, 3.0]).map(lambda v: (v, v))),
)


def test_our_infotext_pastes_to_the_same_values_on_both_hosts(webui):
    """Written as each host writes it (its ``Version``, the ``Clip skip`` it can reproduce), read on
    A1111 and on Forge: the panel gets the written values."""
    from modules import infotext_utils

    writer = extension.adapter()
    version = ti.A1111_VERSION if writer.name == "a1111" else ti.FORGE_VERSION

    @HYPOTHESIS
    @given(plans, st.sampled_from(["a1111", "forge"]))
    def check(family_values, reader):
        family, values = family_values
        encoders = tuple(EncoderPlan(spec.name, v, pick_layers(v, spec.depth), spec.needs_pooled, 2.0)
                         for spec, v in zip(FAMILY_ENCODERS[family], values))
        plan = SkipPlan(family, "panel", encoders)
        host = writer.reproducing_option(family, list(plan.values().values()))
        pairs = {"Steps": 20, "Sampler": "Euler", "Seed": 1}
        if host is not None and host > 1:
            pairs["Clip skip"] = host
        pairs.update(infotext.entries(plan))
        pairs["Version"] = version
        text = "a cat\nNegative prompt: ugly\n" + ", ".join(f"{k}: {infotext_utils.quote(v)}" for k, v in pairs.items())
        params = infotext_utils.parse_generation_parameters(text)
        context = paste.HostContext(reader, family)
        paste.normalise(params, context, text)
        pasted = paste.read(params, context)
        request = ClipSkipRequest(True, pasted.clip_skip or None, pasted.clip_skip_g or None)
        assert pasted.enabled is True
        for spec, value in zip(FAMILY_ENCODERS[family], values):
            assert request.value_for(family, spec) == value

    check()


def test_any_tool_text_never_raises_in_the_paste(webui, caplog):
    webui.load("sdxl")
    keys = st.sampled_from(["Clip skip", "Version", "App", "CLiP-skip", "TripClipSkip_value", "TripClipSkip_type",
                            "Dynamic clip skip", "Backend", "Civitai resources", "Created Date", "ENSD", "Model"])
    values = st.text(max_size=30) | st.sampled_from(["-2", "1.5", "2.0", "99", "nan", ti.FORGE_VERSION, ti.REFORGE_VERSION,
                                                     "ComfyUI", "SD.Next", "31337", "Original", "0", "Fooocus v2.5.5"])

    @HYPOTHESIS
    @given(st.lists(st.tuples(keys, values), max_size=8))
    def check(pairs):
        from modules import infotext_utils

        text = "a cat\nSteps: 2, " + ", ".join(f"{k}: {infotext_utils.quote(v)}" for k, v in pairs)
        paste_button(webui, text)
        webui.api_txt2img("a cat", infotext=text.replace("Clip skip", "Clip_skip"))  # the host's own cast aside
        assert not webui.scripts.reported_errors

    check()
    assert "Traceback" not in caplog.text
