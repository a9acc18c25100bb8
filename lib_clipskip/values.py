"""The value model: what a CLIP-skip value means, how it is validated, and which layers it needs.

A value N names the hidden state N layers from the end of the *original, full-depth* text
encoder, in AUTOMATIC1111's numbering (N = 1 is the last layer).  Fractional values interpolate
linearly between the two neighbouring layers.  See DESIGN.md §1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any


class ClipSkipValueError(ValueError):
    """A value that cannot be used; ``str(error)`` is a one-sentence message for the user."""


class Family(str, Enum):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    SDXL_REFINER = "sdxl_refiner"
    OTHER = "other"  # Flux, SD3 and anything else: clip skip has no effect here


@dataclass(frozen=True)
class EncoderSpec:
    """One text encoder of a model family, as the model was trained."""

    name: str  # "clip_l", "clip_h" or "clip_g" (the names used in infotext, CLI and reports)
    depth: int  # transformer layers of the original encoder
    final_layer_norm: bool  # whether the conditioning goes through the final LayerNorm
    needs_pooled: bool  # a pooled output from the full last layer is part of the conditioning
    value_field: str  # which user value drives it: "clip_skip" or "clip_skip_g"
    label: str


CLIP_L_SD1 = EncoderSpec("clip_l", 12, True, False, "clip_skip", "CLIP ViT-L")
CLIP_H_SD2 = EncoderSpec("clip_h", 24, True, False, "clip_skip", "OpenCLIP ViT-H")
CLIP_L_SDXL = EncoderSpec("clip_l", 12, False, False, "clip_skip", "SDXL CLIP-L")
CLIP_G_SDXL = EncoderSpec("clip_g", 32, False, True, "clip_skip_g", "SDXL OpenCLIP-G")

FAMILY_ENCODERS: dict[Family, tuple[EncoderSpec, ...]] = {
    Family.SD1: (CLIP_L_SD1,),
    Family.SD2: (CLIP_H_SD2,),
    Family.SDXL: (CLIP_L_SDXL, CLIP_G_SDXL),
    Family.SDXL_REFINER: (CLIP_G_SDXL,),
    Family.OTHER: (),
}

#: What each family was trained with, which is also what every host does by default.
FAMILY_DEFAULTS: dict[Family, dict[str, float]] = {
    Family.SD1: {"clip_l": 1.0},
    Family.SD2: {"clip_h": 2.0},
    Family.SDXL: {"clip_l": 2.0, "clip_g": 2.0},
    Family.SDXL_REFINER: {"clip_g": 2.0},
    Family.OTHER: {},
}

FAMILY_LABELS = {
    Family.SD1: "SD 1.x",
    Family.SD2: "SD 2.x",
    Family.SDXL: "SDXL",
    Family.SDXL_REFINER: "SDXL refiner",
    Family.OTHER: "this model",
}

#: No CLIP encoder is deeper than this; anything above is a typo, not a request.
MAX_VALUE = 64.0
#: Values are kept to this many decimals so that "1.5" and 1.5000000001 are the same value.
DECIMALS = 4


def parse_value(raw: Any, *, what: str = "CLIP skip") -> float:
    """Turn a UI, API, infotext or XYZ value into a clip-skip number, or raise ClipSkipValueError."""
    if isinstance(raw, bool):
        raise ClipSkipValueError(f"{what} must be a number, not {raw!r}.")
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            raise ClipSkipValueError(f"{what} is empty.")
        if len(text) > 32:
            raise ClipSkipValueError(f"{what} {text[:32]!r}… is not a number.")
        try:
            value = float(text)
        except ValueError:
            raise ClipSkipValueError(f"{what} {text!r} is not a number.") from None
    elif isinstance(raw, (int, float)):
        value = float(raw)
    else:
        try:
            value = float(raw)  # numpy scalars, 0-d tensors
        except (TypeError, ValueError):
            raise ClipSkipValueError(f"{what} {raw!r} is not a number.") from None
    if math.isnan(value) or math.isinf(value):
        raise ClipSkipValueError(f"{what} {value} is not a finite number.")
    if value < 1:
        raise ClipSkipValueError(f"{what} {format_value(value)} is below 1 (1 is the last layer).")
    if value > MAX_VALUE:
        raise ClipSkipValueError(f"{what} {format_value(value)} is larger than any text encoder.")
    return round(value, DECIMALS)


def format_value(value: float) -> str:
    """The shortest faithful text for a value: ``2``, ``1.5``, ``2.25``."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class LayerPick:
    """Which hidden states make a value, counted as layers run from the embeddings.

    ``hidden_states[k]`` is the output after k transformer layers (0 = embeddings).  The
    conditioning is ``(1 - weight) * hidden_states[upper] + weight * hidden_states[lower]``;
    for an integer value ``lower == upper`` and ``weight == 0``.
    """

    upper: int
    lower: int
    weight: float

    @property
    def layers_needed(self) -> int:
        return self.upper


def pick_layers(value: float, depth: int) -> LayerPick:
    """Map a value to hidden-state indices of an encoder of ``depth`` original layers."""
    if not 1 <= value <= depth:
        raise ClipSkipValueError(
            f"CLIP skip {format_value(value)} is beyond this encoder's {depth} layers (1 to {depth})."
        )
    whole = math.floor(value)
    fraction = round(value - whole, DECIMALS)
    upper = depth - whole + 1
    if fraction == 0:
        return LayerPick(upper, upper, 0.0)
    return LayerPick(upper, upper - 1, fraction)


def default_values(overrides: dict[tuple[Family, str], float] | None = None) -> tuple[tuple[Family, str, float], ...]:
    """The per-family, per-encoder defaults (Settings may override some) as a hashable tuple."""
    merged = {(family, name): value for family, values in FAMILY_DEFAULTS.items() for name, value in values.items()}
    merged.update(overrides or {})
    return tuple((family, name, value) for (family, name), value in merged.items())


@dataclass(frozen=True)
class ClipSkipRequest:
    """What the user asked for, before it meets a model.

    ``None`` means "auto": ``clip_skip`` falls back to the default for the loaded family and
    encoder (Settings), ``clip_skip_g`` to ``clip_skip`` when that is set, else to the default.
    """

    enabled: bool = False
    clip_skip: float | None = None
    clip_skip_g: float | None = None
    source: str = "panel"
    defaults: tuple[tuple[Family, str, float], ...] = field(default_factory=default_values)
    #: every encoder takes what the host itself does at its current ``Clip skip`` option (an
    #: X/Y/Z cell of the host's own axis: that option is the cell's value, in the host's numbering)
    follow_host: bool = False
    #: ``lib_clipskip.schedule.Schedule`` of ``clip_skip`` / ``clip_skip_g`` over the sampling
    #: steps (then those hold the first step's value); None: the value stays
    schedule: Any = None
    schedule_g: Any = None
    #: the negative prompt's own value (all encoders) and schedule; None: the same as the prompt
    negative: float | None = None
    negative_schedule: Any = None

    @property
    def scheduled(self) -> bool:
        return self.schedule is not None or self.schedule_g is not None

    def for_negative(self) -> ClipSkipRequest:
        """The request the negative prompt's conditioning uses."""
        if self.negative is None and self.negative_schedule is None:
            return self
        return replace(self, clip_skip=self.negative, clip_skip_g=self.negative, schedule=self.negative_schedule,
                       schedule_g=None, follow_host=False)

    def step_value(self, family: Family, spec: EncoderSpec, step: int, total: int) -> float:
        """One encoder's value at ``step`` of ``total`` sampling steps."""
        scheduled = self.schedule_g if spec.value_field == "clip_skip_g" and self.schedule_g is not None else (
            self.schedule if spec.value_field == "clip_skip" or self.clip_skip_g is None else None)
        return scheduled.at(step, total) if scheduled is not None else self.value_for(family, spec)

    def value_for(self, family: Family, spec: EncoderSpec) -> float:
        if spec.value_field == "clip_skip_g" and self.clip_skip_g is not None:
            return self.clip_skip_g
        if self.clip_skip is not None:
            return self.clip_skip
        return next(v for f, name, v in self.defaults if f is family and name == spec.name)

    def source_for(self, spec: EncoderSpec) -> str:
        if self.follow_host:
            return self.source
        explicit = self.clip_skip_g if spec.value_field == "clip_skip_g" and self.clip_skip_g is not None else self.clip_skip
        return self.source if explicit is not None else "settings"


#: Script args in UI order; the API accepts the same list, or one dict with these keys.
ARG_NAMES = ("enabled", "clip_skip", "clip_skip_g", "schedule", "clip_skip_negative")


@dataclass
class ParsedArgs:
    request: ClipSkipRequest
    messages: list[str] = field(default_factory=list)


def _is_auto(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "auto")) or (
        isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw == 0)


def request_from_args(args: Any, source: str = "panel", defaults=None) -> ParsedArgs:
    """Build a request from script args (UI order) or a dict from the API.

    Never raises: a bad value becomes a message, and the request falls back to the host's own
    behaviour (a bad ``clip_skip`` disables the request) or to auto (a bad ``clip_skip_g``).
    """
    messages: list[str] = []
    if isinstance(args, (list, tuple)) and args and isinstance(args[0], dict):
        args = args[0]  # the API's dict form; trailing values are the UI defaults the API filled in
    if isinstance(args, dict):
        unknown = sorted(map(str, set(args) - set(ARG_NAMES)))
        if unknown:
            messages.append(f"Ignored unknown CLIP skip argument(s): {', '.join(unknown)}.")
        raw = dict(args)
    elif isinstance(args, (list, tuple)):
        raw = dict(zip(ARG_NAMES, args))
    else:
        return ParsedArgs(ClipSkipRequest(), [f"CLIP skip arguments {str(args)[:80]!r} are not a list or dict; ignored."])

    enabled = raw.get("enabled", False)
    if isinstance(enabled, str):
        enabled = enabled.strip().lower() in ("true", "1", "yes", "on")
    enabled = bool(enabled)

    values: dict[str, float | None] = {"clip_skip": None, "clip_skip_g": None}
    for name, what in (("clip_skip", "CLIP skip"), ("clip_skip_g", "OpenCLIP-G CLIP skip")):
        if _is_auto(raw.get(name)):
            continue
        try:
            values[name] = parse_value(raw[name], what=what)
        except ClipSkipValueError as error:
            if not enabled:
                continue
            if name == "clip_skip":
                messages.append(f"{error} The host's own CLIP skip is used.")
                enabled = False
            else:
                messages.append(f"{error} OpenCLIP-G follows the CLIP-L value.")
    request = ClipSkipRequest(enabled, values["clip_skip"], values["clip_skip_g"], source,
                              defaults if defaults is not None else default_values())
    if enabled:
        request = _with_steps(request, raw, messages)
    return ParsedArgs(request, messages)


def _with_steps(request: ClipSkipRequest, raw: dict, messages: list[str]) -> ClipSkipRequest:
    """The "over the steps" schedule and the negative prompt's value of the args, when given."""
    from lib_clipskip import schedule

    text = raw.get("schedule")
    if isinstance(text, str) and text.strip():
        try:
            main, g_value = schedule.parse_pair(text)
        except ClipSkipValueError as error:
            messages.append(f"{error} The schedule is ignored.")
        else:
            first, steps = schedule.split(main)
            first_g, steps_g = schedule.split(g_value)
            request = replace(request, clip_skip=first if main is not None else request.clip_skip, schedule=steps,
                              clip_skip_g=first_g if g_value is not None else request.clip_skip_g, schedule_g=steps_g)
    negative = raw.get("clip_skip_negative")
    if not _is_auto(negative):
        try:
            first, steps = schedule.split(schedule.parse_setting(negative, what="Negative prompt CLIP skip"))
        except ClipSkipValueError as error:
            messages.append(f"{error} The negative prompt uses the prompt's value.")
        else:
            request = replace(request, negative=first, negative_schedule=steps)
    return request
