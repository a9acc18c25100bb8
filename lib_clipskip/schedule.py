"""CLIP skip that changes over the sampling steps.

A ``Schedule`` is written ``a..b`` (linear from ``a`` at the first step to ``b`` at the last, with
the fractional values in between) or ``a,b,c,…`` (the list spread evenly over the steps).  Where
it is used — the ``<clipskip:…>`` tag, the panel's "over the steps" field, the API, infotext
(``CLIP skip ext schedule``) and the X/Y/Z schedule axis — one text may also name the encoders:
``l=3..2:g=2`` (SDXL CLIP-L ramps, OpenCLIP-G stays at 2).

A step's value ``v`` between two whole values is made from the conditionings of its two
neighbours, ``floor(v)`` and ``ceil(v)``: ``(1 - w) * c(floor) + w * c(ceil)`` with
``w = v - floor(v)`` — after the host's LayerNorm and emphasis (a plain fractional value blends
the two hidden states before them, see ``values.pick_layers``).  ``corners`` gives those terms;
with two encoders on their own schedules (SDXL) it is the bilinear combination, which is the
same as blending each encoder on its own because SDXL's conditioning puts the two side by side.
Whole values are the host's own tensors, untouched.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from lib_clipskip.values import DECIMALS, ClipSkipValueError, format_value, parse_value

#: points of one list schedule; more is a typo, not a schedule
MAX_POINTS = 64
MAX_TEXT = 400


@dataclass(frozen=True)
class Schedule:
    kind: str  # "ramp" (two points, linear) or "list" (points spread evenly over the steps)
    points: tuple[float, ...]

    @property
    def first(self) -> float:
        return self.points[0]

    @property
    def constant(self) -> bool:
        return len(set(self.points)) == 1

    def at(self, step: int, total: int) -> float:
        """The value at ``step`` (0-based) of ``total`` sampling steps."""
        if total <= 1 or len(self.points) == 1:
            return self.points[0]
        if self.kind == "ramp":
            t = min(max(step / (total - 1), 0.0), 1.0)
            return round(self.points[0] + (self.points[-1] - self.points[0]) * t, DECIMALS)
        index = min(len(self.points) - 1, max(step, 0) * len(self.points) // total)
        return self.points[index]

    def text(self) -> str:
        return (".." if self.kind == "ramp" else ",").join(format_value(p) for p in self.points)


def parse_setting(raw: Any, what: str = "CLIP skip") -> float | Schedule:
    """A value (``2``, ``1.5``) or a schedule (``3..1``, ``3,2,2,1``); raises ``ClipSkipValueError``."""
    if isinstance(raw, Schedule):
        return raw
    if not isinstance(raw, str) or (".." not in raw and "," not in raw):
        return parse_value(raw, what=what)
    text = raw.strip()
    if len(text) > MAX_TEXT:
        raise ClipSkipValueError(f"{what} schedule is {len(text):,} characters long (at most {MAX_TEXT}).")
    if ".." in text:
        parts = text.split("..")
        if len(parts) != 2:
            raise ClipSkipValueError(f"{what} schedule {text[:40]!r}: a ramp has two ends, like 3..1.")
        kind = "ramp"
    else:
        parts = text.split(",")
        if len(parts) > MAX_POINTS:
            raise ClipSkipValueError(f"{what} schedule has {len(parts)} values (at most {MAX_POINTS}).")
        kind = "list"
    points = tuple(parse_value(part.strip(), what=f"{what} schedule {text[:40]!r}:") for part in parts)
    return Schedule(kind, points)


_NAMES = {"l": "clip_skip", "clip_l": "clip_skip", "n": "clip_skip", "g": "clip_skip_g", "clip_g": "clip_skip_g"}


def _setting(raw: Any, what: str) -> float | Schedule | None:
    text = str(raw).strip()
    if text.lower() in ("auto", "0", "0.0"):
        return None
    return parse_setting(text, what)


def parse_items(items: list[Any]) -> tuple[float | Schedule | None, float | Schedule | None]:
    """``(clip_skip, clip_skip_g)`` of ``:``-separated items (``3``, ``3:4``, ``l=3..2:g=2``, ``auto``);
    each a value, a schedule or None (auto).  Raises ``ClipSkipValueError``."""
    positional: list[Any] = []
    named: dict[str, Any] = {}
    for item in items:
        text = str(item)
        if "=" in text:
            key, _, value = text.partition("=")
            field = _NAMES.get(key.strip().lower())
            if field is None:
                raise ClipSkipValueError(f"unknown name {key.strip()[:20]!r} (use l= or g=)")
            if field in named:
                raise ClipSkipValueError(f"{key.strip()[:20]} is given twice")
            named[field] = value
        else:
            positional.append(text)
    if len(positional) > 2:
        raise ClipSkipValueError("too many values (at most N and G)")
    if not positional and not named:
        raise ClipSkipValueError("no value")
    fields = dict(zip(("clip_skip", "clip_skip_g"), positional))
    for key, value in named.items():
        if key in fields:
            raise ClipSkipValueError(f"{'l' if key == 'clip_skip' else 'g'} is given twice")
        fields[key] = value
    clip_skip = _setting(fields["clip_skip"], "CLIP skip") if "clip_skip" in fields else None
    clip_skip_g = _setting(fields["clip_skip_g"], "OpenCLIP-G CLIP skip") if "clip_skip_g" in fields else None
    return clip_skip, clip_skip_g


def parse_pair(text: str) -> tuple[float | Schedule | None, float | Schedule | None]:
    """The same as a tag's items, from one text (the panel's "over the steps" field, infotext, the API)."""
    if len(str(text)) > MAX_TEXT:
        raise ClipSkipValueError(f"The schedule is {len(str(text)):,} characters long (at most {MAX_TEXT}).")
    return parse_items(str(text).split(":"))


def pair_text(main: float | Schedule | None, g_value: float | Schedule | None) -> str:
    """The text ``parse_pair`` reads back: ``3..1``, ``l=3..2:g=2``."""
    if g_value is None:
        return describe(main)
    return f"l={describe(main)}:g={describe(g_value)}"


def split(setting: float | Schedule | None) -> tuple[float | None, Schedule | None]:
    """(the value of the first step, the schedule when the value changes) of a parsed setting."""
    if isinstance(setting, Schedule):
        return setting.first, (None if setting.constant else setting)
    return setting, None


def describe(setting: float | Schedule | None) -> str:
    if isinstance(setting, Schedule):
        return setting.text()
    return "auto" if setting is None else format_value(setting)


# --- one step's conditioning -------------------------------------------------------------------


def corners(values: dict[str, float]) -> list[tuple[float, dict[str, float]]]:
    """``(weight, whole values per encoder)`` terms that make one step's conditioning; weights sum to 1.

    ``values``: each encoder's value at this step.  A whole value is one term of weight 1.
    """
    per_encoder = []
    for name, value in values.items():
        low = math.floor(round(value, DECIMALS))
        weight = round(value - low, DECIMALS)
        per_encoder.append([(1.0 - weight, name, float(low))] + ([(weight, name, float(low + 1))] if weight else []))
    terms = []
    for combination in itertools.product(*per_encoder):
        weight = math.prod(w for w, _name, _value in combination)
        if weight > 0:
            terms.append((weight, {name: value for _w, name, value in combination}))
    return terms


def anchors(step_values: list[dict[str, float]]) -> list[dict[str, float]]:
    """Every whole-value combination some step needs, in first-use order."""
    seen: dict[tuple, dict[str, float]] = {}
    for values in step_values:
        for _weight, combination in corners(values):
            seen.setdefault(tuple(sorted(combination.items())), combination)
    return list(seen.values())
