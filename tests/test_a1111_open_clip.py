"""A1111's OpenCLIP towers (SD2 ViT-H, SDXL / refiner bigG) under the extension's patch.

The towers are the stand-in mirrors of open_clip / ldm / sgm wrapped by the A1111 hijack
classes, exactly as ``sd_hijack.model_hijack.hijack`` wraps a loaded model.  Real shapes
(ViT-H: 1024 wide, 24 layers, 16 heads; bigG: 1280 wide, 32 layers, 20 heads) are built once
per module; the other cases use the real depth at a small width.
"""

from __future__ import annotations

import contextlib
import types

import pytest
import torch

from lib_clipskip import encode as encode_module
from lib_clipskip.hosts import open_clip as open_clip_host
from lib_clipskip.hosts.a1111 import A1111Adapter
from lib_clipskip.hosts.open_clip import open_clip_handle
from lib_clipskip.plan import EncoderPlan, EncoderSlot, resolve
from lib_clipskip.values import CLIP_G_SDXL, CLIP_H_SD2, ClipSkipRequest, Family, pick_layers
from tests import standin
from tests.clip_models import WORDS

SHORT = "a photo of a cat in the forest"
LONG = " ".join(WORDS * 4)  # 80 tokens: two chunks
WITH_BREAK = "masterpiece, (best quality:1.2), a young man BREAK standing in a [blue] forest"


@pytest.fixture(scope="module")
def a1111():
    shared = standin.use("a1111")
    yield shared
    standin.purge()


def _vocab_size():
    import open_clip

    return open_clip.tokenizer._tokenizer.vocab_size


def build_sd2(width, heads, layers=24, seed=1):
    """An SD2 model object as A1111 holds it after ``hijack``: ``cond_stage_model`` is the wrapper."""
    import open_clip
    from ldm.modules.encoders.modules import FrozenOpenCLIPEmbedder
    from modules import sd_hijack

    tower = open_clip.build_text_model(width, layers, heads, _vocab_size(), seed=seed)
    m = types.SimpleNamespace(cond_stage_model=FrozenOpenCLIPEmbedder(tower, layer="penultimate"))
    sd_hijack.model_hijack.hijack(m)
    return m


def build_refiner(width, heads, layers=32, seed=2):
    """An SDXL refiner (OpenCLIP-G only) after ``hijack``, configured as ``sd_xl_refiner.yaml``."""
    import open_clip
    from modules import sd_hijack
    from sgm.modules.encoders.modules import FrozenOpenCLIPEmbedder2, GeneralConditioner

    tower = open_clip.build_text_model(width, layers, heads, _vocab_size(), seed=seed)
    embedder = FrozenOpenCLIPEmbedder2(tower, layer="penultimate", always_return_pooled=True, legacy=False)
    m = types.SimpleNamespace(conditioner=GeneralConditioner([embedder]), cond_stage_model=None)
    sd_hijack.model_hijack.hijack(m)
    return m


@pytest.fixture(scope="module")
def sd2_real(a1111):
    return build_sd2(1024, 16)


@pytest.fixture(scope="module")
def g_real(a1111):
    return build_refiner(1280, 20)


@pytest.fixture(scope="module")
def sd2_small(a1111):
    return build_sd2(64, 4, seed=3)


@pytest.fixture(scope="module")
def g_small(a1111):
    return build_refiner(64, 4, seed=4)


def handle_of(m):
    wrapper = m.cond_stage_model
    spec = CLIP_G_SDXL if type(wrapper).__name__ == "FrozenOpenCLIPEmbedder2WithCustomWords" else CLIP_H_SD2
    return open_clip_handle(wrapper.wrapped, spec)


def plan_for(handle, value):
    spec = handle.slot.spec
    return EncoderPlan(spec.name, value, pick_layers(value, spec.depth), spec.needs_pooled, handle.slot.host_value)


def run(m, prompt, value=None, on_error=None):
    """The wrapper's own ``forward([prompt])``, optionally inside our scope at ``value``."""
    errors = [] if on_error is None else on_error
    handle = handle_of(m)
    scope = handle.scope(plan_for(handle, value), errors.append) if value is not None else contextlib.nullcontext()
    with torch.no_grad(), scope:
        return m.cond_stage_model([prompt])


@contextlib.contextmanager
def counting(m):
    """Count resblock forwards."""
    counter = {"calls": 0}

    def hook(*_):
        counter["calls"] += 1

    hooks = [block.register_forward_hook(hook) for block in m.cond_stage_model.wrapped.model.transformer.resblocks]
    try:
        yield counter
    finally:
        for h in hooks:
            h.remove()


def tokens_of(prompt):
    import open_clip

    return open_clip.tokenize([prompt])


def states(wrapped, tokens):
    """Every hidden state of the tower (index k = after k blocks), NLD, raw."""
    model = wrapped.model
    x = (model.token_embedding(tokens) + model.positional_embedding).permute(1, 0, 2)
    out = [x.permute(1, 0, 2)]
    for block in model.transformer.resblocks:
        x = block(x, attn_mask=model.attn_mask)
        out.append(x.permute(1, 0, 2))
    return out


# --- slots -------------------------------------------------------------------------------------

def test_slots_follow_what_the_host_does(sd2_small, g_small):
    sd2, g = handle_of(sd2_small), handle_of(g_small)
    assert sd2.slot == EncoderSlot(CLIP_H_SD2, 24, 2.0)
    assert g.slot == EncoderSlot(CLIP_G_SDXL, 32, 2.0)
    wrapped = sd2_small.cond_stage_model.wrapped
    wrapped.layer_idx = 0
    try:
        assert handle_of(sd2_small).slot.host_value == 1.0
    finally:
        wrapped.layer_idx = 1
    wrapped = g_small.cond_stage_model.wrapped
    wrapped.layer = "last"
    try:
        assert handle_of(g_small).slot.host_value == 1.0
    finally:
        wrapped.layer = "penultimate"


# --- identity and really skip at real shapes ---------------------------------------------------

def test_sd2_real_shape_identity_and_skip(sd2_real):
    with counting(sd2_real) as host_count:
        host = run(sd2_real, SHORT)
    with counting(sd2_real) as ours_count:
        ours = run(sd2_real, SHORT, value=2.0)
    assert host.shape == (1, 77, 1024)
    assert torch.equal(host, ours)
    assert host_count["calls"] == ours_count["calls"] == 23
    with counting(sd2_real) as count:
        run(sd2_real, SHORT, value=4.0)
    assert count["calls"] == 21


def test_g_real_shape_identity_and_pooled(g_real):
    with counting(g_real) as host_count:
        host_z, host_pooled = run(g_real, SHORT)
    with counting(g_real) as ours_count:
        z, pooled = run(g_real, SHORT, value=2.0)
    assert host_z.shape == (1, 77, 1280) and host_pooled.shape == (1, 1280)
    assert torch.equal(host_z, z)
    assert torch.equal(host_pooled, pooled)
    assert host_count["calls"] == ours_count["calls"] == 32
    with counting(g_real) as count:
        z3, pooled3 = run(g_real, SHORT, value=3.0)
    assert count["calls"] == 32  # the pooled output needs the true last layer
    assert torch.equal(pooled3, host_pooled)
    assert not torch.equal(z3, host_z)


# --- identity on long prompts and BREAK (real depth, small width) --------------------------------

@pytest.mark.parametrize("prompt", [SHORT, LONG, WITH_BREAK])
def test_sd2_identity_prompts(sd2_small, prompt):
    host = run(sd2_small, prompt)
    ours = run(sd2_small, prompt, value=2.0)
    if prompt is not SHORT:
        assert host.shape[1] == 154
    assert torch.equal(host, ours)


@pytest.mark.parametrize("prompt", [SHORT, LONG, WITH_BREAK])
def test_g_identity_prompts(g_small, prompt):
    host_z, host_pooled = run(g_small, prompt)
    z, pooled = run(g_small, prompt, value=2.0)
    if prompt is not SHORT:
        assert host_z.shape[1] == 154
    assert torch.equal(host_z, z)
    assert torch.equal(host_pooled, pooled)


@pytest.mark.parametrize(("value", "blocks"), [(1.0, 24), (2.0, 23), (2.5, 23), (3.0, 22), (4.0, 21), (24.0, 1)])
def test_sd2_runs_only_the_layers_needed(sd2_small, value, blocks):
    with counting(sd2_small) as count:
        run(sd2_small, LONG, value=value)
    assert count["calls"] == 2 * blocks  # two chunks


@pytest.mark.parametrize("value", [1.0, 2.0, 3.5, 32.0])
def test_g_always_runs_every_layer(g_small, value):
    with counting(g_small) as count:
        run(g_small, SHORT, value=value)
    assert count["calls"] == 32


# --- values -----------------------------------------------------------------------------------

def _encode_at(m, tokens, value):
    handle = handle_of(m)
    errors = []
    with torch.no_grad(), handle.scope(plan_for(handle, value), errors.append):
        out = m.cond_stage_model.wrapped.encode_with_transformer(tokens)
    assert errors == []
    return out


def test_sd2_values(sd2_small):
    wrapped = sd2_small.cond_stage_model.wrapped
    tokens = tokens_of(SHORT)
    with torch.no_grad():
        hs = states(wrapped, tokens)
        ln = wrapped.model.ln_final
        assert torch.equal(_encode_at(sd2_small, tokens, 1.0), ln(hs[24]))  # the true last layer, with LN
        assert torch.equal(_encode_at(sd2_small, tokens, 2.0), ln(hs[23]))
        assert torch.equal(_encode_at(sd2_small, tokens, 3.0), ln(hs[22]))
        torch.testing.assert_close(_encode_at(sd2_small, tokens, 2.5), ln(torch.lerp(hs[23], hs[22], 0.5)))
        torch.testing.assert_close(_encode_at(sd2_small, tokens, 2.25), ln(torch.lerp(hs[23], hs[22], 0.25)))
        assert not torch.allclose(ln(hs[24]), ln(hs[23]))


def test_g_values(g_small):
    wrapped = g_small.cond_stage_model.wrapped
    tokens = tokens_of(SHORT)
    with torch.no_grad():
        hs = states(wrapped, tokens)
        host = wrapped.encode_with_transformer(tokens)
        for value, index in ((1.0, 32), (2.0, 31), (3.0, 30), (12.0, 21)):
            d = _encode_at(g_small, tokens, value)
            assert torch.equal(d["penultimate"], hs[index])  # raw: no final LayerNorm
            assert torch.equal(d["last"], hs[32])
            assert torch.equal(d["pooled"], host["pooled"])
        d = _encode_at(g_small, tokens, 1.5)
        torch.testing.assert_close(d["penultimate"], torch.lerp(hs[32], hs[31], 0.5))
    z, pooled = run(g_small, SHORT, value=3.0)
    host_z, host_pooled = run(g_small, SHORT)
    assert torch.equal(pooled, host_pooled)
    assert not torch.equal(z, host_z)


def test_g_configured_with_last_layer(g_small):
    """A bigG set to ``layer="last"`` (host value 1) still gets our layer, and its own after the block."""
    wrapped = g_small.cond_stage_model.wrapped
    tokens = tokens_of(SHORT)
    wrapped.layer = "last"
    try:
        handle = handle_of(g_small)
        assert handle.slot.host_value == 1.0
        with torch.no_grad():
            hs = states(wrapped, tokens)
            host_z, host_pooled = run(g_small, SHORT)
            z, pooled = run(g_small, SHORT, value=1.0)
            assert torch.equal(host_z, z) and torch.equal(host_pooled, pooled)
            _z3, pooled3 = run(g_small, SHORT, value=3.0)
            assert wrapped.layer == "last"
            with handle.scope(plan_for(handle, 3.0), [].append):
                z3_direct = g_small.cond_stage_model.encode_with_transformers(tokens)
            assert torch.equal(z3_direct, hs[30])
            assert torch.equal(pooled3, host_pooled)
    finally:
        wrapped.layer = "penultimate"


# --- restore and failure ------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["sd2_small", "g_small"])
def test_patch_is_removed_after_the_block(request, fixture):
    m = request.getfixturevalue(fixture)
    wrapped = m.cond_stage_model.wrapped
    handle = handle_of(m)
    original = type(wrapped).text_transformer_forward
    with handle.scope(plan_for(handle, 3.0), [].append):
        assert "text_transformer_forward" in vars(wrapped)
    assert "text_transformer_forward" not in vars(wrapped)
    assert wrapped.text_transformer_forward.__func__ is original
    with pytest.raises(KeyError), handle.scope(plan_for(handle, 3.0), [].append):
        raise KeyError("boom")
    assert "text_transformer_forward" not in vars(wrapped)
    assert wrapped.layer == "penultimate"


@pytest.mark.parametrize("fixture", ["sd2_small", "g_small"])
def test_error_asks_the_host_to_redo_the_call(request, fixture, monkeypatch):
    m = request.getfixturevalue(fixture)
    wrapped = m.cond_stage_model.wrapped

    def broken(*args, **kwargs):
        raise RuntimeError("broken blocks")

    monkeypatch.setattr(open_clip_host, "run_blocks", broken)
    errors = []
    with pytest.raises(encode_module.EncodeFallback, match="broken blocks"):
        run(m, LONG, value=3.0, on_error=errors)
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)  # the first chunk stops the call
    assert "text_transformer_forward" not in vars(wrapped) and wrapped.layer == "penultimate"
    assert encode_module.run_blocks is not broken


# --- the A1111 adapter end to end ---------------------------------------------------------------

def test_adapter_sd2(sd2_small):
    adapter = A1111Adapter()
    loaded = adapter.inspect(sd2_small)
    assert loaded.info.family is Family.SD2
    assert loaded.info.slots == (EncoderSlot(CLIP_H_SD2, 24, 2.0),)
    plan = resolve(ClipSkipRequest(enabled=True, clip_skip=3.0), loaded.info).plan
    assert plan is not None and plan.changes_anything
    errors = []
    wrapped = sd2_small.cond_stage_model.wrapped
    tokens = tokens_of(SHORT)
    with torch.no_grad():
        hs = states(wrapped, tokens)
        with adapter.encoding(loaded, plan, errors.append):
            z = sd2_small.cond_stage_model.encode_with_transformers(tokens)
            full = sd2_small.cond_stage_model([SHORT])
        host = sd2_small.cond_stage_model([SHORT])
        ours_again = run(sd2_small, SHORT, value=3.0)
    assert errors == []
    assert torch.equal(z, wrapped.model.ln_final(hs[22]))
    assert torch.equal(full, ours_again)
    assert not torch.equal(full, host)
    assert "text_transformer_forward" not in vars(wrapped)


def test_adapter_refiner(g_small):
    adapter = A1111Adapter()
    loaded = adapter.inspect(g_small)
    assert loaded.info.family is Family.SDXL_REFINER
    assert loaded.info.slots == (EncoderSlot(CLIP_G_SDXL, 32, 2.0),)
    plan = resolve(ClipSkipRequest(enabled=True, clip_skip=1.0, clip_skip_g=4.0), loaded.info).plan
    assert plan.value_of("clip_g") == 4.0
    wrapped = g_small.cond_stage_model.wrapped
    tokens = tokens_of(SHORT)
    errors = []
    with torch.no_grad():
        hs = states(wrapped, tokens)
        host_z, host_pooled = g_small.cond_stage_model([SHORT])
        with adapter.encoding(loaded, plan, errors.append):
            z = g_small.cond_stage_model.encode_with_transformers(tokens)
            full_z, full_pooled = g_small.cond_stage_model([SHORT])
    assert errors == []
    assert torch.equal(z, hs[29])
    assert torch.equal(full_pooled, host_pooled)
    assert not torch.equal(full_z, host_z)
    identity = resolve(ClipSkipRequest(enabled=True, clip_skip=2.0), loaded.info).plan
    with torch.no_grad(), adapter.encoding(loaded, identity, errors.append):
        same_z, same_pooled = g_small.cond_stage_model([SHORT])
    assert torch.equal(same_z, host_z) and torch.equal(same_pooled, host_pooled)
