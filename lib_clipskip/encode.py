"""Truncated text encoding: run only the layers a value needs and hand the host that layer.

The host keeps its own encode path (tokens, TI, device and dtype handling, LayerNorm policy,
pooled projection, emphasis).  We replace only the text model's ``forward`` for the duration of
one conditioning call: it runs ``layers_needed`` layers and returns an output whose every hidden
state *is* the chosen layer, so whichever index the host reads it gets our layer, and whose
``last_hidden_state`` is that layer through the final LayerNorm (what a host reading "the last
layer" expects).

Nothing another thread can see changes meaning: the replaced ``forward`` does our work only for
the code that installed it (a context variable; gradio answers panel refreshes in other threads
while a generation encodes), and the encoder's ``layers`` are never rebound — the encoder stops
after the last layer it needs through a forward hook that only fires in that context.
Everything is restored in ``finally``.

When our encode fails, ``EncodeFallback`` leaves the host's conditioning call: the caller
(``generation``) then redoes that whole call the host's own way, so textual-inversion vectors
the host queued for this pass are queued again and nothing of the failed pass reaches a cache.

torch is imported lazily so that the value model and the CLI work without it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from lib_clipskip import layercache
from lib_clipskip.values import LayerPick

log = logging.getLogger(__name__)

ErrorSink = Callable[[BaseException], None]


class EncodeFallback(Exception):
    """Our encode failed inside the host's conditioning call; the host must redo the whole call."""


def text_transformer(model: Any) -> Any:
    """The module holding ``embeddings``/``encoder``/``final_layer_norm``.

    transformers 4.x nests it as ``CLIPTextModel.text_model``; 5.x flattened it onto the model.
    """
    return getattr(model, "text_model", model)


def encoder_layers(model: Any) -> Any:
    return text_transformer(model).encoder.layers


def final_layer_norm(model: Any) -> Any:
    return text_transformer(model).final_layer_norm


# --- patches only the installing context sees ------------------------------------------------

#: ids of the scope tokens active in this context (a thread, or a task copied from it)
_SCOPES: ContextVar[frozenset[int]] = ContextVar("clipskip_scopes", default=frozenset())


@contextlib.contextmanager
def scope() -> Iterator[object]:
    """A token that ``in_scope`` recognises only in this context, for the duration of the block."""
    token = object()
    reset = _SCOPES.set(_SCOPES.get() | {id(token)})
    try:
        yield token
    finally:
        _SCOPES.reset(reset)


def in_scope(token: object) -> bool:
    return id(token) in _SCOPES.get()


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
def scoped_method(obj: Any, name: str, make: Callable[[Callable[..., Any], object], Callable[..., Any]]) -> Iterator[None]:
    """Within the block, ``obj.name(...)`` called from this context runs ``make(original, token)``;
    called from any other thread it is the original, untouched."""
    original = getattr(obj, name)
    with scope() as token:
        replacement = make(original, token)

        def dispatch(*args: Any, **kwargs: Any) -> Any:
            return replacement(*args, **kwargs) if in_scope(token) else original(*args, **kwargs)

        with patched_attribute(obj, name, dispatch):
            yield


# --- the truncated pass ---------------------------------------------------------------------


class _Reached(Exception):
    """Raised by the hook on the last layer a pick needs: the rest of the encoder does not run."""


def run_to(model: Any, forward: Callable[..., Any], pick: LayerPick, token: object, args: tuple, kwargs: dict) -> dict[int, Any]:
    """The hidden states ``pick`` blends (index = layers run), running layers 1..``pick.upper`` only.

    Forward hooks on the layers we need record their outputs and stop the pass at the last one;
    they do nothing outside ``token``'s scope, so another thread's pass through the same layers
    is unaffected.  (transformers 4.x layers return a tuple, 5.x may return the tensor.)
    """
    layers = encoder_layers(model)
    wanted = sorted({pick.lower, pick.upper})
    if wanted[0] < 1 or wanted[-1] > len(layers):
        raise ValueError(f"layers {wanted} are outside the loaded encoder's 1..{len(layers)}")
    states: dict[int, Any] = {}

    def hook_for(index: int) -> Callable[..., None]:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            if not in_scope(token):
                return
            states[index] = output[0] if isinstance(output, (tuple, list)) else output
            if index == pick.upper:
                raise _Reached

        return hook

    handles = [layers[index - 1].register_forward_hook(hook_for(index)) for index in wanted]
    try:
        forward(*args, **kwargs)
    except _Reached:
        return states
    finally:
        for handle in handles:
            handle.remove()
    raise RuntimeError(f"the text encoder returned without running layer {pick.upper}")


def blend(hidden_states: Sequence[Any] | Mapping[int, Any], pick: LayerPick) -> Any:
    """The conditioning of a pick from hidden states indexed by layers run."""
    upper = hidden_states[pick.upper]
    if pick.weight == 0:
        return upper  # the host's own tensor, untouched: integer values are exact
    import torch

    return torch.lerp(upper, hidden_states[pick.lower], pick.weight)


def _model_output(chosen: Any, last_hidden_state: Any, count: int) -> Any:
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    # no pooled output: only encoders that need none are truncated (a host reading it fails loudly)
    return BaseModelOutputWithPooling(last_hidden_state=last_hidden_state, pooler_output=None,
                                      hidden_states=(chosen,) * count)


def shaped_forward(model: Any, original_forward: Callable[..., Any], pick: LayerPick, needs_pooled: bool,
                   on_error: ErrorSink | None, token: object) -> Callable[..., Any]:
    """A ``forward`` for ``model`` that computes ``pick`` and shapes the output for the host.

    Raises ``EncodeFallback`` (after ``on_error``) when anything in it fails.
    """
    total_layers = len(encoder_layers(model))

    def forward(*args: Any, **kwargs: Any) -> Any:
        try:
            kwargs = {**kwargs, "output_hidden_states": True, "return_dict": True}
            outputs = layercache.reused_outputs(model, original_forward, args, kwargs)  # an X/Y/Z grid's one full pass
            if outputs is None and (needs_pooled or pick.upper >= total_layers):
                # a pooled output comes from the full last layer; value 1 needs every layer anyway
                outputs = original_forward(*args, **kwargs)
            hidden = outputs.hidden_states if outputs is not None else run_to(model, original_forward, pick, token, args, kwargs)
            chosen = blend(hidden, pick)
            last = final_layer_norm(model)(chosen)
            if outputs is None:
                return _model_output(chosen, last, total_layers + 1)
            outputs.hidden_states = (chosen,) * (total_layers + 1)
            outputs.last_hidden_state = last
            return outputs
        except Exception as error:  # never kill a generation: the host redoes the call its own way
            log.exception("CLIP skip: truncated encode failed; the host's own encode is used")
            if on_error is not None:
                on_error(error)
            raise EncodeFallback(f"{type(error).__name__}: {error}") from error

    return forward


def skipping(model: Any, pick: LayerPick, needs_pooled: bool, on_error: ErrorSink | None = None) -> contextlib.AbstractContextManager[None]:
    """Within the block, ``model(...)`` (a transformers CLIP text model) encodes at ``pick`` in this context."""
    return scoped_method(model, "forward", lambda original, token: shaped_forward(
        model, original, pick, needs_pooled, on_error, token))


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
