"""Layer explorer: one full pass per encoder, and curves that agree with real generations.

At value v the "to last" point must equal the cosine similarity (mean over tokens) of the
conditioning a real generation at v hands the model to the one at the smallest value the encoder
has, computed through the extension's own per-generation path on small real CLIP models.
"""

from __future__ import annotations

import re

import pytest
import torch

from lib_clipskip import explorer, panel_ui, plan
from lib_clipskip.values import CLIP_G_SDXL, CLIP_L_SD1, ClipSkipRequest

PROMPT = "a young man standing in a forest, morning light"


def adapter_for(ui):
    from lib_clipskip import extension

    return extension.adapter()


def host_conditioning(ui, sd_model, value: float) -> dict[str, torch.Tensor]:
    """The conditioning of a real encode at ``value`` on every encoder, split per encoder."""
    adapter = adapter_for(ui)
    loaded = adapter.inspect(sd_model)
    resolution = plan.resolve(ClipSkipRequest(True, value, value), loaded.info)
    assert resolution.plan is not None, resolution.messages

    def fail(error):
        raise error

    with torch.no_grad(), adapter.encoding(loaded, resolution.plan, fail):
        out = sd_model.get_learned_conditioning([PROMPT])
    tensor = out["crossattn"] if isinstance(out, dict) else out
    names = [slot.spec.name for slot in loaded.info.slots]
    if len(names) == 1:
        return {names[0]: tensor}
    widths = [ui_width(sd_model, name) for name in names]
    return dict(zip(names, torch.split(tensor, widths, dim=2)))


def ui_width(sd_model, name):
    import webui_models

    module = webui_models.text_models(sd_model)[name]
    config = getattr(module, "config", None)
    return config.hidden_size if config is not None else module.ln_final.normalized_shape[0]


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl", "sdxl_refiner"])
def test_curve_point_is_the_cosine_of_real_conditionings(webui, family):
    sd_model = webui.load(family)
    adapter = adapter_for(webui)
    states = adapter.layer_states(sd_model, PROMPT)
    loaded = adapter.inspect(sd_model)
    assert set(states) == {slot.spec.name for slot in loaded.info.slots}
    curves = {name: explorer.curve(s.states, s.slot.spec, s.final_norm) for name, s in states.items()}
    for name, c in curves.items():
        spec = states[name].slot.spec
        assert c.values == tuple(explorer.available_values(spec, len(states[name].states) - 1))
        assert c.to_last[0] == pytest.approx(1.0, abs=1e-6)
        assert c.to_neighbour[0] is None
    # the reference value and a few others, each through a real per-generation encode
    reference = {name: host_conditioning(webui, sd_model, c.reference)[name] for name, c in curves.items()}
    for value in (2, 7):
        conds = host_conditioning(webui, sd_model, value)
        for name, c in curves.items():
            if value not in c.values:
                continue
            expected = explorer.mean_cosine(conds[name], reference[name])
            assert c.point(value) == pytest.approx(expected, abs=2e-5), (name, value)


def test_forge_sd2_starts_at_2_because_forge_loads_23_layers(forge):
    sd_model = forge.load("sd2")
    states = adapter_for(forge).layer_states(sd_model, PROMPT)["clip_h"]
    c = explorer.curve(states.states, states.slot.spec, states.final_norm)
    assert c.values[0] == 2 and c.values[-1] == 24 and c.reference == 2


def test_one_pass_per_encoder_and_long_prompts_join_their_chunks(webui):
    sd_model = webui.load("sd1")
    short = adapter_for(webui).layer_states(sd_model, PROMPT)["clip_l"].states
    long_prompt = ", ".join([PROMPT] * 12)  # well past 75 tokens: the host encodes 75-token chunks
    long = adapter_for(webui).layer_states(sd_model, long_prompt)["clip_l"].states
    assert len(short) == CLIP_L_SD1.depth + 1
    assert long[0].shape[1] > short[0].shape[1] and long[0].shape[1] % short[0].shape[1] == 0


def test_capture_leaves_the_model_as_it_was(webui):
    sd_model = webui.load("sdxl")
    before = sd_model.get_learned_conditioning([PROMPT])
    adapter_for(webui).layer_states(sd_model, PROMPT)
    after = sd_model.get_learned_conditioning([PROMPT])
    assert torch.equal(before["crossattn"], after["crossattn"]) and torch.equal(before["vector"], after["vector"])


def fake_curve(n=12, current=2.0, spec=CLIP_L_SD1):
    values = tuple(range(1, n + 1))
    return explorer.Curve(spec.name, spec.label, values, tuple(1 - 0.05 * (v - 1) for v in values),
                          (None, *(0.97 for _ in values[1:])), current)


def test_svg_is_inline_with_axis_labels_direct_labels_and_the_current_value():
    svg = explorer.svg([fake_curve(), fake_curve(32, 2.0, CLIP_G_SDXL)])
    assert svg.startswith('<svg class="clipskip-plot"') and svg.endswith("</svg>")
    assert "CLIP skip value (1 = last layer" in svg and "cosine similarity" in svg
    assert svg.count("vs skip 1 (last)") >= 2 and svg.count("vs previous value") >= 2
    assert svg.count("now: 2") == 2
    assert "SDXL OpenCLIP-G" in svg and "CLIP ViT-L" in svg
    # one dot per point: 12 + 11 and 32 + 31
    assert len(re.findall(r"<circle ", svg)) == 23 + 63


def test_svg_escapes_labels():
    c = explorer.Curve("clip_l", "<b>x</b>", (1, 2), (1.0, 0.5), (None, 0.5), None)
    assert "<b>" not in explorer.svg([c])


def test_summary_names_the_biggest_step():
    c = explorer.Curve("clip_l", "CLIP ViT-L", (1, 2, 3), (1.0, 0.9, 0.5), (None, 0.9, 0.4), 2.0)
    text = explorer.summary(c)
    assert "between skip 2 and 3" in text and "0.90 similar" in text



def test_nan_in_the_hidden_states_leaves_a_gap_and_says_so():
    """One NaN (a half-precision overflow in the host) must not raise out of the plot."""
    import math

    c = explorer.Curve("clip_l", "CLIP ViT-L", (1, 2, 3, 4), (1.0, math.nan, 0.8, 0.7), (None, math.nan, math.nan, 0.9), 2.0)
    svg = explorer.svg([c])
    assert svg.count("<polyline") == 3  # "vs last": 1 | 3-4; "vs previous": 4 alone
    assert "nan" not in svg.lower().replace("clipskip", "")
    text = explorer.summary(c)
    assert "no number at skip 2, 3" in text and "NaN" in text
    everything_nan = explorer.Curve("clip_l", "CLIP ViT-L", (1, 2), (math.nan, math.nan), (None, math.nan), None)
    assert explorer.svg([everything_nan]).endswith("</svg>") and "no number at skip 1, 2" in explorer.summary(everything_nan)


@pytest.mark.parametrize("lowest, expected", [
    (0.47, [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
    (0.93, [0.92, 0.94, 0.96, 0.98, 1.0]),
    (-0.3, [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0]),
    (0.992, [0.99, 1.0]),
])
def test_y_ticks_are_round_numbers(lowest, expected):
    c = explorer.Curve("clip_l", "x", (1, 2, 3), (1.0, (1 + lowest) / 2, lowest), (None, 0.99, 0.99), None)
    ticks = explorer.y_ticks(c)
    assert ticks == pytest.approx(expected)
    svg = explorer.svg([c])
    labels = re.findall(r'class="clipskip-tick" x="[\d.]+" y="[\d.]+" text-anchor="end">([^<]+)<', svg)
    assert labels == [explorer._tick_text(t, ticks) for t in ticks]
    assert all(len(label.split(".")[1]) <= 2 for label in labels)


def test_the_current_value_label_sits_above_the_curves():
    svg = explorer.svg([fake_curve(current=11.0)])
    match = re.search(r'<text class="clipskip-current-label" x="([\d.]+)" y="([\d.]+)" text-anchor="(\w+)"', svg)
    assert match and float(match.group(2)) < explorer.TOP and match.group(3) == "end"  # right half: leftwards
    assert 'paint-order="stroke"' in svg


def test_explorer_says_which_loras_are_applied(webui, monkeypatch):
    import sys
    import types


    webui.load("sd1")
    monkeypatch.setitem(sys.modules, "networks", types.SimpleNamespace(loaded_networks=[]))
    assert "without LoRAs" in panel_ui.explore(True, 2, 0, "a cat")
    lora = types.SimpleNamespace(name="style_v2", mentioned_name="style")
    monkeypatch.setitem(sys.modules, "networks", types.SimpleNamespace(loaded_networks=[lora]))
    html = panel_ui.explore(True, 2, 0, "a cat")
    assert "with the LoRAs the last generation left applied (style)" in html and "without LoRAs" not in html
    monkeypatch.delitem(sys.modules, "networks")
    assert "without LoRAs" not in panel_ui.explore(True, 2, 0, "a cat")
