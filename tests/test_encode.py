"""Truncated encoding on real ``transformers`` CLIP text models, small and at the real SD shapes."""

import pytest
import torch
from clip_models import SHAPES, build_text_model, build_tokenizer, small
from webui_models import TOKENIZER_DIR

from lib_clipskip.encode import encoder_layers, layers_limited_to, run_blocks, skipping
from lib_clipskip.values import pick_layers


@pytest.fixture(scope="module")
def tokens():
    tokenizer = build_tokenizer(TOKENIZER_DIR)
    ids = tokenizer("a young man standing in a forest", add_special_tokens=False)["input_ids"]
    row = [tokenizer.bos_token_id, *ids] + [tokenizer.eos_token_id] * (76 - len(ids))
    return torch.tensor([row, row[:1] + row[2:] + row[-1:]]), len(tokenizer)


def count_layer_runs(model):
    runs = []
    handles = [layer.register_forward_hook(lambda *_, i=i: runs.append(i)) for i, layer in enumerate(encoder_layers(model))]
    return runs, handles


def reference(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, output_hidden_states=True)


@pytest.mark.parametrize("shape_name", ["clip_l", "clip_h"])
@pytest.mark.parametrize("real", [False, True], ids=["small", "real-shape"])
def test_integer_values_are_exact_and_run_only_needed_layers(tokens, shape_name, real):
    ids, vocab = tokens
    shape = dict(SHAPES[shape_name]) if real else small(shape_name)
    model = build_text_model(shape, vocab)
    depth = shape["num_hidden_layers"]
    full = reference(model, ids)
    runs, handles = count_layer_runs(model)
    for value in (1, 2, 3) if real else range(1, depth + 1):
        runs.clear()
        with torch.no_grad(), skipping(model, pick_layers(value, depth), needs_pooled=False):
            out = model(input_ids=ids, output_hidden_states=True)
        assert runs == list(range(depth - value + 1)), f"value {value} ran layers {runs}"
        expected = full.hidden_states[-value]
        # whichever index a host reads, it gets the chosen layer; "last" gets it through the final LN
        assert all(torch.equal(h, expected) for h in (out.hidden_states[-1], out.hidden_states[-value], out.hidden_states[11]))
        final_ln = model.text_model.final_layer_norm
        assert torch.equal(out.last_hidden_state, final_ln(expected))
    for handle in handles:
        handle.remove()
    assert "forward" not in vars(model)
    assert len(encoder_layers(model)) == depth


def test_fractional_value_blends_neighbouring_layers(tokens):
    ids, vocab = tokens
    model = build_text_model(small("clip_l"), vocab)
    full = reference(model, ids)
    with torch.no_grad(), skipping(model, pick_layers(2.25, 12), needs_pooled=False):
        out = model(input_ids=ids, output_hidden_states=True)
    expected = 0.75 * full.hidden_states[-2] + 0.25 * full.hidden_states[-3]
    torch.testing.assert_close(out.hidden_states[-1], expected)
    assert not torch.equal(out.hidden_states[-1], full.hidden_states[-2])


def test_pooled_encoders_run_every_layer_and_keep_the_pooled_output(tokens):
    ids, vocab = tokens
    model = build_text_model(small("clip_g"), vocab)
    full = reference(model, ids)
    runs, _ = count_layer_runs(model)
    with torch.no_grad(), skipping(model, pick_layers(3, 32), needs_pooled=True):
        out = model(input_ids=ids, output_hidden_states=True)
    assert len(runs) == 32
    assert torch.equal(out.pooler_output, full.pooler_output)
    assert torch.equal(out.hidden_states[-2], full.hidden_states[-3])


def test_transformers_5_flat_layout_is_supported(tokens):
    """transformers 5 puts embeddings/encoder/final_layer_norm on the model itself: the
    ``CLIPTextTransformer`` of 4.x has exactly that layout and the same output type."""
    ids, vocab = tokens
    flat = build_text_model(small("clip_l"), vocab).text_model
    assert not hasattr(flat, "text_model")
    with torch.no_grad():
        full = flat(input_ids=ids, output_hidden_states=True)
    runs, _ = count_layer_runs(flat)
    with torch.no_grad(), skipping(flat, pick_layers(2, 12), needs_pooled=False):
        out = flat(input_ids=ids, output_hidden_states=True)
    assert len(runs) == 11 and torch.equal(out.hidden_states[-2], full.hidden_states[-2])


def test_everything_is_restored_when_the_caller_raises(tokens):
    _ids, vocab = tokens
    model = build_text_model(small("clip_l"), vocab)
    layers = encoder_layers(model)
    with pytest.raises(RuntimeError, match="host failed"), skipping(model, pick_layers(2, 12), needs_pooled=False):
        raise RuntimeError("host failed")
    assert "forward" not in vars(model) and encoder_layers(model) is layers
    with pytest.raises(ValueError), layers_limited_to(model, 3):
        assert len(encoder_layers(model)) == 3
        raise ValueError
    assert encoder_layers(model) is layers


def test_a_failure_inside_our_forward_falls_back_to_the_host_pass(tokens, monkeypatch):
    ids, vocab = tokens
    model = build_text_model(small("clip_l"), vocab)
    full = reference(model, ids)
    errors = []
    from lib_clipskip import encode

    monkeypatch.setattr(encode, "blend", lambda *_: (_ for _ in ()).throw(RuntimeError("boom")))
    with torch.no_grad(), skipping(model, pick_layers(2, 12), needs_pooled=False, on_error=errors.append):
        out = model(input_ids=ids, output_hidden_states=True)
    assert [str(e) for e in errors] == ["boom"]
    assert torch.equal(out.last_hidden_state, full.last_hidden_state)


def test_run_blocks_for_openclip_style_towers():
    blocks = [lambda x, k=k: x * 2 + k for k in range(6)]
    x = torch.ones(1)
    chosen, last = run_blocks(blocks, x, pick_layers(2, 6), run_all=False)
    assert last is None and chosen.item() == 2 ** 5 + sum(k * 2 ** (4 - k) for k in range(5))
    chosen_all, last_all = run_blocks(blocks, x, pick_layers(1.5, 6), run_all=True)
    after5 = chosen.item()
    assert last_all.item() == after5 * 2 + 5
    assert chosen_all.item() == pytest.approx(0.5 * last_all.item() + 0.5 * after5)
