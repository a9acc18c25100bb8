"""Infotext: write what a generation applied, and read it (and other tools' values) back on paste.

Writing.  ``install(p)`` puts one callable per key into ``p.extra_generation_params``; the host
calls each per image in ``create_infotext`` with its locals (``p``, ``iteration``), after that
batch's conditionings exist.  The callables read the plans recorded in ``generation.state_of(p)``
for that batch, so XYZ cells (shallow copies sharing one dict) and batches with different
``<clipskip:…>`` tags each describe themselves, and a callable returns ``None`` (no key) where the
extension did nothing.  The host's own ``Clip skip`` key is replaced by a callable too: it gives
the value the host itself would reproduce, omits it where the host would ignore it, and writes
exactly what the host would have written when the extension did nothing for that image.

Reading.  ``read(params)`` turns parsed infotext into panel values; it never raises.  The
``on_infotext_pasted`` callback ``on_pasted`` translates other tools' keys into ours and drops a
host ``Clip skip`` the host could not use; ``read`` repeats that translation itself when the
callback did not run (the API's ``infotext`` field does not call paste callbacks).
"""

from __future__ import annotations

import html
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip import __version__, generation
from lib_clipskip.plan import SkipPlan
from lib_clipskip.values import ClipSkipValueError, Family, format_value, parse_value

log = logging.getLogger("sd-webui-clipskip")

KEY = "CLIP skip ext"
KEY_L = "CLIP skip ext L"
KEY_G = "CLIP skip ext G"
KEY_SOURCE = "CLIP skip ext source"
KEY_VERSION = "CLIP skip ext version"
#: Set in ``params`` by ``on_pasted``: what the paste translated or ignored, for the panel status.
KEY_NOTES = "CLIP skip ext notes"
HOST_KEY = "Clip skip"
OUR_VALUE_KEYS = (KEY, KEY_L, KEY_G)
WRITTEN_KEYS = (KEY, KEY_L, KEY_G, KEY_SOURCE, KEY_VERSION)

SDNEXT_KEY = "CLiP-skip"
REFORGE_KEYS = ("Dynamic clip skip", "Dynamic clip skip start", "Dynamic clip skip schedule")
#: The hosts' own Clip skip slider range; anything else in a pasted "Clip skip" cannot be the host's.
HOST_RANGE = (1, 12)

SOURCE_LABELS = {"prompt tag": "prompt tag", "tag": "prompt tag", "xyz": "xyz"}

ENCODER_KEYS = {"clip_l": KEY_L, "clip_g": KEY_G}


# --- writing ------------------------------------------------------------------------------------

def entries(plan: SkipPlan, version: str = __version__) -> dict[str, str]:
    """The ``CLIP skip ext`` keys for one plan (pure)."""
    values = {e.name: e.value for e in plan.encoders}
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


def host_reproduces(plan: SkipPlan, host: str) -> int | None:
    """The host's own ``Clip skip`` that gives the same conditioning, or None when it has none."""
    values = [e.value for e in plan.encoders]
    if not values or any(not float(v).is_integer() for v in values):
        return None
    if plan.family is Family.SD1:
        return int(values[0])
    if host != "forge":
        return None  # A1111 ignores Clip skip on SD2, SDXL and the refiner
    if plan.family is Family.SD2:
        value = int(values[0]) - 1  # Forge loads 23 of the 24 layers: its N is ours minus one
        return value if value >= 1 else None
    if plan.family is Family.SDXL and len(values) == 2 and values[0] == values[1] and values[0] >= 2:
        return int(values[0])  # Forge moves both encoders together, with 1 meaning 2
    return None


def batch_plan(p: Any, iteration: Any = None) -> tuple[generation.GenerationState | None, SkipPlan | None]:
    state = generation.state_of(p)
    if state is None:
        return None, None
    batches = getattr(state, "batches", None) or {}
    if iteration is None:
        iteration = getattr(p, "iteration", 0)
    if iteration in getattr(state, "failed_batches", ()):
        return state, None  # the host's own encode made (part of) this image: claim nothing
    plans = batches.get(iteration) if isinstance(iteration, int) else None
    if plans is None:
        plans = state.plans if not batches else []
    return state, (plans[0] if plans else None)


def _host_written(p: Any) -> Any:
    """What the host itself writes for "Clip skip" (both hosts: omitted when <= 1; Forge casts to int)."""
    from lib_clipskip.hosts.base import webui_shared

    try:
        value = getattr(p, "clip_skip", webui_shared().opts.CLIP_stop_at_last_layers)
        number = float(value)
    except Exception:
        return None
    if not math.isfinite(number) or number <= 1:
        return None
    return int(number) if number.is_integer() else value


class _Value:
    """One infotext key's value, computed per image by ``create_infotext``."""

    def __init__(self, key: str):
        self.key = key

    def __call__(self, p: Any = None, iteration: Any = None, **_: Any) -> Any:
        try:
            return self.compute(p, iteration)
        except Exception:  # a broken infotext must not cost the user the image
            log.exception("CLIP skip: could not write infotext key %s", self.key)
            return None

    def compute(self, p: Any, iteration: Any) -> Any:
        state, plan = batch_plan(p, iteration)
        if self.key == HOST_KEY:
            if plan is None:
                return _host_written(p)
            value = host_reproduces(plan, state.adapter.name)
            return value if value is not None and value > 1 else None
        if plan is None or not _write_ours():
            return None
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


# --- reading -------------------------------------------------------------------------------------

@dataclass
class Pasted:
    """What a paste does to the panel: ``None`` leaves a control as it is."""

    enabled: bool | None = None
    clip_skip: float | None = None
    clip_skip_g: float | None = None
    messages: list[str] = field(default_factory=list)
    found: bool = False  # the infotext had a CLIP-skip key of ours or another tool's

    def status_html(self) -> str:
        if not self.messages:
            return ""
        items = "".join(f"<li>{html.escape(m)}</li>" for m in self.messages)
        return f"<ul class='clipskip-paste-notes'>{items}</ul>"


def _text(raw: Any, limit: int = 40) -> str:
    text = str(raw)
    return text if len(text) <= limit else text[:limit] + "…"


def _number(raw: Any, what: str, notes: list[str], allow_negative: bool = True) -> float | None:
    """A clip-skip number from infotext text, translating ComfyUI's ``-N``; None (with a note) when bad."""
    text = str(raw).strip() if raw is not None else ""
    negative = allow_negative and text.startswith("-")
    try:
        value = parse_value(text[1:] if negative else text, what=f"{what} {_text(text)!r}" if negative else what)
    except ClipSkipValueError as error:
        notes.append(f"{error} Ignored.")
        return None
    if negative:
        notes.append(f"{what} {text} (ComfyUI numbering) read as {format_value(value)}.")
    return value


def _sdnext(raw: Any, family: Family | None, notes: list[str]) -> float | None:
    text = str(raw).strip()
    try:
        number = float(text) if len(text) <= 32 else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        notes.append(f"SD.Next CLiP-skip {_text(text)!r} is not a number. Ignored.")
        return None
    if number < 0:
        return _number(text, "SD.Next CLiP-skip", notes)
    sdxl = family in (Family.SDXL, Family.SDXL_REFINER)
    ours = number + 1 if sdxl else number
    try:
        value = parse_value(ours, what="SD.Next CLiP-skip")
    except ClipSkipValueError as error:
        notes.append(f"{error} Ignored.")
        return None
    if sdxl:
        notes.append(f"SD.Next CLiP-skip {_text(text)} on SDXL (SD.Next counts from the penultimate layer) "
                     f"read as {format_value(value)}.")
    else:
        suffix = "" if family is not None else " (no model loaded to check SD.Next's SDXL numbering)"
        notes.append(f"SD.Next CLiP-skip {_text(text)} read as {format_value(value)}{suffix}.")
    return value


def _empty_keys(text: Any) -> list[str]:
    """Keys of ours or other tools' written with an empty value (the host's parser drops them)."""
    if not isinstance(text, str) or not text.strip():
        return []
    last = text.strip().split("\n")[-1][:100_000]
    found = []
    for key in (*OUR_VALUE_KEYS, HOST_KEY, SDNEXT_KEY):
        if re.search(r"(?:^|,)\s*" + re.escape(key) + r":\s*(?:,|$)", last):
            found.append(key)
    return found


def normalise(params: dict, family: Family | None = None, text: Any = None) -> list[str]:
    """Translate other tools' keys into ours and drop an unusable host ``Clip skip``; returns notes.

    Mutates ``params`` (what an ``on_infotext_pasted`` callback is for) and records the notes in
    ``params[KEY_NOTES]``; running it twice changes nothing more.
    """
    if KEY_NOTES in params:
        return [n for n in str(params[KEY_NOTES]).split("\n") if n]
    notes: list[str] = [f"{key} is empty. Ignored." for key in _empty_keys(text)]
    ours = any(str(params.get(k, "")).strip() for k in OUR_VALUE_KEYS)

    for key in REFORGE_KEYS:
        if key in params:
            notes.append(f"reForge's {key} ({_text(params[key])}) is not applied by this extension.")

    if not ours and SDNEXT_KEY in params:
        value = _sdnext(params[SDNEXT_KEY], family, notes)
        if value is not None:
            params[KEY] = format_value(value)
            ours = True

    if HOST_KEY in params:
        host_text = str(params[HOST_KEY]).strip()
        try:
            number = float(host_text) if 0 < len(host_text) <= 32 else math.nan
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number < 0:
            value = _number(host_text, "Clip skip", notes)
            if value is not None and value.is_integer() and value <= HOST_RANGE[1]:
                params[HOST_KEY] = str(int(value))  # the host's own override gets a value it can use
            else:
                params.pop(HOST_KEY, None)
            if value is not None and not ours:
                params[KEY] = format_value(value)
                ours = True
        elif math.isfinite(number) and HOST_RANGE[0] < number < HOST_RANGE[1] and not number.is_integer():
            params.pop(HOST_KEY, None)  # the host would cast it to int: a different image
            notes.append(f"Clip skip {_text(host_text)} is fractional: the WebUI can't use it"
                         + (", this extension can." if not ours else "; ignored."))
            if not ours:
                params[KEY] = format_value(round(number, 4))
                ours = True
        elif not (math.isfinite(number) and number.is_integer() and HOST_RANGE[0] <= number <= HOST_RANGE[1]):
            notes.append(f"Clip skip {_text(host_text)!r} is not a value the WebUI can use (whole number "
                         f"{HOST_RANGE[0]}–{HOST_RANGE[1]}). Ignored.")
            params.pop(HOST_KEY, None)
    params[KEY_NOTES] = "\n".join(notes)
    return notes


def read(params: Any, family: Family | None = None) -> Pasted:
    """Panel values from parsed infotext; never raises."""
    try:
        return _read(params, family)
    except Exception as error:  # pragma: no cover - belt and braces around untrusted input
        log.exception("CLIP skip: could not read pasted infotext")
        return Pasted(messages=[f"Could not read the pasted CLIP skip values ({type(error).__name__})."])


def _read(params: Any, family: Family | None) -> Pasted:
    if not isinstance(params, dict):
        return Pasted()
    if KEY_NOTES not in params:  # the API's infotext field: no paste callback ran
        params = dict(params)
        normalise(params, family)
    result = Pasted(messages=normalise(params, family))
    present = [k for k in OUR_VALUE_KEYS if k in params]
    raw = {k: params[k] for k in present if str(params[k] if params[k] is not None else "").strip()}
    for key in present:
        if key not in raw:
            result.messages.append(f"{key} is empty. Ignored.")
    bad_other = any(not m.startswith("reForge's ") for m in result.messages)
    result.found = bool(present) or KEY_SOURCE in params or bad_other
    if not raw:
        if not result.found:
            result.enabled = False  # made without the extension: the panel is off
        return result  # our key (or a host value) was there but unusable: the panel keeps its values
    values = {k: _number(v, k, result.messages) for k, v in raw.items()}
    if all(v is None for v in values.values()):
        return result
    if KEY in values:
        if values[KEY] is None:
            return result
        result.clip_skip, result.clip_skip_g = values[KEY], 0.0
    else:
        result.clip_skip = values.get(KEY_L, 0.0)
        result.clip_skip_g = values.get(KEY_G, 0.0)
    result.enabled = True
    source = str(params.get(KEY_SOURCE, "")).strip()
    if source == "prompt tag":
        result.messages.append("These values came from a <clipskip:…> tag; the tag in the prompt still decides.")
    elif source == "xyz":
        result.messages.append("These values came from an X/Y/Z plot cell.")
    return result


def loaded_family() -> Family | None:
    try:
        from lib_clipskip import extension

        adapter = extension.adapter()
        return adapter.inspect(adapter.current_model()).info.family
    except Exception:
        return None


def on_pasted(infotext: str, params: dict) -> None:
    """``script_callbacks.on_infotext_pasted``: translate, sanitise, record notes; never raises."""
    try:
        if isinstance(params, dict):
            normalise(params, loaded_family(), infotext)
    except Exception:
        log.exception("CLIP skip: could not read pasted infotext")


class PasteKey(str):
    """A paste-field key that is both an infotext name and a function of the parsed params.

    ``connect_paste`` and the API call it (``callable``); "Send to img2img" matches it by name
    against ``paste_field_names`` (``str``).
    """

    def __new__(cls, name: str, function):
        self = super().__new__(cls, name)
        self.function = function
        return self

    def __call__(self, params: dict) -> Any:
        return self.function(params)


def paste_fields(panel: Any) -> list[tuple[Any, Any]]:
    """``Script.infotext_fields`` for the panel."""

    def pasted(params: dict) -> Pasted:
        return read(params, loaded_family() if not (isinstance(params, dict) and KEY_NOTES in params) else None)

    def enabled(params):
        return pasted(params).enabled

    def clip_skip(params):
        return pasted(params).clip_skip

    def clip_skip_g(params):
        return pasted(params).clip_skip_g

    def status(params):
        result = pasted(params)
        return result.status_html() if result.messages else None  # otherwise the panel keeps its status

    return [
        (panel.enabled, PasteKey("CLIP skip ext enabled", enabled)),
        (panel.clip_skip, PasteKey(KEY, clip_skip)),
        (panel.clip_skip_g, PasteKey(KEY_G, clip_skip_g)),
        (panel.status, status),
    ]


PASTE_FIELD_NAMES = ["CLIP skip ext enabled", KEY, KEY_G]
