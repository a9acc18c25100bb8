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
    active_plan: SkipPlan | None = None
    active_key: tuple | None = None  # the cond-cache key of the call under way (ours)
    hidden_states: HiddenStateCache | None = None  # an X/Y/Z grid's full passes, shared by its cells
    quiet: bool = False  # Settings: no compatibility warnings in the console
    batches: dict[int, list[SkipPlan]] = field(default_factory=dict)  # p.iteration -> plans used (infotext)
    #: p.iteration -> why the host's own conditioning was used for (part of) that batch
    fallbacks: dict[int, str] = field(default_factory=dict)

    def note(self, message: str) -> None:
        if message not in self.messages:
            self.messages.append(message)
            if not self.quiet:
                log.warning("CLIP skip: %s", message)

    def record_fallback(self, iteration: int, error: BaseException) -> None:
        reason = f"{type(error.__cause__ or error).__name__}"
        self.fallbacks.setdefault(iteration, reason)
        self.note(f"the extension's encode failed ({type(error).__name__}: {error}); "
                  "this conditioning was made the host's own way, at the host's own CLIP skip.")

    def record_plan(self, plan: SkipPlan, iteration: int = 0) -> None:
        if plan not in self.plans:
            self.plans.append(plan)
        if plan not in self.batches.setdefault(iteration, []):
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
        if plan is None:
            return key
        state.active_key = (*key, plan.cache_key())
        return state.active_key

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
    """One ``get_conds_with_caching`` call with our plan; on any failure, the host's whole call instead.

    The fallback reruns the host's own call from the start (its own cache key, its own TI
    queueing), so a failed encode is never cached under our key and never loses embeddings.
    """

    def host_only() -> Any:
        return original(p, *args, **kwargs)

    iteration = getattr(p, "iteration", 0)
    try:
        loaded = state.adapter.inspect(state.adapter.current_model())
        resolution = resolve(state.request, loaded.info)
        for message in resolution.messages:
            state.note(message)
        plan = resolution.plan
    except Exception as error:  # our bug must not cost the user the image
        log.exception("CLIP skip: could not inspect the loaded model")
        state.record_fallback(iteration, error)
        return host_only()
    if plan is None:
        return host_only()

    errors: list[BaseException] = []
    state.active_key = None
    try:
        with state.adapter.encoding(loaded, plan, errors.append), reusing(state.hidden_states, _grid_scope(state, args, kwargs)):
            state.active_plan = plan
            try:
                result = host_only()
            finally:
                state.active_plan = None
    except Exception as error:  # EncodeFallback from our forward, or anything else while ours was active
        if not errors:
            log.exception("CLIP skip: the conditioning failed with the extension's encode in place")
            errors.append(error)
    else:
        if not errors:
            state.record_plan(plan, iteration)
            return result
        # something between the encoder and the cache swallowed our failure: drop what it stored
        _forget(args, kwargs, state.active_key)
    state.record_fallback(iteration, errors[0])
    return host_only()


def _forget(args: tuple, kwargs: dict, key: tuple | None) -> None:
    """Empty the host cache slot holding ``key`` (``get_conds_with_caching(function, prompts, steps, caches, …)``)."""
    caches = kwargs.get("caches", args[3] if len(args) > 3 else None)
    for cache in caches or ():
        if key is not None and cache[0] == key:
            cache[0] = None


def _grid_scope(state: GenerationState, args: tuple, kwargs: dict) -> tuple | None:
    """The host's cond-cache key minus prompts and skip, for reusing an X/Y/Z grid's full passes."""
    if state.hidden_states is None:
        return None
    try:
        return scope_key(state.adapter.current_model(), state.adapter.shared().opts, args, kwargs)
    except Exception:  # no reuse: this call encodes on its own
        log.exception("CLIP skip: could not key the X/Y/Z grid's encoder reuse")
        return None
