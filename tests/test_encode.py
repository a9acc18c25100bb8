"""Truncated encoding on real ``transformers`` CLIP text models, small and at the real SD shapes."""

import threading

import pytest
import torch
from clip_models import SHAPES, build_text_model, build_tokenizer, small
from webui_models import TOKENIZER_DIR

from lib_clipskip.encode import EncodeFallback, encoder_layers, final_layer_norm, run_blocks, skipping, text_transformer
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
        final_ln = final_layer_norm(model)
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
    ``CLIPTextTransformer`` of 4.x has exactly that layout and the same output type (under 5 the
    model is that layout already)."""
    ids, vocab = tokens
    flat = text_transformer(build_text_model(small("clip_l"), vocab))
    assert not hasattr(flat, "text_model") and hasattr(flat, "final_layer_norm")
    with torch.no_grad():
        full = flat(input_ids=ids, output_hidden_states=True)
    runs, _ = count_layer_runs(flat)
    with torch.no_grad(), skipping(flat, pick_layers(2, 12), needs_pooled=False):
        out = flat(input_ids=ids, output_hidden_states=True)
    assert len(runs) == 11 and torch.equal(out.hidden_states[-2], full.hidden_states[-2])


def layer_hooks(model):
    """The forward hooks on the encoder's layers (transformers 5 puts its own output-capturing hooks
    there on the first pass and keeps them: only ours must be gone afterwards)."""
    return [dict(layer._forward_hooks) for layer in encoder_layers(model)]


def test_everything_is_restored_when_the_caller_raises(tokens):
    _ids, vocab = tokens
    model = build_text_model(small("clip_l"), vocab)
    layers, hooks = encoder_layers(model), layer_hooks(model)
    with pytest.raises(RuntimeError, match="host failed"), skipping(model, pick_layers(2, 12), needs_pooled=False):
        raise RuntimeError("host failed")
    assert "forward" not in vars(model) and encoder_layers(model) is layers and layer_hooks(model) == hooks


def test_a_failure_inside_our_forward_asks_the_host_to_redo_the_call(tokens, monkeypatch):
    ids, vocab = tokens
    model = build_text_model(small("clip_l"), vocab)
    reference(model, ids)  # transformers 5 installs its own layer hooks on the first pass
    hooks = layer_hooks(model)
    errors = []
    from lib_clipskip import encode

    monkeypatch.setattr(encode, "blend", lambda *_: (_ for _ in ()).throw(RuntimeError("boom")))
    scope = skipping(model, pick_layers(2, 12), needs_pooled=False, on_error=errors.append)
    with torch.no_grad(), scope, pytest.raises(EncodeFallback, match="boom") as raised:
        model(input_ids=ids, output_hidden_states=True)
    assert [str(e) for e in errors] == ["boom"] and isinstance(raised.value.__cause__, RuntimeError)
    assert "forward" not in vars(model) and layer_hooks(model) == hooks


def test_other_threads_see_the_whole_encoder_while_one_encodes_truncated(tokens):
    """gradio answers panel refreshes in other threads during a generation: they must see the
    model as it is (all layers, the original forward), and their passes must not be cut short."""
    ids, vocab = tokens
    model = build_text_model(small("clip_l"), vocab)
    full = reference(model, ids)
    layers = encoder_layers(model)
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def other_thread():
        inside.wait(10)
        seen["depth"] = len(encoder_layers(model))
        with torch.no_grad():  # a whole pass through the hooked layers, from this other thread
            seen["out"] = model(input_ids=ids, output_hidden_states=True)
        release.set()

    worker = threading.Thread(target=other_thread)
    worker.start()

    main = threading.get_ident()

    def block_in_layer(_module, _inputs, _output):
        if threading.get_ident() == main:
            inside.set()
            assert release.wait(10)  # the other thread runs while our truncated pass is between layers

    handle = layers[0].register_forward_hook(block_in_layer)
    with torch.no_grad(), skipping(model, pick_layers(3, 12), needs_pooled=False):
        ours = model(input_ids=ids, output_hidden_states=True)
        handle.remove()
    worker.join(10)
    assert seen["depth"] == 12
    assert len(seen["out"].hidden_states) == 13 and torch.equal(seen["out"].last_hidden_state, full.last_hidden_state)
    assert torch.equal(ours.hidden_states[-1], full.hidden_states[-3])


def test_run_blocks_for_openclip_style_towers():
    blocks = [lambda x, k=k: x * 2 + k for k in range(6)]
    x = torch.ones(1)
    chosen, last = run_blocks(blocks, x, pick_layers(2, 6), run_all=False)
    assert last is None and chosen.item() == 2 ** 5 + sum(k * 2 ** (4 - k) for k in range(5))
    chosen_all, last_all = run_blocks(blocks, x, pick_layers(1.5, 6), run_all=True)
    after5 = chosen.item()
    assert last_all.item() == after5 * 2 + 5
    assert chosen_all.item() == pytest.approx(0.5 * last_all.item() + 0.5 * after5)
