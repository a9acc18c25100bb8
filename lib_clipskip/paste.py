"""Infotext reading: panel values from pasted parameters, other tools' keys translated.

``read(params)`` turns parsed infotext into panel values; it never raises.  The
``on_infotext_pasted`` callback ``on_pasted`` translates other tools' keys into ours, hands the
host a ``Clip skip`` it can cast (its ``get_override_settings`` does ``int(text)``, so ``2.0``
must become ``2``) and drops one the host could not use; ``read`` repeats that translation
itself when the callback did not run (the API's ``infotext`` field does not call paste
callbacks).  What the translation did is kept in ``params`` under ``KEY_NOTES`` as a value of a
private type: a pasted text that merely *contains* that key is not trusted.
"""

from __future__ import annotations

import html
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip.hosts.base import HOST_OPTION_RANGE
from lib_clipskip.infotext import (
    HOST_KEY,
    KEY,
    KEY_FAILED,
    KEY_G,
    KEY_L,
    KEY_NEGATIVE,
    KEY_SCHEDULE,
    KEY_SOURCE,
    OUR_VALUE_KEYS,
)
from lib_clipskip.values import ClipSkipValueError, Family, format_value, parse_value

log = logging.getLogger("sd-webui-clipskip")

#: Set in ``params`` by ``normalise``: what the paste translated or ignored, for the panel status.
KEY_NOTES = "CLIP skip ext notes"
SDNEXT_KEY = "CLiP-skip"
REFORGE_KEYS = ("Dynamic clip skip", "Dynamic clip skip start", "Dynamic clip skip schedule")
#: The hosts' own Clip skip slider range; anything else in a pasted "Clip skip" cannot be the host's.
HOST_RANGE = HOST_OPTION_RANGE


class Notes(str):
    """``params[KEY_NOTES]`` as ``normalise`` wrote it (parsed text is a plain ``str``)."""


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


def _float(text: str) -> float:
    try:
        return float(text) if 0 < len(text) <= 32 else math.nan
    except ValueError:
        return math.nan


def _sdnext(raw: Any, family: Family | None, notes: list[str]) -> float | None:
    text = str(raw).strip()
    number = _float(text)
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


def _host_clip_skip(params: dict, ours: bool, notes: list[str]) -> bool:
    """Make ``params["Clip skip"]`` a value the host can cast, or drop it; returns whether ours is now set."""
    host_text = str(params[HOST_KEY]).strip()
    number = _float(host_text)
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
    elif math.isfinite(number) and number.is_integer() and HOST_RANGE[0] <= number <= HOST_RANGE[1]:
        params[HOST_KEY] = str(int(number))  # "2.0" (a float option written by A1111): int("2.0") raises in the host
    else:
        notes.append(f"Clip skip {_text(host_text)!r} is not a value the WebUI can use (whole number "
                     f"{HOST_RANGE[0]}–{HOST_RANGE[1]}). Ignored.")
        params.pop(HOST_KEY, None)
    return ours


def normalise(params: dict, family: Family | None = None, text: Any = None) -> list[str]:
    """Translate other tools' keys into ours and make the host ``Clip skip`` usable; returns notes.

    Mutates ``params`` (what an ``on_infotext_pasted`` callback is for) and records the notes in
    ``params[KEY_NOTES]``; running it twice changes nothing more.
    """
    recorded = params.get(KEY_NOTES)
    if isinstance(recorded, Notes):
        return [n for n in recorded.split("\n") if n]
    params.pop(KEY_NOTES, None)  # pasted text naming our private key decides nothing
    notes: list[str] = [f"{key} is empty. Ignored." for key in _empty_keys(text)]
    ours = any(str(params.get(k, "")).strip() for k in OUR_VALUE_KEYS)

    for key in REFORGE_KEYS:
        if key in params:
            notes.append(f"reForge's {key} ({_text(params[key])}) is not applied by this extension.")
    if KEY_FAILED in params and not ours:
        notes.append(f"This image was made at the WebUI's own CLIP skip: the extension's encode failed "
                     f"({_text(params[KEY_FAILED])}).")

    if not ours and SDNEXT_KEY in params:
        value = _sdnext(params[SDNEXT_KEY], family, notes)
        if value is not None:
            params[KEY] = format_value(value)
            ours = True

    if HOST_KEY in params:
        ours = _host_clip_skip(params, ours, notes)
    params[KEY_NOTES] = Notes("\n".join(notes))
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
    if not isinstance(params.get(KEY_NOTES), Notes):  # the API's infotext field: no paste callback ran
        params = dict(params)
        normalise(params, family)
    result = Pasted(messages=normalise(params, family))
    present = [k for k in OUR_VALUE_KEYS if k in params]
    raw = {k: params[k] for k in present if str(params[k] if params[k] is not None else "").strip()}
    for key in present:
        if key not in raw:
            result.messages.append(f"{key} is empty. Ignored.")
    bad_other = any(not m.startswith(("reForge's ", "This image was made at")) for m in result.messages)
    result.found = bool(present) or KEY_SOURCE in params or bad_other
    if not raw:
        if not result.found:
            result.enabled = False  # made without the extension (or it fell back): the panel is off
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
    elif source == "checkpoint":
        result.messages.append("These values were remembered for the checkpoint the image was made with.")
    return result


def loaded_family() -> Family | None:
    try:
        from lib_clipskip.hosts import current

        adapter = current()
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
        trusted = isinstance(params, dict) and isinstance(params.get(KEY_NOTES), Notes)
        return read(params, None if trusted else loaded_family())

    def enabled(params):
        return pasted(params).enabled

    def clip_skip(params):
        return pasted(params).clip_skip

    def clip_skip_g(params):
        return pasted(params).clip_skip_g

    def over_steps(key: str, params: Any) -> str | None:
        """The schedule / negative text when it reads back; "" clears it for an infotext of ours without one."""
        return steps_text(key, params, pasted(params).found)

    def status(params):
        result = pasted(params)
        return result.status_html() if result.messages else None  # otherwise the panel keeps its status

    return [
        (panel.enabled, PasteKey("CLIP skip ext enabled", enabled)),
        (panel.clip_skip, PasteKey(KEY, clip_skip)),
        (panel.clip_skip_g, PasteKey(KEY_G, clip_skip_g)),
        (panel.schedule, PasteKey(KEY_SCHEDULE, lambda params: over_steps(KEY_SCHEDULE, params))),
        (panel.negative, PasteKey(KEY_NEGATIVE, lambda params: over_steps(KEY_NEGATIVE, params))),
        (panel.status, status),
    ]


def steps_text(key: str, params: Any, found: bool) -> str | None:
    """``CLIP skip ext schedule`` / ``negative`` of pasted params, checked by the value model; never raises.

    None (leave the field) without any CLIP-skip key; "" when the key is absent or unreadable.
    """
    from lib_clipskip import schedule

    raw = params.get(key) if isinstance(params, dict) else None
    if raw is None:
        return "" if found else None
    try:
        if key == KEY_SCHEDULE:
            return schedule.pair_text(*schedule.parse_pair(str(raw)))
        return schedule.describe(schedule.parse_setting(str(raw).strip(), what="Negative prompt CLIP skip"))
    except (ClipSkipValueError, ValueError) as error:
        log.warning("CLIP skip: ignored the pasted %s: %s", key, error)
        return ""


PASTE_FIELD_NAMES = ["CLIP skip ext enabled", KEY, KEY_G, KEY_SCHEDULE, KEY_NEGATIVE]
