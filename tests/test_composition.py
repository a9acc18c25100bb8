"""The extension among others: prompts from file (per-line tags and negative prompts), and other
extensions that wrap ``p.get_conds_with_caching`` / ``p.cached_params`` before or after it."""

from __future__ import annotations

import pytest
from test_generation import assert_same, host_run, our_run, sampled

from lib_clipskip import generation


def test_prompts_from_file_each_line_its_own_tag_and_infotext(webui):
    webui.load("sd1")
    p = webui.txt2img("", enabled=True, clip_skip=2)
    processed = webui.prompts_from_file(p, 'a cat <clipskip:3>\n--prompt "a dog <clipskip:2.5>" --negative_prompt "ugly"\na bird')
    first, second, third = processed.infotexts
    assert "CLIP skip ext: 3, CLIP skip ext source: prompt tag" in first
    assert "Negative prompt: ugly" in second and "CLIP skip ext: 2.5, CLIP skip ext source: prompt tag" in second
    assert "CLIP skip ext: 2," in third and "source" not in third  # no tag: the panel
    images = processed.images
    assert float(images[0]) == float(webui.run(webui.txt2img("a cat <clipskip:3>", enabled=True, clip_skip=2)).images[0])
    dog = webui.txt2img("a dog <clipskip:2.5>", negative_prompt="ugly", enabled=True, clip_skip=2)
    assert float(images[1]) == float(webui.run(dog).images[0])
    assert float(images[2]) == float(webui.run(webui.txt2img("a bird", enabled=True, clip_skip=2)).images[0])


class Wrapper:
    """What another extension does in its ``before_process``: wrap ``p``'s own methods, chaining."""

    def __init__(self):
        self.calls = []

    def wrap(self, p):
        for name in ("cached_params", "get_conds_with_caching"):
            inner = getattr(p, name)

            def wrapper(*args, _inner=inner, _name=name, **kwargs):
                self.calls.append(_name)
                return _inner(*args, **kwargs)

            vars(p)[name] = wrapper


@pytest.mark.parametrize("order", ["before", "after"])
def test_other_wrappers_chain_with_ours_never_clobbered(webui, order, monkeypatch):
    from lib_clipskip import extension

    webui.load("sd1")
    other = Wrapper()
    ours = extension.before_process

    def before_process(p, args):
        if order == "before":
            other.wrap(p)
            ours(p, args)
        else:
            ours(p, args)
            other.wrap(p)

    monkeypatch.setattr(extension, "before_process", before_process)
    p = webui.txt2img(enabled=True, clip_skip=3)
    webui.run(p)
    calls = list(other.calls)
    assert calls.count("get_conds_with_caching") == 2 and "cached_params" in calls  # theirs ran, once per call
    assert_same(sampled(p), sampled(host_run(webui, host_skip=3)))  # and ours applied
    assert generation.STATE_ATTRIBUTE not in vars(p)
    if order == "before":  # ours restored what was there: theirs
        assert vars(p)["get_conds_with_caching"].__name__ == "wrapper"
    else:  # theirs wraps ours and stays; ours now passes straight through
        other.calls.clear()
        assert_same(sampled(our_run(webui, clip_skip=3)), sampled(host_run(webui, host_skip=3)))
