import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib_clipskip.plan import ModelInfo, family_slots, resolve
from lib_clipskip.values import (
    CLIP_G_SDXL,
    CLIP_L_SD1,
    ClipSkipRequest,
    ClipSkipValueError,
    Family,
    default_values,
    format_value,
    parse_value,
    pick_layers,
    request_from_args,
)


@pytest.mark.parametrize(("raw", "expected"), [(1, 1.0), ("2", 2.0), (" 1.5 ", 1.5), (2.25, 2.25), ("3.00001", 3.0)])
def test_parse_value_accepts_numbers(raw, expected):
    assert parse_value(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "", "   ", float("nan"), float("inf"), 0, 0.5, -2, 65, True, None, [2], "9" * 40])
def test_parse_value_rejects_with_a_sentence(raw):
    with pytest.raises(ClipSkipValueError) as error:
        parse_value(raw)
    message = str(error.value)
    assert message.endswith(".") and "CLIP skip" in message and len(message) < 120


@pytest.mark.parametrize(("value", "text"), [(2.0, "2"), (1.5, "1.5"), (2.25, "2.25"), (1.3333, "1.3333")])
def test_format_value(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize(("value", "upper", "lower", "weight"), [
    (1, 12, 12, 0.0), (2, 11, 11, 0.0), (12, 1, 1, 0.0), (1.5, 12, 11, 0.5), (2.25, 11, 10, 0.25)])
def test_pick_layers_counts_from_the_end(value, upper, lower, weight):
    pick = pick_layers(value, 12)
    assert (pick.upper, pick.lower, pick.weight) == (upper, lower, weight)
    assert pick.layers_needed == upper


@pytest.mark.parametrize("value", [12.5, 13, 0.9])
def test_pick_layers_rejects_values_beyond_the_encoder(value):
    with pytest.raises(ClipSkipValueError, match="beyond this encoder's 12 layers"):
        pick_layers(value, 12)


@given(st.floats(min_value=1, max_value=32, allow_nan=False))
def test_pick_layers_stays_inside_the_encoder(value):
    value = parse_value(value)
    pick = pick_layers(value, 32)
    assert 1 <= pick.lower <= pick.upper <= 32
    assert 0 <= pick.weight < 1
    assert math.isclose(32 - pick.upper + 1 + pick.weight, value, abs_tol=1e-3)


def test_request_from_ui_args_and_api_dict_agree():
    ui = request_from_args([True, 1.5, 2]).request
    api = request_from_args([{"enabled": True, "clip_skip": 1.5, "clip_skip_g": 2}, 0, 0]).request
    assert ui == api
    assert (ui.enabled, ui.clip_skip, ui.clip_skip_g) == (True, 1.5, 2.0)


def test_request_zero_means_auto_from_settings_defaults():
    request = request_from_args([True, 0, 0]).request
    assert request.clip_skip is None and request.clip_skip_g is None
    assert request.value_for(Family.SD1, CLIP_L_SD1) == 1.0
    assert request.value_for(Family.SDXL, CLIP_G_SDXL) == 2.0
    tuned = ClipSkipRequest(True, None, None, defaults=default_values({(Family.SD1, "clip_l"): 2.0}))
    assert tuned.value_for(Family.SD1, CLIP_L_SD1) == 2.0


def test_g_follows_clip_skip_unless_set():
    assert ClipSkipRequest(True, 3.0, None).value_for(Family.SDXL, CLIP_G_SDXL) == 3.0
    assert ClipSkipRequest(True, 3.0, 2.5).value_for(Family.SDXL, CLIP_G_SDXL) == 2.5


@pytest.mark.parametrize("bad", ["abc", float("nan"), -1, 0.5, "1e999"])
def test_bad_panel_value_disables_with_a_message(bad):
    parsed = request_from_args([True, bad, 0])
    assert parsed.request.enabled is False
    assert len(parsed.messages) == 1 and "host's own CLIP skip is used" in parsed.messages[0]


def test_bad_g_value_falls_back_to_auto():
    parsed = request_from_args({"enabled": True, "clip_skip": 2, "clip_skip_g": "banana"})
    assert parsed.request.enabled and parsed.request.clip_skip_g is None
    assert "OpenCLIP-G follows the CLIP-L value" in parsed.messages[0]


def test_unknown_api_keys_and_garbage_args_never_raise():
    assert "clip_skp" in request_from_args({"enabled": True, "clip_skp": 2}).messages[0]
    assert request_from_args("garbage").request.enabled is False
    assert request_from_args(None).request.enabled is False


@given(st.lists(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40)), max_size=4))
def test_any_args_never_raise(args):
    request_from_args(args)


def test_resolve_keeps_host_value_where_ours_cannot_apply():
    forge_sd2 = ModelInfo(Family.SD2, "forge", family_slots(Family.SD2, {"clip_h": 2.0}, {"clip_h": 23}))
    resolution = resolve(ClipSkipRequest(True, 1.0), forge_sd2)
    assert resolution.plan is None
    assert "needs layer 24 of 24, which this host does not load (23 layers)" in resolution.messages[0]
    assert resolve(ClipSkipRequest(True, 3.0), forge_sd2).plan.value_of("clip_h") == 3.0


def test_resolve_per_encoder_on_sdxl():
    sdxl = ModelInfo(Family.SDXL, "a1111", family_slots(Family.SDXL, {"clip_l": 2.0, "clip_g": 2.0}))
    plan = resolve(ClipSkipRequest(True, 13.0, 3.0), sdxl)
    assert plan.plan.value_of("clip_l") is None and plan.plan.value_of("clip_g") == 3.0
    assert "beyond this encoder's 12 layers" in plan.messages[0]


def test_resolve_says_why_on_models_without_effect():
    flux = ModelInfo(Family.OTHER, "forge", no_effect_reason="Forge conditions Flux on CLIP-L's pooled output only")
    resolution = resolve(ClipSkipRequest(True, 2.0), flux)
    assert resolution.plan is None
    assert resolution.messages == ("CLIP skip has no effect on this model: Forge conditions Flux on CLIP-L's pooled output only.",)
    assert resolve(ClipSkipRequest(False, 2.0), flux).messages == ()
