"""The conditioning of each sampling step, for a value that changes over the steps.

When a generation's request has a schedule (``lib_clipskip.schedule``), the conditioning call the
host makes (``get_conds_with_caching``) also gets the host's conditionings at every whole value a
step needs ("anchors"), all from ONE full text-encoder pass per prompt (``layercache``: the first
anchor runs every layer and keeps them; the others pick theirs).  Then, at every step, the host's
CFG denoiser hands its ``text_cond`` / ``text_uncond`` to ``script_callbacks.on_cfg_denoiser``
(A1111 v1.10.1 ``modules/sd_samplers_cfg_denoiser.py:211-217``; Forge dfdcbab6 ``:183-184``, read
back by ``backend/sampling/sampling_function.py:332-333``), and ``on_cfg_denoiser`` replaces them
with that step's blend, reconstructed at that step exactly as the host does
(``prompt_parser.reconstruct_multicond_batch`` / ``reconstruct_cond_batch``: prompt editing,
``AND``, batches and SDXL's dict conditionings stay the host's).  The hires pass has its own
conditionings, so its schedule runs again over its own steps.
"""

from __future__ import annotations

import collections
import copy
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from lib_clipskip.plan import resolve
from lib_clipskip.schedule import Schedule, corners
from lib_clipskip.values import FAMILY_ENCODERS, ClipSkipRequest, Family

log = logging.getLogger("sd-webui-clipskip")


@dataclass
class StepConds:
    """A conditioning result of the host and its anchors: whole values per encoder -> the same structure."""

    request: ClipSkipRequest
    family: Family
    anchors: dict[tuple, Any] = field(default_factory=dict)
    #: (anchor, the schedule entry each prompt is in) -> the host's reconstruction: a prompt without
    #: prompt editing is the same tensor at every step, so it is rebuilt once, not at every step
    rebuilt: dict[tuple, Any] = field(default_factory=dict)

    def values_at(self, step: int, total: int) -> dict[str, float]:
        return {spec.name: self.request.step_value(self.family, spec, step, total) for spec in FAMILY_ENCODERS[self.family]}


def encoder_anchors(request: ClipSkipRequest, family: Family) -> list[dict[str, float]]:
    """Every whole-value combination (per encoder) some step of the schedule can need."""
    import itertools
    import math

    per_encoder = []
    for spec in FAMILY_ENCODERS[family]:
        scheduled = request.schedule_g if spec.value_field == "clip_skip_g" and request.schedule_g is not None else (
            request.schedule if spec.value_field == "clip_skip" or request.clip_skip_g is None else None)
        if isinstance(scheduled, Schedule):
            points = scheduled.points
            if scheduled.kind == "ramp":
                low, high = min(points), max(points)
                values = range(math.floor(low), math.ceil(high) + 1)
            else:
                values = sorted({bound for point in points for bound in (math.floor(point), math.ceil(point))})
            per_encoder.append([(spec.name, float(v)) for v in values])
        else:
            per_encoder.append([(spec.name, float(request.value_for(family, spec)))])
    return [dict(combination) for combination in itertools.product(*per_encoder)]


def anchor_request(request: ClipSkipRequest, values: dict[str, float]) -> ClipSkipRequest:
    """A constant request that gives ``values`` (per encoder) on its family."""
    main = next((v for name, v in values.items() if name != "clip_g"), None)
    return replace(request, clip_skip=main if main is not None else values.get("clip_g"),
                   clip_skip_g=values.get("clip_g"), schedule=None, schedule_g=None,
                   negative=None, negative_schedule=None, follow_host=False)


#: (id(result), model, anchors) -> (result, anchors' conditionings): a result the host's cond cache
#: hands out again (the next batch, the next generation of the same prompt) keeps its anchors
_recent: collections.OrderedDict[tuple, tuple[Any, dict]] = collections.OrderedDict()
_RECENT_LIMIT = 8
_recent_lock = threading.Lock()


def prepare(state: Any, loaded: Any, request: ClipSkipRequest, result: Any, encode_anchor: Any, model: Any = None,
            result_plan: Any = None) -> None:
    """Compute the anchors of one conditioning result; ``encode_anchor(plan)`` calls the host's function.

    ``result_plan``: the plan ``result`` itself was made with (the first step's): that anchor is ``result``.

    On any failure the schedule is dropped for this result (one message): the first step's value stays.
    """
    family = loaded.info.family
    entry = StepConds(request, family)
    wanted = encoder_anchors(request, family)
    memo_key = (id(result), id(model), tuple(tuple(sorted(values.items())) for values in wanted))
    with _recent_lock:
        found = _recent.get(memo_key)
    if found is not None and found[0] is result:
        entry.anchors = found[1]
        state.step_conds[id(result)] = (result, entry)
        return
    try:
        for values in wanted:
            key = tuple(sorted(values.items()))
            plan = resolve(anchor_request(request, values), loaded.info).plan
            if plan is None:
                raise ValueError(f"no plan for {values}")
            same = result_plan is not None and plan.cache_key() == result_plan.cache_key()
            entry.anchors[key] = result if same else encode_anchor(plan)
    except Exception as error:
        log.exception("CLIP skip: could not prepare the conditionings over the steps")
        state.note(f"the schedule over the steps could not be prepared ({type(error).__name__}); "
                   "the first step's value is used for every step.")
        return
    state.step_conds[id(result)] = (result, entry)
    with _recent_lock:
        _recent[memo_key] = (result, entry.anchors)
        while len(_recent) > _RECENT_LIMIT:
            _recent.popitem(last=False)


def _shape_of(value: Any) -> tuple:
    """The extra constructor argument of the host's ``DictWithShape`` (SDXL), if it is one."""
    return (value.shape,) if hasattr(value, "shape") else ()


def _blend(terms: list[tuple[float, Any]]) -> Any:
    if len(terms) == 1:  # a whole value: the host's own values; a copy, as the host rebuilds one per step
        only = terms[0][1]
        return type(only)({k: v.clone() for k, v in only.items()}, *_shape_of(only)) if isinstance(only, dict) \
            else only.clone()
    first = terms[0][1]
    if isinstance(first, dict):
        blended = copy.copy(first)
        for key in first:
            blended[key] = sum(weight * tensor[key] for weight, tensor in terms)
        return blended
    return sum(weight * tensor for weight, tensor in terms)


def segment(conds: Any, step: int) -> tuple[int, ...] | None:
    """Which entry of each prompt's schedule ``reconstruct_cond_batch`` / ``reconstruct_multicond_batch``
    take at ``step`` (A1111 v1.10.1 ``prompt_parser.py:280-302`` and ``:321-350``: the first with ``step <= end_at_step``,
    else 0); None for a structure it does not know."""
    try:
        batch = getattr(conds, "batch", None)
        schedules = [c.schedules for item in batch for c in item] if batch is not None else list(conds)
        return tuple(next((i for i, entry in enumerate(s) if step <= entry.end_at_step), 0) for s in schedules)
    except (AttributeError, TypeError):
        return None


def _at_step(entry: StepConds, step: int, total: int, reconstruct: Any, which: str) -> Any:
    terms = []
    for weight, values in corners(entry.values_at(step, total)):
        key = tuple(sorted(values.items()))
        conds = entry.anchors[key]
        where = segment(conds, step)
        if where is None:
            terms.append((weight, reconstruct(conds, step)))
            continue
        memo = (which, key, where)
        if memo not in entry.rebuilt:
            entry.rebuilt[memo] = reconstruct(conds, step)
        terms.append((weight, entry.rebuilt[memo]))
    return _blend(terms)


def on_cfg_denoiser(params: Any) -> None:
    """``script_callbacks.on_cfg_denoiser``: this step's ``text_cond`` / ``text_uncond``. Never raises."""
    denoiser = getattr(params, "denoiser", None)
    p = getattr(denoiser, "p", None)
    states = getattr(p, "__dict__", {})
    from lib_clipskip.generation import STATE_ATTRIBUTE

    state = states.get(STATE_ATTRIBUTE)
    if state is None or not state.step_conds:
        return
    try:
        from lib_clipskip.hosts.base import webui_prompt_parser

        prompt_parser = webui_prompt_parser()
        hires = bool(getattr(p, "is_hr_pass", False))
        cond = getattr(p, "hr_c" if hires else "c", None)
        uncond = getattr(p, "hr_uc" if hires else "uc", None)
        step = getattr(denoiser, "step", None)
        total = getattr(denoiser, "total_steps", None)
        step = int(step if step is not None else params.sampling_step)
        total = int(total if total is not None else params.total_sampling_steps)
        found = state.step_conds.get(id(cond))
        if found is not None and found[0] is cond:
            params.text_cond = _at_step(found[1], step, total,
                                        lambda c, s: prompt_parser.reconstruct_multicond_batch(c, s)[1], "cond")
        found = state.step_conds.get(id(uncond))
        if found is not None and found[0] is uncond and params.text_uncond is not None:
            params.text_uncond = _at_step(found[1], step, total, prompt_parser.reconstruct_cond_batch, "uncond")
    except Exception:  # never cost the user the image: this step keeps the host's conditioning
        log.exception("CLIP skip: could not set this step's conditioning")
