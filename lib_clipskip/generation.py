"""The per-generation hook: apply a request to every conditioning call of one ``p``.

Both hosts compute every conditioning (first pass, hires, refiner, each batch) through
``p.get_conds_with_caching(...)``, which keys its cache on ``p.cached_params(...)``.  A request
lives on the ``p`` it is for (``STATE_ATTRIBUTE``); the host's two methods get, once, a hook on
the class that defines them, which does nothing for a ``p`` without one:

- ``get_conds_with_caching`` resolves the request against the model loaded at that moment (the
  refiner may have switched it) and, for the duration of that one call, makes the model's
  encoders encode at the planned layers (``HostAdapter.encoding``: restored in ``finally``);
- ``cached_params`` appends the plan to the host's key, so a different value never hits a
  stale conditioning and the same value still hits the host's cache.

The hooks receive the real instance, so a copy of ``p`` (X/Y/Z cells, ADetailer's
``copy(i2i)``) is conditioned as itself; they are never removed and never touch instance
attributes, so another extension's wrapper on ``p`` or on the class — put before or after ours —
stays in the chain.

Processings started *inside* a generation (ADetailer's inpainting pass, any script that builds
a ``StableDiffusionProcessing`` and calls ``process_images`` from a hook) inherit the request of
the generation they run in (``inherited_request``): the hook finds, on the current thread's
stack, the ``process_images`` frame of a ``p`` that carries a request.  A processing whose
spawner set the host's own Clip skip in its ``override_settings`` (ADetailer's "separate CLIP
skip"), or chose through ``lib_clipskip.external``, inherits nothing.

Nothing global changes: no option is written; without a request on ``p`` none of our code runs
on its encoders.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip import steps
from lib_clipskip.hosts.base import HostAdapter
from lib_clipskip.layercache import HiddenStateCache, reusing, scope_key
from lib_clipskip.plan import SkipPlan, resolve
from lib_clipskip.values import ClipSkipRequest

log = logging.getLogger("sd-webui-clipskip")

STATE_ATTRIBUTE = "clipskip_state"
#: a request another extension set on ``p`` (``lib_clipskip.external.set_request``): it decides
EXTERNAL_ATTRIBUTE = "clipskip_external_request"
#: the request a batch without a ``<clipskip:…>`` tag uses: the panel's, an inherited or external one
BASE_ATTRIBUTE = "clipskip_panel_request"
#: the host's option a processing sets for itself (both hosts' ``shared_options.py``)
HOST_OPTION = "CLIP_stop_at_last_layers"
#: the functions whose frame holds the ``p`` being processed (A1111 ``processing.py:819``/``:863``,
#: Forge ``:815``/``:852``)
_PROCESSING_FRAMES = frozenset({"process_images", "process_images_inner"})


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
    owner: int = 0  # id() of the p it was attached to (copies of p carry it too)
    inherited: bool = False  # a processing started inside another generation took its request
    #: id(conditioning result) -> (that result, steps.StepConds): the anchors of a schedule
    step_conds: dict[int, Any] = field(default_factory=dict)
    #: p.iteration -> the request of that batch's prompt (its schedule, its negative value: infotext)
    requests: dict[int, ClipSkipRequest] = field(default_factory=dict)
    #: p.iteration -> the plan of the negative prompt when it has a value of its own
    negative_plans: dict[int, SkipPlan] = field(default_factory=dict)

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

    def record_plan(self, plan: SkipPlan, iteration: int = 0, negative_of: ClipSkipRequest | None = None) -> None:
        """A conditioning was made with ``plan``; ``negative_of``: the request, when ``plan`` is its negative's own."""
        if negative_of is not None:
            self.negative_plans.setdefault(iteration, plan)
            self.requests.setdefault(iteration, negative_of)
            return
        self.requests.setdefault(iteration, self.request)
        if plan not in self.plans:
            self.plans.append(plan)
        if plan not in self.batches.setdefault(iteration, []):
            self.batches[iteration].append(plan)


def state_of(p: Any) -> GenerationState | None:
    return vars(p).get(STATE_ATTRIBUTE)


def attach(p: Any, request: ClipSkipRequest, adapter: HostAdapter) -> GenerationState | None:
    """Put the request on ``p``; a disabled request removes whatever a copy of ``p`` carried."""
    detach(p)  # X/Y/Z cells are shallow copies of one p: never keep another cell's request
    if not request.enabled:
        return None
    state = GenerationState(request, adapter, owner=id(p))
    vars(p)[STATE_ATTRIBUTE] = state
    _install_hooks(type(p))
    return state


def detach(p: Any) -> GenerationState | None:
    """Take the request off ``p`` (the class hooks then pass straight through); returns its state."""
    return vars(p).pop(STATE_ATTRIBUTE, None) if hasattr(p, "__dict__") else None


_HOOKED = "__clipskip_hook__"


def install_hooks(processing_class: type) -> None:
    """Hook the host's processing class at start-up, so that a wrapper another extension puts on a
    ``p`` later always has ours inside it (the hooks pass straight through without a request)."""
    _install_hooks(processing_class)


def _install_hooks(cls: type) -> None:
    """Once per host class: our ``get_conds_with_caching`` and ``cached_params`` around the host's."""
    for name, make in (("get_conds_with_caching", _conds_hook), ("cached_params", _key_hook), ("close", _close_hook)):
        owner = next((c for c in cls.__mro__ if name in vars(c)), None)
        if owner is None or getattr(vars(owner)[name], _HOOKED, False):
            continue
        original = vars(owner)[name]
        hook = make(original)
        setattr(hook, _HOOKED, True)
        hook.__wrapped__ = original
        setattr(owner, name, hook)


def _conds_hook(original: Any) -> Any:
    def get_conds_with_caching(self: Any, *args: Any, **kwargs: Any) -> Any:
        state = vars(self).get(STATE_ATTRIBUTE) if hasattr(self, "__dict__") else None
        if state is None:
            state = _inherit(self)
        if not isinstance(state, GenerationState) or state.active_plan is not None:
            return original(self, *args, **kwargs)  # nothing of ours (or already inside our call)
        return _conds_with_plan(self, state, lambda *a, **k: original(self, *a, **k), args, kwargs)

    return get_conds_with_caching


def _key_hook(original: Any) -> Any:
    def cached_params(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = original(self, *args, **kwargs)
        state = vars(self).get(STATE_ATTRIBUTE) if hasattr(self, "__dict__") else None
        plan = state.active_plan if isinstance(state, GenerationState) else None
        if plan is None:
            return key
        state.active_key = (*key, plan.cache_key())
        return state.active_key

    return cached_params


def _close_hook(original: Any) -> Any:
    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:  # the hosts close every p after processing it (``with closing(p)``; ADetailer's ``finally``)
            return original(self, *args, **kwargs)
        finally:
            detach(self)

    return close


def _inherit(p: Any) -> GenerationState | None:
    """Attach the request of the generation ``p`` runs inside of, if any (never raises)."""
    try:
        request = inherited_request(p)
        if request is None:
            return None
        vars(p)[BASE_ATTRIBUTE] = request
        state = attach(p, request, current_adapter())
        if state is not None:
            state.inherited = True
        return state
    except Exception:  # never cost the user the pass: the host's own conditioning
        log.exception("CLIP skip: could not pass the generation's value to a nested processing")
        return None


# --- processings started inside a generation ----------------------------------------------------


def sets_own_clip_skip(p: Any) -> bool:
    overrides = getattr(p, "override_settings", None)
    return isinstance(overrides, dict) and HOST_OPTION in overrides


def outer_state(p: Any) -> GenerationState | None:
    """The state of the generation ``p`` runs inside of (on this thread's stack), or None."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name in _PROCESSING_FRAMES:
            outer = frame.f_locals.get("p")
            if outer is not None and outer is not p:
                state = vars(outer).get(STATE_ATTRIBUTE) if hasattr(outer, "__dict__") else None
                if isinstance(state, GenerationState):
                    return state
        frame = frame.f_back
    return None


def external_request(p: Any) -> ClipSkipRequest | None:
    request = vars(p).get(EXTERNAL_ATTRIBUTE) if hasattr(p, "__dict__") else None
    return request if isinstance(request, ClipSkipRequest) else None


def chosen_by_spawner(p: Any) -> bool:
    """Another extension chose ``p``'s value: through ``external.set_request``, or by setting the
    host's own Clip skip on a processing it runs inside a generation (ADetailer's own CLIP skip)."""
    return external_request(p) is not None or (sets_own_clip_skip(p) and outer_state(p) is not None)


def inherited_request(p: Any) -> ClipSkipRequest | None:
    """The request ``p`` inherits from the generation it runs inside of (None: it is on its own)."""
    if sets_own_clip_skip(p) or external_request(p) is not None:
        return None  # e.g. ADetailer's "separate CLIP skip": the spawning extension chose
    outer = outer_state(p)
    return outer.request if outer is not None else None


def current_adapter() -> HostAdapter:
    from lib_clipskip.hosts import current

    return current()


def set_request(p: Any, request: ClipSkipRequest) -> None:
    """Change the request mid-generation (a prompt tag, per batch); conds not yet computed follow it."""
    state = state_of(p)
    if state is not None:
        state.request = request
    elif request.enabled:
        attach(p, request, current_adapter())


def _conds_with_plan(p: Any, state: GenerationState, original: Any, args: tuple, kwargs: dict) -> Any:
    """One ``get_conds_with_caching`` call with our plan; on any failure, the host's whole call instead.

    The fallback reruns the host's own call from the start (its own cache key, its own TI
    queueing), so a failed encode is never cached under our key and never loses embeddings.
    """

    def host_only() -> Any:
        return original(*args, **kwargs)

    iteration = getattr(p, "iteration", 0)
    prompts = kwargs.get("required_prompts", args[1] if len(args) > 1 else None)
    request = state.request.for_negative() if getattr(prompts, "is_negative_prompt", False) else state.request
    try:
        loaded = state.adapter.inspect(state.adapter.current_model())
        resolution = resolve(request, loaded.info)
        for message in resolution.messages:
            state.note(message)
        plan = resolution.plan
    except Exception as error:  # our bug must not cost the user the image
        log.exception("CLIP skip: could not inspect the loaded model")
        state.record_fallback(iteration, error)
        return host_only()
    if plan is None:
        return host_only()

    cache, scope = state.hidden_states, _grid_scope(state, args, kwargs)
    if request.scheduled and scope is None:  # every anchor of the schedule from one full pass
        cache, scope = HiddenStateCache(), scope_key(state.adapter.current_model(), state.adapter.shared().opts, args, kwargs)
    errors: list[BaseException] = []
    state.active_key = None
    try:
        with state.adapter.encoding(loaded, plan, errors.append), reusing(cache, scope):
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
            state.record_plan(plan, iteration, negative_of=state.request if request is not state.request else None)
            if request.scheduled:
                steps.prepare(state, loaded, request, result, lambda anchor: _encode_anchor(state, loaded, anchor, cache,
                                                                                            scope, args, kwargs),
                              model=state.adapter.current_model(), result_plan=plan)
            return result
        # something between the encoder and the cache swallowed our failure: drop what it stored
        _forget(args, kwargs, state.active_key)
    state.record_fallback(iteration, errors[0])
    return host_only()


def _encode_anchor(state: GenerationState, loaded: Any, plan: SkipPlan, cache: Any, scope: Any, args: tuple,
                   kwargs: dict) -> Any:
    """The host's conditioning ``function`` of this call at another plan, past its cache (raises on failure)."""
    def fail(error: BaseException) -> None:
        raise error

    with state.adapter.encoding(loaded, plan, fail), reusing(cache, scope):
        return state.adapter.call_conds_function(args, kwargs)


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
