"""Truncated text encoding: run only the layers a value needs and hand the host that layer.

The host keeps its own encode path (tokens, TI, device and dtype handling, LayerNorm policy,
pooled projection, emphasis).  We replace only the text model's ``forward`` for the duration of
one conditioning call: it runs ``layers_needed`` layers and returns an output whose every hidden
state *is* the chosen layer, so whichever index the host reads it gets our layer, and whose
``last_hidden_state`` is that layer through the final LayerNorm (what a host reading "the last
layer" expects).  Everything is restored in ``finally``.

torch is imported lazily so that the value model and the CLI work without it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from lib_clipskip import layercache
from lib_clipskip.values import LayerPick

log = logging.getLogger(__name__)


def text_transformer(model: Any) -> Any:
    """The module holding ``embeddings``/``encoder``/``final_layer_norm``.

    transformers 4.x nests it as ``CLIPTextModel.text_model``; 5.x flattened it onto the model.
    """
    return getattr(model, "text_model", model)


def encoder_layers(model: Any) -> Any:
    return text_transformer(model).encoder.layers


def final_layer_norm(model: Any) -> Any:
    return text_transformer(model).final_layer_norm


@contextlib.contextmanager
def layers_limited_to(model: Any, count: int) -> Iterator[None]:
    """Let the encoder see only its first ``count`` layers; the others are not run."""
    encoder = text_transformer(model).encoder
    layers = encoder.layers
    if count >= len(layers):
        yield
        return
    encoder.layers = layers[:count]  # ModuleList slicing gives a new ModuleList of the same modules
    try:
        yield
    finally:
        encoder.layers = layers


def blend(hidden_states: Sequence[Any], pick: LayerPick) -> Any:
    """The conditioning of a pick from hidden states indexed by layers run."""
    upper = hidden_states[pick.upper]
    if pick.weight == 0:
        return upper  # the host's own tensor, untouched: integer values are exact
    import torch

    return torch.lerp(upper, hidden_states[pick.lower], pick.weight)


def shaped_forward(
    model: Any,
    original_forward: Callable[..., Any],
    pick: LayerPick,
    needs_pooled: bool,
    on_error: Callable[[BaseException], None] | None = None,
) -> Callable[..., Any]:
    """A ``forward`` for ``model`` that computes ``pick`` and shapes the output for the host."""
    total_layers = len(encoder_layers(model))

    def forward(*args: Any, **kwargs: Any) -> Any:
        try:
            kwargs["output_hidden_states"] = True
            kwargs["return_dict"] = True
            reused = layercache.reused_outputs(model, original_forward, args, kwargs)  # an X/Y/Z grid's one full pass
            if reused is not None:
                outputs = reused
            elif needs_pooled:
                # the pooled output comes from the full last layer: every layer must run
                outputs = original_forward(*args, **kwargs)
            else:
                with layers_limited_to(model, pick.layers_needed):
                    outputs = original_forward(*args, **kwargs)
            chosen = blend(outputs.hidden_states, pick)
            outputs.hidden_states = (chosen,) * (total_layers + 1)
            outputs.last_hidden_state = final_layer_norm(model)(chosen)
            return outputs
        except Exception as error:  # never kill a generation: fall back to the host's own pass
            log.exception("CLIP skip: truncated encode failed; using the host's own encode")
            if on_error is not None:
                on_error(error)
            kwargs.pop("return_dict", None)
            return original_forward(*args, **kwargs)

    return forward


@contextlib.contextmanager
def patched_attribute(obj: Any, name: str, value: Any) -> Iterator[None]:
    """Set an instance attribute for the duration of a block, restoring exactly what was there."""
    had_own = name in vars(obj)
    previous = vars(obj).get(name)
    object.__setattr__(obj, name, value)
    try:
        yield
    finally:
        if had_own:
            object.__setattr__(obj, name, previous)
        else:
            with contextlib.suppress(AttributeError):
                object.__delattr__(obj, name)


@contextlib.contextmanager
def skipping(
    model: Any, pick: LayerPick, needs_pooled: bool, on_error: Callable[[BaseException], None] | None = None
) -> Iterator[None]:
    """Within the block, ``model(...)`` (a transformers CLIP text model) encodes at ``pick``."""
    forward = shaped_forward(model, model.forward, pick, needs_pooled, on_error)
    with patched_attribute(model, "forward", forward):
        yield


def run_blocks(
    blocks: Sequence[Callable[[Any], Any]], x: Any, pick: LayerPick, run_all: bool
) -> tuple[Any, Any]:
    """Run residual blocks on ``x`` and return ``(chosen, last)`` for an OpenCLIP-style tower.

    ``last`` is the output of every block (only computed when ``run_all``); otherwise the loop
    stops at the last block the pick needs.
    """
    states = {0: x} if pick.lower == 0 or pick.upper == 0 else {}
    stop = len(blocks) if run_all else pick.layers_needed
    for index in range(stop):
        x = blocks[index](x)
        if index + 1 in (pick.upper, pick.lower):
            states[index + 1] = x
    chosen = blend(states, pick)
    return chosen, (x if run_all else None)
