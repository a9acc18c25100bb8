"""CLIP-skip axes for the WebUI's built-in X/Y/Z plot (``scripts/xyz_grid.py``), and what a grid learns.

Axes (webui-internals §3.4): ``[CLIP skip] value`` (SDXL: both encoders), ``[CLIP skip] SDXL
CLIP-L`` and ``[CLIP skip] SDXL OpenCLIP-G``.  They are appended to the xyz module's own
``axis_options`` (found through ``scripts.scripts_data``, module name ``"xyz_grid.py"``), at
import and again in ``on_before_ui``, once per label.

- Values: ``prepare`` parses lists and the plot's numeric ranges (``1-4``, ``1-3 (+0.5)``,
  ``1-2 [3]``, ``1,1.5,2``) and raises a one-sentence ``ClipSkipValueError`` before any cell
  runs; a range's size is checked before it is expanded.
- Each cell's ``apply`` records the axis value on that cell's ``p`` (``request.CellValues``);
  ``before_process`` turns it into the cell's request over the panel's (``lib_clipskip.request``).
- The host's own "Clip skip" axis is wrapped once: its ``apply`` still sets the host option and
  also records the value, so a cell's host value beats the panel (DESIGN §2); its labels say
  what the value means in this extension's numbering when that differs.
- Labels say what the value does on the loaded model, ``(no effect)`` when it can't change it.
- While a grid runs (the xyz ``Script.run`` is wrapped once), a ``GridSession`` on the grid's
  ``p`` — copied by reference into every cell — holds the grid's encoder passes
  (``layercache``: one full pass per prompt) and a record of every cell's conditioning, so
  cells that got identical conditioning from different CLIP-skip settings are reported in the
  console and the grid's infotext and comments, with the layers they resolved to.

No module-level state: everything a grid knows lives on its ``p``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from lib_clipskip.grid import GRID_ATTRIBUTE, GridSession
from lib_clipskip.hosts import HOST_LABELS, loaded_model_info
from lib_clipskip.plan import ModelInfo
from lib_clipskip.request import set_cell
from lib_clipskip.values import (
    ClipSkipValueError,
    Family,
    format_value,
    parse_value,
    pick_layers,
)

log = logging.getLogger("sd-webui-clipskip")

XYZ_MODULE_NAMES = ("xyz_grid.py", "scripts.xyz_grid")
HOST_AXIS_LABEL = "Clip skip"  # the host's own axis (A1111 and Forge ``scripts/xyz_grid.py``)
PANEL_TITLE = "CLIP skip"
#: more cells than this from one axis is a typo (``1-12 (+0.001)``), not a comparison
MAX_VALUES = 100
MAX_TEXT = 4000  # characters of an axis's values text
_WRAPPED = "__clipskip_wrapped__"


@dataclass(frozen=True)
class Axis:
    label: str
    target: str  # "value", "clip_l" or "clip_g"
    short: str  # what a cell label and a message call it

    def applies_to(self, value_field: str) -> bool:
        return self.target == "value" or value_field == ("clip_skip_g" if self.target == "clip_g" else "clip_skip")


AXIS_VALUE = Axis("[CLIP skip] value", "value", "CLIP skip")
AXIS_CLIP_L = Axis("[CLIP skip] SDXL CLIP-L", "clip_l", "CLIP-L")
AXIS_CLIP_G = Axis("[CLIP skip] SDXL OpenCLIP-G", "clip_g", "OpenCLIP-G")
#: text axes: each value a schedule (``3..1``, ``"3,2,2,1"``, ``l=3..2:g=2``) or a constant
AXIS_SCHEDULE = Axis("[CLIP skip] schedule", "schedule", "schedule")
AXIS_NEGATIVE = Axis("[CLIP skip] negative prompt", "negative", "negative")
AXES = (AXIS_VALUE, AXIS_CLIP_L, AXIS_CLIP_G, AXIS_SCHEDULE, AXIS_NEGATIVE)
TEXT_AXES = (AXIS_SCHEDULE, AXIS_NEGATIVE)

# --- values ---------------------------------------------------------------------------------

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_RANGE = re.compile(rf"\s*({_NUMBER})\s*-\s*({_NUMBER})\s*(?:\(\s*({_NUMBER})\s*\)|\[\s*(\d+)\s*\])?\s*")
_RANGE_HELP = "use numbers and ranges such as 1-4, 1-3 (+0.5), 1-2 [3] or 1, 1.5, 2"


def parse_axis_values(text: Any, what: str = AXIS_VALUE.label) -> list[float]:
    """The cell values of an axis; raises ``ClipSkipValueError`` naming the bad item."""
    if isinstance(text, (list, tuple)):
        items = [str(item) for item in text[:MAX_VALUES + 1]]
    else:
        raw = str(text if text is not None else "")
        if len(raw) > MAX_TEXT:
            raise ClipSkipValueError(f"{what}: the values are {len(raw):,} characters long; {_RANGE_HELP}.")
        items = raw.split(",")
    values: list[float] = []
    for item in (item.strip() for item in items):
        if not item:
            continue
        match = _RANGE.fullmatch(item)
        if match is None:
            try:
                values.append(parse_value(item, what=what))
            except ClipSkipValueError as error:
                raise ClipSkipValueError(f"{error} ({_RANGE_HELP}).") from None
        else:
            values += _expand_range(item, match, what)
        if len(values) > MAX_VALUES:
            raise ClipSkipValueError(f"{what}: more than {MAX_VALUES} values; {_RANGE_HELP}.")
    if not values:
        raise ClipSkipValueError(f"{what} has no values; {_RANGE_HELP}.")
    return values


def _expand_range(item: str, match: re.Match, what: str) -> list[float]:
    start, end = float(match.group(1)), float(match.group(2))
    if match.group(4) is not None:
        count = int(match.group(4)) if len(match.group(4)) <= 6 else MAX_VALUES + 1
        if count < 1:
            raise ClipSkipValueError(f"{what} {item!r}: the count in [ ] must be at least 1.")
        if count > MAX_VALUES:  # checked before expanding: "1-2 [10000000]" builds nothing
            raise ClipSkipValueError(f"{what} {item!r} makes {match.group(4)[:12]} values (at most {MAX_VALUES}).")
        raw = [start] if count == 1 else [start + (end - start) * i / (count - 1) for i in range(count)]
    else:
        step = float(match.group(3)) if match.group(3) is not None else (1.0 if end >= start else -1.0)
        if step == 0 or (end - start) * step < 0:
            raise ClipSkipValueError(f"{what} {item!r}: the step {format_value(abs(step)) if step else 0} never reaches {match.group(2)}.")
        count = math.floor((end - start) / step + 1e-9) + 1
        if count > MAX_VALUES:
            raise ClipSkipValueError(f"{what} {item!r} makes {count} values (at most {MAX_VALUES}).")
        raw = [start + step * i for i in range(count)]
    return [parse_value(round(value, 6), what=f"{what} {item!r}:") for value in raw]


def cell_value(raw: Any) -> float:
    """The axis ``type``: idempotent on parsed values, so the host's cast changes nothing."""
    return parse_value(raw, what=AXIS_VALUE.label)


def confirm(p: Any, values: list) -> None:
    for value in values:
        parse_value(value, what=AXIS_VALUE.label)


def text_cell(axis: Axis, raw: Any) -> str:
    """One text axis value, checked and written the way infotext writes it; raises ``ClipSkipValueError``."""
    from lib_clipskip import schedule

    text = str(raw).strip()
    if axis is AXIS_SCHEDULE:
        return schedule.pair_text(*schedule.parse_pair(text))
    return schedule.describe(schedule.parse_setting(text, what="Negative prompt CLIP skip"))


def parse_text_axis(text: Any, axis: Axis) -> list[str]:
    """A text axis's cells, split as the host's text axes are (``csv``, quotes keep a list's commas:
    ``3..1, 2, "3,2,2,1"``) or at ``|`` when the text has one (``3..1 | 3,2,2,1``)."""
    import csv
    import io

    if isinstance(text, (list, tuple)):
        items = [str(item) for item in text[:MAX_VALUES + 1]]
    else:
        raw = str(text if text is not None else "")
        if len(raw) > MAX_TEXT:
            raise ClipSkipValueError(f"{axis.label}: the values are {len(raw):,} characters long.")
        items = raw.split("|") if "|" in raw else next(csv.reader(io.StringIO(raw.replace("\n", " ")),
                                                                  skipinitialspace=True), [])
    cells = [text_cell(axis, item) for item in items if item.strip()]
    if not cells:
        raise ClipSkipValueError(f"{axis.label} has no values; use schedules such as 3..1, 2, \"3,2,2,1\".")
    if len(cells) > MAX_VALUES:
        raise ClipSkipValueError(f"{axis.label}: more than {MAX_VALUES} values.")
    return cells


def make_text_option(module: Any, axis: Axis) -> Any:
    def cell(raw: Any) -> str:
        return text_cell(axis, raw)

    def apply(p: Any, x: Any, xs: Any) -> None:
        set_cell(p, **{axis.target: cell(x)})

    def check(p: Any, values: list) -> None:
        for value in values:
            cell(value)

    def label(p: Any, opt: Any, x: Any) -> str:
        return f"{axis.short}: {x}"

    if "prepare" in inspect.signature(module.AxisOption).parameters:
        prepare = functools.partial(parse_text_axis, axis=axis)
        return module.AxisOption(axis.label, cell, apply, format_value=label, confirm=check, prepare=prepare)
    return module.AxisOption(axis.label, cell, apply, format_value=label, confirm=check)


# --- one cell ---------------------------------------------------------------------------------

_CELL_FIELDS = {"value": "value", "clip_l": "clip_l", "clip_g": "clip_g"}


def make_apply(axis: Axis):
    def apply(p: Any, x: Any, xs: Any) -> None:
        set_cell(p, **{_CELL_FIELDS[axis.target]: cell_value(x)})

    return apply


def effect(axis: Axis, value: float, info: ModelInfo) -> tuple[list[str], list[str]]:
    """(encoders the value changes, why the others don't) on a loaded model."""
    if info.family is Family.OTHER or not info.slots:
        return [], [info.no_effect_reason or f"{info.label} has no CLIP text encoder"]
    applied, skipped = [], []
    slots = [slot for slot in info.slots if axis.applies_to(slot.spec.value_field)]
    if not slots:
        return [], [f"{info.label} has no {axis.short} encoder"]
    for slot in slots:
        spec = slot.spec
        try:
            pick = pick_layers(value, spec.depth)
        except ClipSkipValueError:
            skipped.append(f"{spec.label} has {spec.depth} layers")
            continue
        if pick.layers_needed > slot.loaded_depth:
            skipped.append(f"{spec.label} is loaded with {slot.loaded_depth} layers")
            continue
        applied.append(spec.label)
    return applied, skipped


def make_format(axis: Axis):
    def format_label(p: Any, opt: Any, x: Any) -> str:
        text = f"{axis.short}: {format_value(float(x))}"
        try:
            info = loaded_model_info()
        except Exception:
            log.exception("CLIP skip: could not inspect the loaded model for an X/Y/Z label")
            return text
        if info is None:
            return text
        applied, skipped = effect(axis, float(x), info)
        if not applied:
            return f"{text} (no effect)"
        if skipped:
            return f"{text} ({', '.join(applied)} only)"
        return text

    return format_label


# --- registration -----------------------------------------------------------------------------

def find_xyz_module() -> Any:
    """The xyz module the host loaded (not ``import scripts.xyz_grid``: that would be a second copy)."""
    from lib_clipskip.hosts.base import webui_scripts

    for data in getattr(webui_scripts(), "scripts_data", ()):
        if getattr(data.script_class, "__module__", None) in XYZ_MODULE_NAMES:
            return data.module
    return None


def make_option(module: Any, axis: Axis) -> Any:
    apply, label = make_apply(axis), make_format(axis)
    if "prepare" in inspect.signature(module.AxisOption).parameters:
        prepare = functools.partial(parse_axis_values, what=axis.label)
        return module.AxisOption(axis.label, cell_value, apply, format_value=label, confirm=confirm, prepare=prepare)
    # an older plot without ``prepare``: its float ranges, then our check
    return module.AxisOption(axis.label, float, apply, format_value=label, confirm=confirm)


def register() -> bool:
    """Add the axes to the loaded X/Y/Z plot once (by label) and wrap its ``run``; False if there is none."""
    try:
        module = find_xyz_module()
        if module is None:
            log.debug("CLIP skip: no X/Y/Z plot script is loaded; no axes added")
            return False
        present = {getattr(option, "label", None) for option in module.axis_options}
        for axis in AXES:
            if axis.label not in present:
                make = make_text_option if axis in TEXT_AXES else make_option
                module.axis_options.append(make(module, axis))
        wrap_run(module)
        wrap_host_axis(module)
        return True
    except Exception:  # the plot still works without our axes
        log.exception("CLIP skip: could not add the X/Y/Z plot axes")
        return False


def wrap_host_axis(module: Any) -> None:
    """The host's own "Clip skip" axis also records its value on the cell (DESIGN §2: a value
    chosen per cell beats the panel) and, while the panel is on, labels what it means here."""
    option = next((o for o in module.axis_options if getattr(o, "label", None) == HOST_AXIS_LABEL), None)
    if option is None or getattr(option.apply, _WRAPPED, False):
        return
    host_apply, host_format = option.apply, option.format_value

    def apply(p: Any, x: Any, xs: Any) -> None:
        host_apply(p, x, xs)  # the host's override of its option, as always
        try:
            set_cell(p, host_option=int(x))
        except Exception:
            log.exception("CLIP skip: could not record the host's Clip skip axis value %r", x)

    def format_label(p: Any, opt: Any, x: Any) -> str:
        text = host_format(p, opt, x)
        try:
            return text + host_axis_note(p, int(x))
        except Exception:
            log.exception("CLIP skip: could not label the host's Clip skip axis")
            return text

    setattr(apply, _WRAPPED, True)
    option.apply, option.format_value = apply, format_label


def _panel_enabled(p: Any) -> bool:
    from lib_clipskip import settings
    from lib_clipskip.values import request_from_args

    if not settings.current().enabled:
        return False
    for script in getattr(getattr(p, "scripts", None), "alwayson_scripts", None) or ():
        if script.title() == PANEL_TITLE:
            return request_from_args(list(p.script_args[script.args_from:script.args_to])).request.enabled
    return False


def host_axis_note(p: Any, option: int) -> str:
    """`` (= …)`` after a host "Clip skip" label where this extension's numbering differs (panel on only)."""
    if not _panel_enabled(p):
        return ""  # the host applies its own axis; nothing of ours is involved
    from lib_clipskip.hosts import current

    adapter = current()
    model = adapter.current_model()
    per_option = {k: adapter.inspect(model, host_option=k).info for k in {1, 2, 3, option}}
    info = per_option[option]
    if not info.slots:
        return " (no effect)"
    values = [slot.host_value for slot in info.slots]
    if all([s.host_value for s in per_option[k].slots] == values for k in per_option):
        return f" (ignored by {HOST_LABELS.get(info.host, info.host)} on {info.label})"
    if len(set(values)) == 1:
        return "" if values[0] == option else f" (= CLIP skip ext {format_value(values[0])})"
    return " (= " + ", ".join(f"{slot.spec.label} {format_value(slot.host_value)}" for slot in info.slots) + ")"


def wrap_run(module: Any) -> None:
    script_class = getattr(module, "Script", None)
    original = getattr(script_class, "run", None)
    if original is None or getattr(original, _WRAPPED, False):
        return

    @functools.wraps(original)
    def run(self: Any, p: Any, *args: Any, **kwargs: Any) -> Any:
        from lib_clipskip import settings

        if not settings.current().enabled:  # Settings master toggle off: the host's plot, untouched
            return original(self, p, *args, **kwargs)
        session = GridSession()
        previous = vars(p).get(GRID_ATTRIBUTE)
        vars(p)[GRID_ATTRIBUTE] = session
        try:
            processed = original(self, p, *args, **kwargs)
        finally:
            session.close()
            if previous is None:
                vars(p).pop(GRID_ATTRIBUTE, None)
            else:
                vars(p)[GRID_ATTRIBUTE] = previous
        try:
            session.report(processed)
        except Exception:
            log.exception("CLIP skip: could not compare the X/Y/Z cells")
        return processed

    setattr(run, _WRAPPED, True)
    script_class.run = run


