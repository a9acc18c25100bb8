"""``<clipskip:…>`` in the prompt: parsing, registration the WebUI way, precedence and the cond cache,
on both hosts' stand-ins."""

from __future__ import annotations

import logging

import pytest
from test_generation import assert_differs, assert_same, sampled

from lib_clipskip import prompt_tag, request, schedule
from lib_clipskip.values import ClipSkipValueError

# --- parsing (pure) ------------------------------------------------------------------------------

@pytest.mark.parametrize("items, expected", [
    (["3"], (3.0, None)),
    (["1.5"], (1.5, None)),
    (["3", "4"], (3.0, 4.0)),
    (["l=3"], (3.0, None)),
    (["g=4"], (None, 4.0)),
    (["l=3", "g=4"], (3.0, 4.0)),
    (["G=4", "L=2.25"], (2.25, 4.0)),
    (["auto", "5"], (None, 5.0)),
    (["3", "g=5"], (3.0, 5.0)),
    ([" 2 "], (2.0, None)),
])
def test_tag_forms(items, expected):
    assert schedule.parse_items(items) == expected


@pytest.mark.parametrize("items", [
    ["banana"], ["1", "2", "3"], ["x=3"], ["l=3", "l=4"], ["3", "l=4"], ["0.5"], ["99"], ["nan"], ["inf"],
    ["-"], ["1e400"], ["9" * 500], [], ["="],
])
def test_bad_tags_raise_a_value_error_with_a_sentence(items):
    with pytest.raises(ClipSkipValueError) as error:
        schedule.parse_items(items)
    assert str(error.value)


def test_last_of_several_tags_wins_and_bad_ones_are_reported():
    class Params:
        def __init__(self, *items):
            self.items = list(items)

    request, messages = prompt_tag.request_from_tag([Params("3"), Params("4")], defaults=())
    assert request.clip_skip == 4 and request.source == "prompt tag"
    assert "2 <clipskip:…> tags" in messages[0]
    request, messages = prompt_tag.request_from_tag([Params("3"), Params("banana")], defaults=())
    assert request.clip_skip == 3
    assert any("<clipskip:banana>" in m for m in messages)
    assert prompt_tag.request_from_tag([Params("oops")], defaults=())[0] is None


# --- registration ----------------------------------------------------------------------------------

def test_registered_in_on_before_ui_because_initialize_clears_the_registry(webui):
    from modules import extra_networks

    assert "clipskip" in extra_networks.extra_network_registry
    extra_networks.initialize()  # what initialize_rest does after scripts load
    assert "clipskip" not in extra_networks.extra_network_registry
    webui.callbacks.before_ui_callback()
    network = extra_networks.extra_network_registry["clipskip"]
    assert isinstance(network, extra_networks.ExtraNetwork) and network.name == "clipskip"


# --- generations --------------------------------------------------------------------------------------

def run(ui, prompt, **kwargs):
    p = ui.txt2img(prompt, **kwargs)
    processed = ui.run(p)
    return p, processed


def test_tag_is_stripped_and_equals_the_panel_at_the_same_value(webui):
    webui.load("sd1")
    tagged, processed = run(webui, "a photo of a cat <clipskip:3>", enabled=False)
    assert tagged.prompts == ["a photo of a cat "]
    panel, _ = run(webui, "a photo of a cat ", enabled=True, clip_skip=3)
    assert_same(sampled(tagged), sampled(panel))
    host, _ = run(webui, "a photo of a cat ", enabled=False)
    assert_differs(sampled(tagged), sampled(host))
    assert "CLIP skip ext source: prompt tag" in processed.infotexts[0]


def test_tag_beats_panel_and_no_tag_restores_the_panel_per_batch(webui):
    webui.load("sd1")
    p, processed = run(webui, ["a cat <clipskip:4>", "a cat"], enabled=True, clip_skip=2, n_iter=2)
    _grid, first, second = processed.infotexts
    assert "CLIP skip ext: 4" in first and "source: prompt tag" in first
    assert "CLIP skip ext: 2" in second and "source" not in second
    tag_only, _ = run(webui, "a cat", enabled=True, clip_skip=4)
    panel_only, _ = run(webui, "a cat", enabled=True, clip_skip=2)
    assert_same(sampled(p), sampled(tag_only) + sampled(panel_only))


def test_xyz_cell_beats_the_tag(webui):
    webui.load("sd1")
    p = webui.txt2img("a cat <clipskip:4>", enabled=False)
    request.set_cell(p, value=3)
    processed = webui.run(p)
    assert "CLIP skip ext: 3" in processed.infotexts[0] and "source: xyz" in processed.infotexts[0]
    reference, _ = run(webui, "a cat", enabled=True, clip_skip=3)
    assert_same(sampled(p), sampled(reference))


def test_sdxl_tag_forms(webui):
    webui.load("sdxl")
    _, processed = run(webui, "a cat <clipskip:l=3:g=5>", enabled=False)
    assert "CLIP skip ext L: 3, CLIP skip ext G: 5" in processed.infotexts[0]
    _, processed = run(webui, "a cat <clipskip:3>", enabled=False)
    assert "CLIP skip ext: 3," in processed.infotexts[0]


def test_bad_tag_is_ignored_with_a_message_and_the_prompt_kept(webui, caplog):
    webui.load("sd1")
    with caplog.at_level(logging.WARNING):
        bad, processed = run(webui, "a cat <clipskip:banana> in a hat", enabled=False)
    assert "Ignored the tag <clipskip:banana>" in caplog.text
    assert bad.prompts == ["a cat  in a hat"]
    host, _ = run(webui, "a cat  in a hat", enabled=False)
    assert_same(sampled(bad), sampled(host))
    assert "CLIP skip ext" not in processed.infotexts[0]
    assert not webui.scripts.reported_errors


def test_bad_tag_falls_back_to_the_panel(webui):
    webui.load("sd1")
    _, processed = run(webui, "a cat <clipskip:0.2>", enabled=True, clip_skip=3)
    assert "CLIP skip ext: 3" in processed.infotexts[0] and "source" not in processed.infotexts[0]


def test_master_toggle_off_ignores_the_tag_but_the_host_still_strips_it(webui):
    webui.load("sd1")
    webui.shared.opts.clipskip_enabled = False
    p, processed = run(webui, "a cat <clipskip:3>", enabled=False)
    assert p.prompts == ["a cat "]
    host, _ = run(webui, "a cat ", enabled=False)
    assert_same(sampled(p), sampled(host))
    assert "clipskip_state" not in vars(p)
    assert "CLIP skip ext" not in processed.infotexts[0]
    assert not any(callable(v) for v in p.extra_generation_params.values())


def test_tag_is_in_the_cond_cache_key(webui):
    webui.load("sd1")
    a, _ = run(webui, "a cat <clipskip:3>", enabled=False)
    b, _ = run(webui, "a cat <clipskip:4>", enabled=False)
    assert getattr(b, "encoder_misses", 0) > 0
    assert_differs(sampled(a), sampled(b))
    again, _ = run(webui, "a cat <clipskip:4>", enabled=False)
    assert getattr(again, "encoder_misses", 0) == 0  # same tag: the host's cache answers
    assert_same(sampled(again), sampled(b))


def test_hires_prompt_tag_applies_to_the_hires_pass(webui):
    webui.load("sd1")
    p, processed = run(webui, "a cat <clipskip:3>", enabled=False, enable_hr=True, hr_prompt="a cat <clipskip:5>")
    q, _ = run(webui, "a cat <clipskip:3>", enabled=False, enable_hr=True, hr_prompt="a cat <clipskip:3>")
    first_p, hires_p = sampled(p)[:2], sampled(p)[2:]
    first_q, hires_q = sampled(q)[:2], sampled(q)[2:]
    assert_same(first_p, first_q)
    assert_differs(hires_p, hires_q)
    assert "CLIP skip ext: 3" in processed.infotexts[0]  # the first pass's value; the hires tag is in the infotext's Hires prompt
