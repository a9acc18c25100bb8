"""Processings started inside a generation (ADetailer's inpainting pass, mirrored from
``scripts/!adetailer.py`` at 36189cb in ``tests/standin/extensions/adetailer``) condition at the
generation's value; an explicit choice of the extension that started them wins in their pass."""

from __future__ import annotations

import sys
import threading

import pytest
from test_generation import assert_differs, assert_same, sampled

from lib_clipskip import generation, request
from lib_clipskip.values import ClipSkipRequest


@pytest.fixture(params=["a1111", "forge"])
def ui(request):
    from webui import WebUI

    webui = WebUI(request.param, extensions=("adetailer",))
    webui.load("sd1")
    yield webui
    webui.close()


def adetailer(ui, tab="txt2img"):
    return ui.runners[tab].script("ADetailer")


def generate(ui, prompt="a photo of a cat", ad=None, n_iter=1, **ours):
    """A txt2img generation with ADetailer on; returns (outer p, [its passes' p])."""
    p = ui.txt2img(prompt, n_iter=n_iter, **ours)
    script = adetailer(ui)
    script.passes.clear()
    p.script_args[script.args_from:script.args_to] = [True, {"ad_use_clip_skip": False, "ad_clip_skip": 1,
                                                             "ad_prompt": "", **(ad or {})}]
    p.processed = ui.run(p)
    assert ui.scripts.reported_errors == []
    return p, [child for _outer, child in script.passes]


def reference(ui, child, host_skip):
    """The same img2img pass with the extension off and the host's own Clip skip at ``host_skip``."""
    ref = ui.processing.StableDiffusionProcessingImg2Img(
        prompt=child.prompt.replace("<clipskip:3>", ""), negative_prompt=child.negative_prompt, seed=child.seed,
        steps=child.steps, init_images=list(child.init_images), denoising_strength=child.denoising_strength,
        override_settings={"CLIP_stop_at_last_layers": host_skip})
    ref.scripts = ui.runners["img2img"]
    ref.script_args = ui.script_args("img2img", enabled=False)
    ref.cached_c, ref.cached_uc = [None, None], [None, None]
    ui.run(ref)
    return sampled(ref)


def test_the_pass_conditions_at_the_panels_value(ui):
    _outer, (child,) = generate(ui, enabled=True, clip_skip=2)
    assert_same(sampled(child), reference(ui, child, 2))
    assert_differs(sampled(child), reference(ui, child, 1))  # the host's saved value would differ
    assert generation.STATE_ATTRIBUTE not in vars(child)  # nothing left on the pass after it


def test_the_pass_conditions_at_the_batchs_tag(ui):
    _outer, children = generate(ui, ["a cat <clipskip:3>", "a cat"], n_iter=2, enabled=False)
    first, second = children
    assert_same(sampled(first), reference(ui, first, 3))
    assert_same(sampled(second), reference(ui, second, 1))


def test_adetailers_own_clip_skip_wins_over_panel_and_tag(ui, caplog):
    _outer, (child,) = generate(ui, "a cat <clipskip:3>", ad={"ad_use_clip_skip": True, "ad_clip_skip": 1},
                                enabled=True, clip_skip=2)
    assert_same(sampled(child), reference(ui, child, 1))
    assert "set its own Clip skip; the <clipskip:…> tag is ignored" in caplog.text


@pytest.mark.parametrize("own", [False, True])
def test_with_clip_skip_among_adetailers_scripts(ui, own):
    """``ad_script_names`` with our script: our ``before_process`` runs on the pass with the copied
    panel args — still the panel's value, and still ADetailer's own when it sets one."""
    ui.shared.opts.data["ad_script_names"] = "clipskip"
    _outer, (child,) = generate(ui, ad={"ad_use_clip_skip": own, "ad_clip_skip": 1}, enabled=True, clip_skip=3)
    assert_same(sampled(child), reference(ui, child, 1 if own else 3))


def test_the_outer_images_infotext_is_its_own(ui):
    outer, _ = generate(ui, ["a cat <clipskip:3>", "a cat"], n_iter=2, ad={"ad_use_clip_skip": True}, enabled=True,
                        clip_skip=2)
    _grid, first, second = outer.processed.infotexts
    assert "CLIP skip ext: 3, CLIP skip ext source: prompt tag" in first and "CLIP skip ext: 2," in second


def test_a_pass_that_raises_leaves_nothing_behind(ui, monkeypatch):
    script = adetailer(ui)

    def broken(*args, **kwargs):
        raise RuntimeError("detector failed")

    monkeypatch.setattr(type(script), "postprocess_image", broken)
    p = ui.txt2img(enabled=True, clip_skip=2)
    p.script_args[script.args_from:script.args_to] = [True, {}]
    ui.run(p)
    assert ui.scripts.reported_errors  # the host reported ADetailer's error and went on
    ui.scripts.reported_errors.clear()
    after = ui.txt2img(enabled=False)
    ui.run(after)
    plain = ui.txt2img(enabled=False, override_settings={"CLIP_stop_at_last_layers": 1})
    ui.run(plain)
    assert_same(sampled(after), sampled(plain))


def test_concurrent_generations_pass_on_their_own_value():
    """The outer generation is found on the current thread's stack: two threads, two values."""
    barrier = threading.Barrier(2, timeout=10)
    seen = {}

    class P:
        def __init__(self):
            self.override_settings = {}

    def process_images_inner(p, child):  # the frame name the hosts use
        barrier.wait()
        seen[threading.get_ident()] = (p, generation.inherited_request(child))
        barrier.wait()

    def run(value):
        outer = P()
        vars(outer)[generation.STATE_ATTRIBUTE] = generation.GenerationState(ClipSkipRequest(True, value), None)
        process_images_inner(outer, P())

    threads = [threading.Thread(target=run, args=(v,)) for v in (2.0, 3.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(r.clip_skip for _p, r in seen.values()) == [2.0, 3.0]
    assert all(vars(p)[generation.STATE_ATTRIBUTE].request is r for p, r in seen.values())


def test_nothing_is_inherited_outside_a_generation():
    class P:
        def __init__(self):
            self.override_settings = {}

    assert generation.inherited_request(P()) is None
    assert not request.decided_by_cell(P())
    assert "process_images" not in {f.f_code.co_name for f in _frames()}


def _frames():
    frame = sys._getframe()
    while frame is not None:
        yield frame
        frame = frame.f_back


# --- the public API for other extensions ------------------------------------------------------------

def test_external_api_reads_sets_and_reports(ui):
    import importlib

    external = importlib.import_module("lib_clipskip.external")
    assert external.API_VERSION == 1
    p = ui.txt2img(enabled=True, clip_skip=2)
    assert external.request_of(p) is None  # nothing before the generation sets it up
    external.set_request(p, 3)
    assert external.request_of(p)["clip_skip"] == 3.0 and external.request_of(p)["source"] == "external"
    processed = ui.run(p)  # the panel says 2: the extension that set 3 decides
    ref = ui.txt2img(enabled=False, override_settings={"CLIP_stop_at_last_layers": 3})
    ui.run(ref)
    assert_same(sampled(p), sampled(ref))
    assert "CLIP skip ext: 3" in processed.infotexts[0]
    with pytest.raises(ValueError, match="below 1"):
        external.set_request(p, 0.5)


def test_external_api_on_a_nested_pass_and_layers_used(ui, monkeypatch):
    import importlib

    external = importlib.import_module("lib_clipskip.external")
    script = adetailer(ui)
    seen = {}
    original = type(script).get_i2i_p

    def get_i2i_p(self, p, args, image):
        i2i = original(self, p, args, image)
        seen["inherited"] = external.request_of(i2i)  # what the pass would use
        seen["outer layers"] = external.layers_used(p)  # what the outer image was conditioned with
        external.set_request(i2i, 4)  # this extension's explicit choice for its pass
        return i2i

    monkeypatch.setattr(type(script), "get_i2i_p", get_i2i_p)
    outer, (child,) = generate(ui, enabled=True, clip_skip=2)
    assert seen["inherited"]["clip_skip"] == 2.0 and seen["inherited"]["inherited"] is True
    assert_same(sampled(child), reference(ui, child, 4))
    assert seen["outer layers"] == [{"batch": 0, "encoder": "clip_l", "value": 2.0, "hidden_state": 11, "blend": None,
                                     "depth": 12, "by": "extension"}]
    assert external.layers_used(outer) == []  # after the generation its record is gone with it
