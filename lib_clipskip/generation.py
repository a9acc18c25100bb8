"""The per-generation hook: apply a request to every conditioning call of one ``p``.

Both hosts compute every conditioning (first pass, hires, refiner, each batch) through
``p.get_conds_with_caching(...)``, which keys its cache on ``p.cached_params(...)``.  We wrap
both *on this ``p`` instance only*:

- ``get_conds_with_caching`` resolves the request against the model loaded at that moment (the
  refiner may have switched it) and, for the duration of that one call, makes the model's
  encoders encode at the planned layers (``HostAdapter.encoding``: restored in ``finally``);
- ``cached_params`` appends the plan to the host's key, so a different value never hits a
  stale conditioning and the same value still hits the host's cache.

Nothing global changes: no option is written, the wrappers die with ``p``.  A disabled request
installs nothing, so none of our code runs on the conditioning path.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip.hosts.base import HostAdapter
from lib_clipskip.layercache import HiddenStateCache, reusing, scope_key
from lib_clipskip.plan import SkipPlan, resolve
from lib_clipskip.values import ClipSkipRequest

log = logging.getLogger("sd-webui-clipskip")

STATE_ATTRIBUTE = "clipskip_state"
_WRAPPED_METHODS = ("cached_params", "get_conds_with_caching")


@dataclass
class GenerationState:
    """What one generation asked for and what actually happened (for panel, console, infotext)."""

    request: ClipSkipRequest
    adapter: HostAdapter
    messages: list[str] = field(default_factory=list)
    plans: list[SkipPlan] = field(default_factory=list)  # every plan an encode ran with, in order
    failed: bool = False
    active_plan: SkipPlan | None = None
    hidden_states: HiddenStateCache | None = None  # an X/Y/Z grid's full passes, shared by its cells
    quiet: bool = False  # Settings: no compatibility warnings in the console
    batches: dict[int, list[SkipPlan]] = field(default_factory=dict)  # p.iteration -> plans used (infotext)
    failed_batches: set[int] = field(default_factory=set)  # iterations where an encode fell back to the host

    def note(self, message: str) -> None:
        if message not in self.messages:
            self.messages.append(message)
            if not self.quiet:
                log.warning("CLIP skip: %s", message)

    def record_failure(self, error: BaseException) -> None:
        self.failed = True
        self.note(f"the extension's encode failed ({type(error).__name__}: {error}); the host's own CLIP skip was used.")

    def record_plan(self, plan: SkipPlan, iteration: int = 0, ok: bool = True) -> None:
        if plan not in self.plans:
            self.plans.append(plan)
        if not ok:
            self.failed_batches.add(iteration)
        elif plan not in self.batches.setdefault(iteration, []):
            self.batches[iteration].append(plan)


def state_of(p: Any) -> GenerationState | None:
    return vars(p).get(STATE_ATTRIBUTE)


def attach(p: Any, request: ClipSkipRequest, adapter: HostAdapter) -> GenerationState | None:
    """Install the request on ``p``; a disabled request removes whatever a copy of ``p`` carried."""
    detach(p)  # XYZ cells are shallow copies of one p: never inherit another cell's wrappers
    if not request.enabled:
        return None
    state = GenerationState(request, adapter)
    vars(p)[STATE_ATTRIBUTE] = state
    cls = type(p)

    def cached_params(*args: Any, **kwargs: Any) -> Any:
        key = cls.cached_params(p, *args, **kwargs)
        plan = state.active_plan
        return key if plan is None else (*key, plan.cache_key())

    def get_conds_with_caching(*args: Any, **kwargs: Any) -> Any:
        return _conds_with_plan(p, state, cls.get_conds_with_caching, args, kwargs)

    vars(p)["cached_params"] = cached_params
    vars(p)["get_conds_with_caching"] = get_conds_with_caching
    return state


def detach(p: Any) -> GenerationState | None:
    for name in _WRAPPED_METHODS:
        vars(p).pop(name, None)
    return vars(p).pop(STATE_ATTRIBUTE, None)


def set_request(p: Any, request: ClipSkipRequest) -> None:
    """Change the request mid-generation (a prompt tag, per batch); conds not yet computed follow it."""
    state = state_of(p)
    if state is not None:
        state.request = request
    elif request.enabled:
        from lib_clipskip.hosts import detect

        attach(p, request, detect())


def _conds_with_plan(p: Any, state: GenerationState, original: Any, args: tuple, kwargs: dict) -> Any:
    def host_only() -> Any:
        return original(p, *args, **kwargs)

    try:
        loaded = state.adapter.inspect(state.adapter.current_model())
        resolution = resolve(state.request, loaded.info)
        for message in resolution.messages:
            state.note(message)
        plan = resolution.plan
    except Exception as error:  # our bug must not cost the user the image
        log.exception("CLIP skip: could not inspect the loaded model")
        state.record_failure(error)
        return host_only()
    if plan is None:
        return host_only()

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(state.adapter.encoding(loaded, plan, state.record_failure))
    except Exception as error:
        stack.close()
        log.exception("CLIP skip: could not prepare the text encoders")
        state.record_failure(error)
        return host_only()
    state.active_plan = plan
    failed_before = state.failed
    state.failed = False
    try:
        with stack, reusing(state.hidden_states, _grid_scope(state, args, kwargs)):
            result = host_only()
    finally:
        state.active_plan = None
        failed_now, state.failed = state.failed, state.failed or failed_before
    state.record_plan(plan, getattr(p, "iteration", 0), ok=not failed_now)
    return result


def _grid_scope(state: GenerationState, args: tuple, kwargs: dict) -> tuple | None:
    """The host's cond-cache key minus prompts and skip, for reusing an X/Y/Z grid's full passes."""
    if state.hidden_states is None:
        return None
    try:
        return scope_key(state.adapter.current_model(), state.adapter.shared().opts, args, kwargs)
    except Exception:  # no reuse: this call encodes on its own
        log.exception("CLIP skip: could not key the X/Y/Z grid's encoder reuse")
        return None
