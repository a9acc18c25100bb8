"""The per-generation hook: apply a request to every conditioning call of one ``p``.

Both hosts compute every conditioning (first pass, hires, refiner, each batch) through
``p.get_conds_with_caching(...)``, which keys its cache on ``p.cached_params(...)``.  We wrap
both *on this ``p`` instance only*:

- ``get_conds_with_caching`` resolves the request against the model loaded at that moment (the
  refiner may have switched it) and, for the duration of that one call, makes the model's
  encoders encode at the planned layers (``HostAdapter.encoding``: restored in ``finally``);
- ``cached_params`` appends the plan to the host's key, so a different value never hits a
  stale conditioning and the same value still hits the host's cache.

The wrappers chain: they call whatever ``p`` had before (another extension's own wrapper, or the
class's method), and ``detach`` takes out only what is ours — a wrapper another extension put
around ours stays, and ours then passes straight through.

Processings started *inside* a generation (ADetailer's inpainting pass, any script that builds
a ``StableDiffusionProcessing`` and calls ``process_images`` from a hook) inherit the request of
the generation they run in (``inherited_request``): a pass-through on the host's
``get_conds_with_caching`` class method finds, on the current thread's stack, the
``process_images`` frame of a ``p`` that carries a request.  A processing that sets the host's
own Clip skip in its ``override_settings`` (ADetailer's "separate CLIP skip") has chosen for
itself and inherits nothing.

Nothing global changes: no option is written, the instance wrappers die with ``p``.  A disabled
request installs nothing on ``p``, so none of our code runs on its conditioning path.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip.hosts.base import HostAdapter
from lib_clipskip.layercache import HiddenStateCache, reusing, scope_key
from lib_clipskip.plan import SkipPlan, resolve
from lib_clipskip.values import ClipSkipRequest

log = logging.getLogger("sd-webui-clipskip")

STATE_ATTRIBUTE = "clipskip_state"
_WRAPPED_METHODS = ("cached_params", "get_conds_with_caching", "close")
_OURS = "__clipskip_wrapper__"  # marks our instance wrappers; the value is what was there before
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
    state = GenerationState(request, adapter, owner=id(p))
    vars(p)[STATE_ATTRIBUTE] = state
    cls = type(p)
    previous = {name: vars(p).get(name) for name in _WRAPPED_METHODS}  # another extension's wrappers

    def earlier(name: str) -> Any:
        own = previous[name]
        return own if own is not None else getattr(cls, name).__get__(p, cls)

    def cached_params(*args: Any, **kwargs: Any) -> Any:
        key = earlier("cached_params")(*args, **kwargs)
        plan = state.active_plan
        if plan is None or vars(p).get(STATE_ATTRIBUTE) is not state:
            return key
        state.active_key = (*key, plan.cache_key())
        return state.active_key

    def get_conds_with_caching(*args: Any, **kwargs: Any) -> Any:
        if vars(p).get(STATE_ATTRIBUTE) is not state:  # detached while another wrapper kept ours
            return earlier("get_conds_with_caching")(*args, **kwargs)
        return _conds_with_plan(p, state, earlier("get_conds_with_caching"), args, kwargs)

    def close(*args: Any, **kwargs: Any) -> Any:
        try:  # the hosts close every p after processing it (``with closing(p)``; ADetailer's finally)
            return earlier("close")(*args, **kwargs)
        finally:
            if vars(p).get(STATE_ATTRIBUTE) is state:
                detach(p)

    for name, wrapper in (("cached_params", cached_params), ("get_conds_with_caching", get_conds_with_caching),
                          ("close", close)):
        setattr(wrapper, _OURS, (previous[name],))
        vars(p)[name] = wrapper
    _install_inheritance(cls)
    return state


def detach(p: Any) -> GenerationState | None:
    """Take our wrappers off ``p`` (restoring what they wrapped) and return its state, if any."""
    for name in _WRAPPED_METHODS:
        current = vars(p).get(name)
        mark = getattr(current, _OURS, None)
        if mark is None:
            continue  # not ours (or another extension wrapped ours: it stays, ours passes through)
        if mark[0] is None:
            vars(p).pop(name, None)
        else:
            vars(p)[name] = mark[0]
    return vars(p).pop(STATE_ATTRIBUTE, None)


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


def chosen_by_spawner(p: Any) -> bool:
    """``p`` runs inside another generation and the extension that made it set its Clip skip."""
    return sets_own_clip_skip(p) and outer_state(p) is not None


def inherited_request(p: Any) -> ClipSkipRequest | None:
    """The request ``p`` inherits from the generation it runs inside of (None: it is on its own)."""
    if sets_own_clip_skip(p):
        return None  # e.g. ADetailer's "separate CLIP skip": the spawning extension chose
    outer = outer_state(p)
    return outer.request if outer is not None else None


_INHERITING = "__clipskip_inheriting__"


def _install_inheritance(cls: type) -> None:
    """Once per host class: a ``get_conds_with_caching`` that lets a nested processing inherit.

    It passes straight through for every ``p`` that has its own request or runs on its own, and
    is never removed (another extension may have wrapped it since: removing would clobber that).
    """
    owner = next((c for c in cls.__mro__ if "get_conds_with_caching" in vars(c)), None)
    if owner is None or getattr(vars(owner)["get_conds_with_caching"], _INHERITING, False):
        return
    original = vars(owner)["get_conds_with_caching"]

    def get_conds_with_caching(self: Any, *args: Any, **kwargs: Any) -> Any:
        if STATE_ATTRIBUTE not in vars(self):
            try:
                request = inherited_request(self)
                if request is not None:
                    state = attach(self, request, current_adapter())
                    if state is not None:
                        state.inherited = True
                        return self.get_conds_with_caching(*args, **kwargs)  # our instance wrapper now
            except Exception:  # never cost the user the pass: the host's own conditioning
                log.exception("CLIP skip: could not pass the generation's value to a nested processing")
        return original(self, *args, **kwargs)

    setattr(get_conds_with_caching, _INHERITING, True)
    get_conds_with_caching.__wrapped__ = original
    owner.get_conds_with_caching = get_conds_with_caching


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
