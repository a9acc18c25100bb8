"""From a request and a loaded model to a plan: which value each encoder gets, and why not."""

from __future__ import annotations

from dataclasses import dataclass

from lib_clipskip.values import (
    FAMILY_ENCODERS,
    FAMILY_LABELS,
    ClipSkipRequest,
    ClipSkipValueError,
    EncoderSpec,
    Family,
    LayerPick,
    format_value,
    pick_layers,
)


@dataclass(frozen=True)
class EncoderSlot:
    """An encoder as the host has it loaded."""

    spec: EncoderSpec
    loaded_depth: int  # layers present in the loaded model (Forge loads SD2 with 23 of 24)
    host_value: float  # what the host does by itself, in this extension's numbering


@dataclass(frozen=True)
class ModelInfo:
    """What the host adapter found out about the loaded model."""

    family: Family
    host: str  # the adapter's name: "a1111", "forge" or "reforge"
    slots: tuple[EncoderSlot, ...] = ()
    no_effect_reason: str | None = None  # set when clip skip cannot change this model
    loading: bool = False  # the host is (re)loading it: its encoders are not set up yet
    #: set when the host itself chooses the layer of the generation (reForge's Dynamic clip skip):
    #: the extension then applies nothing, and this says why
    host_steers: str | None = None

    @property
    def label(self) -> str:
        return FAMILY_LABELS[self.family]


@dataclass(frozen=True)
class EncoderPlan:
    name: str
    value: float
    pick: LayerPick
    needs_pooled: bool
    host_value: float


_ENCODER_ORDER = ("clip_l", "clip_h", "clip_g")


@dataclass(frozen=True)
class SkipPlan:
    """The values one generation applies; an encoder left out keeps the host's own behaviour."""

    family: Family
    source: str
    encoders: tuple[EncoderPlan, ...]
    #: encoders ours could not apply to, at the host's own value (our numbering), so that
    #: infotext records what every encoder really used
    kept: tuple[tuple[str, float], ...] = ()

    def value_of(self, name: str) -> float | None:
        return next((e.value for e in self.encoders if e.name == name), None)

    def values(self) -> dict[str, float]:
        """Every encoder's value, ours and the host's kept ones (CLIP-L, ViT-H, OpenCLIP-G order)."""
        merged = {**{e.name: e.value for e in self.encoders}, **dict(self.kept)}
        return dict(sorted(merged.items(), key=lambda item: _ENCODER_ORDER.index(item[0])))

    def cache_key(self) -> tuple:
        """Appended to the host's cond-cache key, so only our values decide a hit."""
        return ("clipskip", tuple((e.name, e.value) for e in self.encoders))

    @property
    def changes_anything(self) -> bool:
        return any(e.value != e.host_value for e in self.encoders)


@dataclass(frozen=True)
class Resolution:
    plan: SkipPlan | None
    messages: tuple[str, ...]


def resolve(request: ClipSkipRequest, model: ModelInfo) -> Resolution:
    """Decide each encoder's value, keeping the host's behaviour wherever ours can't apply."""
    if not request.enabled:
        return Resolution(None, ())
    if model.family is Family.OTHER or not model.slots:
        reason = model.no_effect_reason or "it has no CLIP text encoder whose layers condition the image"
        return Resolution(None, (f"CLIP skip has no effect on {model.label}: {reason}.",))
    if model.host_steers:
        return Resolution(None, (f"{model.host_steers}.",))

    messages: list[str] = []
    encoders: list[EncoderPlan] = []
    kept: list[tuple[str, float]] = []
    for slot in model.slots:
        spec = slot.spec
        value = slot.host_value if request.follow_host else request.value_for(model.family, spec)
        try:
            pick = pick_layers(value, spec.depth)
        except ClipSkipValueError as error:
            messages.append(f"{spec.label}: {error} The host's own value is used.")
            kept.append((spec.name, slot.host_value))
            continue
        if pick.layers_needed > slot.loaded_depth:
            messages.append(
                f"{spec.label}: CLIP skip {format_value(value)} needs layer {pick.layers_needed} of "
                f"{spec.depth}, which this host does not load ({slot.loaded_depth} layers); "
                f"the host's own value {format_value(slot.host_value)} is used."
            )
            kept.append((spec.name, slot.host_value))
            continue
        encoders.append(EncoderPlan(spec.name, value, pick, spec.needs_pooled, slot.host_value))
    if not encoders:
        return Resolution(None, tuple(messages))
    return Resolution(SkipPlan(model.family, request.source, tuple(encoders), tuple(kept)), tuple(messages))


def family_slots(family: Family, host_values: dict[str, float], loaded_depths: dict[str, int] | None = None):
    """Slots for a family with the host's own values; depths default to the original ones."""
    loaded_depths = loaded_depths or {}
    return tuple(
        EncoderSlot(spec, loaded_depths.get(spec.name, spec.depth), host_values[spec.name])
        for spec in FAMILY_ENCODERS[family]
    )
