"""What every host adapter offers the generation hook."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip.encode import encoder_layers, skipping
from lib_clipskip.plan import EncoderPlan, EncoderSlot, ModelInfo, SkipPlan

ErrorSink = Callable[[BaseException], None]


@dataclass(frozen=True)
class EncoderHandle:
    """One loaded encoder and how to make it encode at a plan's layer for one block."""

    slot: EncoderSlot
    scope: Callable[[EncoderPlan, ErrorSink], ContextManager[None]]


@dataclass(frozen=True)
class LoadedModel:
    info: ModelInfo
    handles: dict[str, EncoderHandle] = field(default_factory=dict)


def transformers_handle(text_model: Any, slot: EncoderSlot) -> EncoderHandle:
    """A handle for an encoder that is a ``transformers`` CLIP text model."""

    def scope(plan: EncoderPlan, on_error: ErrorSink) -> ContextManager[None]:
        return skipping(text_model, plan.pick, plan.needs_pooled, on_error)

    return EncoderHandle(slot, scope)


def loaded_depth(text_model: Any) -> int:
    return len(encoder_layers(text_model))


def host_skip_option(opts: Any) -> int:
    """The host's ``CLIP_stop_at_last_layers`` as the int both hosts use (Forge casts with ``int()``)."""
    value = getattr(opts, "CLIP_stop_at_last_layers", 1)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 1
    return int(number) if math.isfinite(number) else 1


class HostAdapter:
    name = "host"

    def shared(self) -> Any:
        from modules import shared

        return shared

    def current_model(self) -> Any:
        return self.shared().sd_model

    def inspect(self, sd_model: Any) -> LoadedModel:
        raise NotImplementedError

    @contextlib.contextmanager
    def encoding(self, loaded: LoadedModel, plan: SkipPlan, on_error: ErrorSink) -> Iterator[None]:
        """Within the block, every encoder named by the plan encodes at its planned layer."""
        with contextlib.ExitStack() as stack:
            for encoder in plan.encoders:
                stack.enter_context(loaded.handles[encoder.name].scope(encoder, on_error))
            yield
