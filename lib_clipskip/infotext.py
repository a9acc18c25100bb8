"""Infotext writing: what a generation applied, per image, in keys of ours and the host's.

``install(p)`` puts one callable per key into ``p.extra_generation_params``; the host calls each
per image in ``create_infotext`` with that function's locals, after that batch's conditionings
exist.  The callables read the plans recorded in ``generation.state_of(p)`` for the image's
batch, so X/Y/Z cells (shallow copies sharing one dict) and batches with different
``<clipskip:…>`` tags each describe themselves, and a callable returns ``None`` (no key) where
the extension did nothing.  The host's own ``Clip skip`` key is replaced by a callable too: it
gives the value the host itself would reproduce, omits it where the host would ignore it, and
writes exactly what the host would have written when the extension did nothing for that image.

Which batch an image belongs to (``batch_number``): both hosts build each image's infotext with
``create_infotext(p, p.prompts, p.seeds, p.subseeds, index=i, …)`` — batch-local lists, no
``iteration`` (A1111 v1.10.1 ``modules/processing.py:1026``, Forge dfdcbab6 ``:1031``) — while
``Processed.infotext`` and the hires/X-Y-Z callers pass the job's lists with ``iteration`` or an
index into them (A1111 ``:610``, ``:1381``; ``scripts/xyz_grid.py``), and the grid's text uses
``use_main_prompt``.  Reading is in ``lib_clipskip.paste``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from lib_clipskip import __version__, generation
from lib_clipskip.hosts import current
from lib_clipskip.plan import SkipPlan
from lib_clipskip.values import Family, format_value

log = logging.getLogger("sd-webui-clipskip")

KEY = "CLIP skip ext"
KEY_L = "CLIP skip ext L"
KEY_G = "CLIP skip ext G"
KEY_SOURCE = "CLIP skip ext source"
KEY_VERSION = "CLIP skip ext version"
#: written when the extension's encode failed and the host's own conditioning was used instead
KEY_FAILED = "CLIP skip ext failed"
#: the value over the steps (``lib_clipskip.schedule``: ``3..1``, ``l=3..2:g=2``); the keys above give its first step
KEY_SCHEDULE = "CLIP skip ext schedule"
#: the negative prompt's own value or schedule (absent: the same as the prompt)
KEY_NEGATIVE = "CLIP skip ext negative"
HOST_KEY = "Clip skip"
OUR_VALUE_KEYS = (KEY, KEY_L, KEY_G)
WRITTEN_KEYS = (KEY, KEY_L, KEY_G, KEY_SCHEDULE, KEY_NEGATIVE, KEY_SOURCE, KEY_VERSION, KEY_FAILED)

SOURCE_LABELS = {"prompt tag": "prompt tag", "tag": "prompt tag", "xyz": "xyz", "checkpoint": "checkpoint"}

ENCODER_KEYS = {"clip_l": KEY_L, "clip_g": KEY_G}


def entries(plan: SkipPlan, version: str = __version__) -> dict[str, str]:
    """The ``CLIP skip ext`` keys for one plan (pure): every encoder's value, ours or the host's kept one."""
    values = plan.values()
    out: dict[str, str] = {}
    distinct = set(values.values())
    split = len(distinct) > 1 or (plan.family is Family.SDXL and len(values) == 1)
    if split:
        for name, value in values.items():
            out[ENCODER_KEYS.get(name, KEY)] = format_value(value)
    elif distinct:
        out[KEY] = format_value(distinct.pop())
    source = SOURCE_LABELS.get(str(plan.source).lower())
    if source is None and "xyz" in str(plan.source).lower():
        source = "xyz"
    if source:
        out[KEY_SOURCE] = source
    out[KEY_VERSION] = version
    return out


def steps_entry(key: str, state: generation.GenerationState, batch: int) -> str | None:
    """``CLIP skip ext schedule`` / ``CLIP skip ext negative`` of one batch, as ``schedule.parse_pair`` reads them."""
    from lib_clipskip import schedule

    request = state.requests.get(batch)
    if request is None:
        return None
    if key == KEY_SCHEDULE:
        if not request.scheduled:
            return None
        return schedule.pair_text(request.schedule or request.clip_skip, request.schedule_g or request.clip_skip_g)
    if batch not in state.negative_plans:
        return None  # the negative prompt used the prompt's value
    return schedule.describe(request.negative_schedule or request.negative)


def host_reproduces(plan: SkipPlan, adapter: Any) -> int | None:
    """The host's own ``Clip skip`` that gives the same conditioning, or None when it has none."""
    return adapter.reproducing_option(plan.family, list(plan.values().values()))


def batch_number(p: Any, all_prompts: Any = None, iteration: Any = 0, index: Any = None,
                 use_main_prompt: bool = False) -> int:
    """The batch (``p.iteration``) an image's infotext describes, from ``create_infotext``'s locals."""
    if use_main_prompt:
        return 0  # the grid / "main" text describes the first prompt of the job
    batch_size = getattr(p, "batch_size", 1)
    batch_size = batch_size if isinstance(batch_size, int) and batch_size > 0 else 1
    if isinstance(index, int) and isinstance(all_prompts, (list, tuple)) and len(all_prompts) > batch_size:
        return index // batch_size  # the job's lists: the index says which batch
    if isinstance(index, int) and isinstance(all_prompts, (list, tuple)):
        current = getattr(p, "iteration", 0)  # batch-local lists: the host is in that batch's loop
        return current if isinstance(current, int) else 0
    return iteration if isinstance(iteration, int) else 0


def batch_plan(p: Any, batch: int) -> tuple[generation.GenerationState | None, SkipPlan | None]:
    """The plan an image of batch ``batch`` was made with; None when the host's own encode made it."""
    state = generation.state_of(p)
    if state is None:
        return None, None
    if batch in state.fallbacks:
        return state, None  # the host's own encode made (part of) this image: claim nothing of ours
    plans = state.batches.get(batch)
    if plans is None:
        plans = state.plans if not state.batches else []
    return state, (plans[0] if plans else None)


def _host_written(p: Any, adapter: Any) -> Any:
    """What the host itself writes for "Clip skip" (omitted when <= 1, A1111 ``processing.py:790``)."""
    from lib_clipskip.hosts.base import webui_shared

    try:
        value = adapter.written_option(getattr(p, "clip_skip", webui_shared().opts.CLIP_stop_at_last_layers))
        number = float(value)
    except Exception:
        return None
    if not math.isfinite(number) or number <= 1:
        return None
    return int(number) if number.is_integer() else value


class _Value(str):
    """One infotext key's value, computed per image by ``create_infotext`` (which calls a callable value).

    A ``str`` (empty) for whoever serialises ``extra_generation_params`` as it is: ``Processed.js()``
    dumps it with ``json.dumps(obj, default=lambda o: None)`` in A1111 v1.10.1 (``processing.py:583``),
    Forge and reForge, but with a bare ``json.dumps(obj)`` in Forge Classic 1f95d717 (``processing.py:616``),
    where any other object fails the API response and the UI's result."""

    key: str

    def __new__(cls, key: str) -> _Value:
        value = super().__new__(cls, "")
        value.key = key
        return value

    def __call__(self, p: Any = None, all_prompts: Any = None, iteration: Any = 0, index: Any = None,
                 use_main_prompt: bool = False, **_: Any) -> Any:
        try:
            return self.compute(p, batch_number(p, all_prompts, iteration, index, use_main_prompt))
        except Exception:  # a broken infotext must not cost the user the image
            log.exception("CLIP skip: could not write infotext key %s", self.key)
            return None

    def compute(self, p: Any, batch: int) -> Any:
        state, plan = batch_plan(p, batch)
        if self.key == HOST_KEY:
            if plan is None:
                return _host_written(p, state.adapter if state is not None else current())
            request = state.requests.get(batch)
            if request is not None and (request.scheduled or batch in state.negative_plans):
                return None  # a value over the steps or the negative prompt's own: the WebUI can't make it alone
            value = host_reproduces(plan, state.adapter)
            return value if value is not None and value > 1 else None
        if self.key == KEY_FAILED:
            return state.fallbacks.get(batch) if state is not None and _write_ours() else None
        if plan is None or not _write_ours():
            return None
        if self.key in (KEY_SCHEDULE, KEY_NEGATIVE):
            return steps_entry(self.key, state, batch)
        return entries(plan).get(self.key)

    def __repr__(self) -> str:
        return f"<clipskip infotext {self.key!r}>"


def _write_ours() -> bool:
    from lib_clipskip import settings

    return bool(settings.read("clipskip_write_infotext"))


def install(p: Any) -> None:
    """Make ``p``'s infotext describe what the extension applies (idempotent)."""
    params = getattr(p, "extra_generation_params", None)
    if params is None:
        return
    for key in (HOST_KEY, *WRITTEN_KEYS):
        if not isinstance(params.get(key), _Value):
            params[key] = _Value(key)
