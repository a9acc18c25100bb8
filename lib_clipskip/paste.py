"""Infotext reading: panel values from pasted parameters, other tools' numbering translated.

``read(params)`` turns parsed infotext into panel values; it never raises.  The
``on_infotext_pasted`` callback ``on_pasted`` runs ``normalise``: which tool wrote the text and
which layer each encoder was really at (``lib_clipskip.translate``), then the panel is set to
that layer wherever the host's own ``Clip skip`` would pick another one on this host and model,
and that ``Clip skip`` is corrected (or dropped when the host can't make the layer), so the
override dropdown the host computes after the callbacks agrees.  ``read`` repeats the same
translation on a copy when the callback did not run: the API's ``infotext`` field calls no
paste callback and applies the raw ``Clip skip`` itself, which the panel's value then overrides.
What the translation did is kept in ``params`` under ``KEY_NOTES`` as a value of a private type:
a pasted text that merely *contains* that key is not trusted.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from lib_clipskip import translate
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
from lib_clipskip.numbering import HOST_RANGE
from lib_clipskip.values import ClipSkipValueError, Family, format_value, parse_value

log = logging.getLogger("sd-webui-clipskip")

#: Set in ``params`` by ``normalise``: what the paste translated or ignored, for the panel status.
KEY_NOTES = "CLIP skip ext notes"
SDNEXT_KEY = translate.SDNEXT_LEGACY_KEY


class Notes(str):
    """``params[KEY_NOTES]`` as ``normalise`` wrote it (parsed text is a plain ``str``)."""

    keep: bool = False  # a value was unusable: the panel keeps its values

    def __new__(cls, text: str = "", keep: bool = False):
        self = super().__new__(cls, text)
        self.keep = keep
        return self

    def lines(self) -> list[str]:
        return [line for line in self.split("\n") if line]


@dataclass(frozen=True)
class HostContext:
    """What a paste is translated for: the running host, its loaded model, its own option now."""

    host: str = "a1111"
    family: Family | None = None
    clip_l_skip: bool = False  # A1111's "Clip skip SDXL"
    option: int = 1  # the host's Clip skip now (what it keeps when the paste carries none)


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


def _number(raw: Any, what: str, notes: list[str]) -> float | None:
    """One of our values, translating ComfyUI's ``-N``; None (with a note) when bad."""
    text = str(raw).strip() if raw is not None else ""
    negative = text.startswith("-")
    try:
        value = parse_value(text[1:] if negative else text, what=f"{what} {_text(text)!r}" if negative else what)
    except ClipSkipValueError as error:
        notes.append(f"{error} Ignored.")
        return None
    if negative:
        notes.append(f"{what} {text} (ComfyUI numbering) read as {format_value(value)}.")
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


def _host_name() -> str:
    try:
        from lib_clipskip.hosts import current

        return current().name
    except Exception:
        return "a1111"


def context_of(context: HostContext | Family | None) -> HostContext:
    if isinstance(context, HostContext):
        return context
    return HostContext(_host_name(), context)


def loaded_context() -> HostContext:
    """The running host, the family of its loaded model and its own Clip skip; never raises."""
    try:
        from lib_clipskip.hosts import current

        adapter = current()
    except Exception:
        return HostContext()
    try:
        family = adapter.inspect(adapter.current_model()).info.family
    except Exception:
        family = None
    try:
        return HostContext(adapter.name, family, adapter.clip_l_skip_sdxl(), adapter.host_option())
    except Exception:
        return HostContext(adapter.name, family)


def _sanitise_host(params: dict, notes: list[str]) -> None:
    """Beside our own keys: hand the host a ``Clip skip`` it can cast (``2.0`` -> ``2``), or none."""
    text = str(params[HOST_KEY]).strip()
    value = translate.number(text)
    if value is not None and value.is_integer() and HOST_RANGE[0] <= value <= HOST_RANGE[1]:
        params[HOST_KEY] = str(int(value))  # int("2.0") raises in the host's get_override_settings
        return
    notes.append(f"Clip skip {_text(text)!r} is not a value the WebUI can use (whole number "
                 f"{HOST_RANGE[0]}–{HOST_RANGE[1]}). Ignored.")
    params.pop(HOST_KEY, None)


def _write_ours(params: dict, layers: dict[str, float]) -> None:
    clip_skip, clip_skip_g = translate.panel_values(layers)
    if clip_skip_g:
        params[KEY_L], params[KEY_G] = format_value(clip_skip), format_value(clip_skip_g)
    else:
        params[KEY] = format_value(clip_skip)


def normalise(params: dict, context: HostContext | Family | None = None, text: Any = None) -> list[str]:
    """Translate other tools' values for this host and fix its ``Clip skip``; returns the notes.

    Mutates ``params`` (what an ``on_infotext_pasted`` callback is for) and records the notes in
    ``params[KEY_NOTES]``; running it twice changes nothing more.
    """
    recorded = params.get(KEY_NOTES)
    if isinstance(recorded, Notes):
        return recorded.lines()
    params.pop(KEY_NOTES, None)  # pasted text naming our private key decides nothing
    ctx = context_of(context)
    notes: list[str] = [f"{key} is empty. Ignored." for key in _empty_keys(text)]
    keep = bool(notes)
    ours = any(str(params.get(k, "")).strip() for k in OUR_VALUE_KEYS)
    if KEY_FAILED in params and not ours:
        notes.append(f"This image was made at the WebUI's own CLIP skip: the extension's encode failed "
                     f"({_text(params[KEY_FAILED])}).")
    if ours:
        if HOST_KEY in params:
            _sanitise_host(params, notes)
    else:
        reading = translate.read_params(params, ctx.family)
        decision = translate.decide(reading, ctx.host, ctx.family, params.get(HOST_KEY, ctx.option), ctx.clip_l_skip)
        if decision.enable and decision.layers:
            _write_ours(params, decision.layers)
        if decision.host_value is None:
            params.pop(HOST_KEY, None)
        else:
            params[HOST_KEY] = decision.host_value
        if decision.note:
            notes.append(decision.note)
        keep = keep or decision.keep_panel
    params[KEY_NOTES] = Notes("\n".join(notes), keep)
    return notes


def read(params: Any, context: HostContext | Family | None = None) -> Pasted:
    """Panel values from parsed infotext; never raises."""
    try:
        return _read(params, context)
    except Exception as error:  # pragma: no cover - belt and braces around untrusted input
        log.exception("CLIP skip: could not read pasted infotext")
        return Pasted(messages=[f"Could not read the pasted CLIP skip values ({type(error).__name__})."])


def _read(params: Any, context: HostContext | Family | None) -> Pasted:
    if not isinstance(params, dict):
        return Pasted()
    if not isinstance(params.get(KEY_NOTES), Notes):  # the API's infotext field: no paste callback ran
        params = dict(params)
        normalise(params, context)
    notes = params[KEY_NOTES]
    result = Pasted(messages=notes.lines())
    present = [k for k in OUR_VALUE_KEYS if k in params]
    raw = {k: params[k] for k in present if str(params[k] if params[k] is not None else "").strip()}
    for key in present:
        if key not in raw:
            result.messages.append(f"{key} is empty. Ignored.")
    result.found = bool(present) or KEY_SOURCE in params or notes.keep
    if not raw:
        if not result.found:
            result.enabled = False  # made without the extension, at a layer the host makes itself: panel off
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


def on_pasted(infotext: str, params: dict) -> None:
    """``script_callbacks.on_infotext_pasted``: translate, sanitise, record notes; never raises."""
    try:
        if isinstance(params, dict):
            normalise(params, loaded_context(), infotext)
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
        return read(params, None if trusted else loaded_context())

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
