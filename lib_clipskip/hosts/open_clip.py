"""OpenCLIP text towers as A1111 holds them: SD2's ViT-H and SDXL's (and the refiner's) bigG.

They are not ``transformers`` models but the upstream wrappers around an OpenCLIP model
(webui-internals §1.4, §1.5):

- SD2 ``ldm...FrozenOpenCLIPEmbedder``: ``encode_with_transformer`` embeds, permutes to LND,
  calls ``self.text_transformer_forward(x, attn_mask=...)`` (which stops ``layer_idx`` blocks
  before the end; "penultimate" = 1), permutes back and applies ``ln_final``.  So the host
  value is ``layer_idx + 1`` (2), and the LayerNorm is applied to whatever we return.
- SDXL ``sgm...FrozenOpenCLIPEmbedder2`` (``legacy=False``): ``text_transformer_forward``
  returns ``{"penultimate": NLD, "last": NLD}`` (raw, no LayerNorm); ``encode_with_transformer``
  builds the pooled output from ``ln_final(d["last"])`` and A1111 reads ``d[wrapped.layer]``.

For one block we replace the instance's ``text_transformer_forward`` (for the installing
context only: another thread calling it gets the original): SD2 runs only the blocks the value
needs and returns the chosen state (LND); bigG runs every block (the pooled output needs the
true last layer) and returns the chosen state under ``"penultimate"`` and the true last layer
under ``"last"``.  Any error inside raises ``EncodeFallback``: the host redoes the whole call.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

from lib_clipskip import layercache
from lib_clipskip.encode import EncodeFallback, ErrorSink, blend, patched_attribute, run_blocks, scoped_method
from lib_clipskip.hosts.base import EncoderHandle
from lib_clipskip.plan import EncoderPlan, EncoderSlot
from lib_clipskip.values import EncoderSpec

log = logging.getLogger(__name__)

#: The key A1111 reads from the bigG dict when the model is configured as SDXL does.
_CHOSEN_KEY = "penultimate"


def resblocks(wrapped: Any) -> Any:
    return wrapped.model.transformer.resblocks


def returns_dict(wrapped: Any, spec: EncoderSpec) -> bool:
    """bigG (``FrozenOpenCLIPEmbedder2``) hands back a dict of layers; SD2's tower a tensor."""
    return spec.needs_pooled or type(wrapped).__name__ == "FrozenOpenCLIPEmbedder2"


def host_value(wrapped: Any, spec: EncoderSpec) -> float:
    """What the upstream wrapper does by itself, in this extension's numbering."""
    depth = len(resblocks(wrapped))
    if returns_dict(wrapped, spec):
        # the dict always holds the true last and penultimate layers; A1111 reads d[layer]
        return 1.0 if getattr(wrapped, "layer", _CHOSEN_KEY) == "last" else 2.0
    try:
        layer_idx = int(getattr(wrapped, "layer_idx", 1))
    except (TypeError, ValueError):
        layer_idx = 1
    return float(min(max(layer_idx, 0), depth - 1) + 1)


def all_states(blocks: Any, x: Any) -> list:
    """``[x, after block 1, …, after the last block]``: one full pass, kept for an X/Y/Z grid."""
    states = [x]
    for block in blocks:
        states.append(block(states[-1]))
    return states


def open_clip_forward(wrapped: Any, plan: EncoderPlan, as_dict: bool, on_error: ErrorSink):
    """A ``text_transformer_forward`` for ``wrapped`` that encodes at ``plan``'s layer."""
    own_layer = getattr(wrapped, "layer", _CHOSEN_KEY)

    def text_transformer_forward(x: Any, attn_mask: Any = None) -> Any:
        try:
            blocks = [functools.partial(block, attn_mask=attn_mask) for block in resblocks(wrapped)]
            states = layercache.reused_block_states(wrapped, (x, attn_mask), lambda: all_states(blocks, x))  # X/Y/Z grid
            if states is not None:
                chosen, last = blend(states, plan.pick), states[-1]
            else:
                chosen, last = run_blocks(blocks, x, plan.pick, run_all=as_dict)
            if not as_dict:
                return chosen  # LND; upstream permutes back and applies ln_final
            if own_layer != _CHOSEN_KEY:
                # A1111 reads d[wrapped.layer] after we return; the scope restores it.  (Only a
                # model configured with layer="last" gets here: a plain attribute, seen by all threads.)
                object.__setattr__(wrapped, "layer", _CHOSEN_KEY)
            return {_CHOSEN_KEY: chosen.permute(1, 0, 2), "last": last.permute(1, 0, 2)}
        except Exception as error:  # never kill a generation: the host redoes the call its own way
            log.exception(
                "CLIP skip: OpenCLIP encode at %s failed on %s; the host's own encode is used",
                plan.value, type(wrapped).__name__)
            try:
                on_error(error)
            except Exception:
                log.exception("CLIP skip: the error handler failed")
            raise EncodeFallback(f"{type(error).__name__}: {error}") from error

    return text_transformer_forward


def open_clip_handle(wrapped: Any, spec: EncoderSpec) -> EncoderHandle:
    """A handle for an upstream ``FrozenOpenCLIPEmbedder`` / ``FrozenOpenCLIPEmbedder2``."""
    as_dict = returns_dict(wrapped, spec)
    slot = EncoderSlot(spec, len(resblocks(wrapped)), host_value(wrapped, spec))

    @contextlib.contextmanager
    def scope(plan: EncoderPlan, on_error: ErrorSink) -> Iterator[None]:
        forward = open_clip_forward(wrapped, plan, as_dict, on_error)
        with contextlib.ExitStack() as stack:
            if as_dict and hasattr(wrapped, "layer"):
                stack.enter_context(patched_attribute(wrapped, "layer", wrapped.layer))  # snapshot, restored after
            stack.enter_context(scoped_method(wrapped, "text_transformer_forward", lambda _original, _token: forward))
            yield

    def capture(calls: list[list[Any]]) -> contextlib.AbstractContextManager[None]:
        return scoped_method(wrapped, "text_transformer_forward", lambda _original, _token: recording_forward(wrapped, spec, calls))

    return EncoderHandle(slot, scope, capture, wrapped.model.ln_final)


def recording_forward(wrapped: Any, spec: EncoderSpec, calls: list[list[Any]]):
    """A ``text_transformer_forward`` that runs every block once, records each output (NLD) and
    returns what the upstream method would (layer explorer: one pass, nothing computed twice)."""
    as_dict = returns_dict(wrapped, spec)

    def text_transformer_forward(x: Any, attn_mask: Any = None) -> Any:
        states = [x]
        for block in resblocks(wrapped):
            x = block(x, attn_mask=attn_mask)
            states.append(x)
        calls.append([state.detach().permute(1, 0, 2) for state in states])
        if as_dict:
            return {"penultimate": states[-2].permute(1, 0, 2), "last": states[-1].permute(1, 0, 2)}
        return states[len(states) - int(host_value(wrapped, spec))]  # upstream stops layer_idx blocks early

    return text_transformer_forward
