"""Report types and the stable vocabulary (kinds, formats, families, warning codes)."""

from __future__ import annotations

from dataclasses import dataclass, field

KIND_LORA = "lora"
KIND_LYCORIS = "lycoris"
KIND_EMBEDDING = "embedding"
KIND_UNKNOWN = "unknown"

FAMILY_SD1 = "sd1"
FAMILY_SD2 = "sd2"
FAMILY_SDXL = "sdxl"
FAMILY_UNKNOWN = "unknown"
SD_FAMILIES = (FAMILY_SD1, FAMILY_SD2, FAMILY_SDXL)
# Model families clip skip has no say in; a file made for one of them never fits SD1/SD2/SDXL.
FAMILY_FLUX = "flux"
FAMILY_CHROMA = "chroma"
FAMILY_SD3 = "sd3"
FAMILY_KOLORS = "kolors"
FAMILY_PIXART = "pixart"
FAMILY_CASCADE = "stable-cascade"
FAMILY_LUMINA = "lumina"
FAMILY_HUNYUAN = "hunyuan"
FAMILY_HIDREAM = "hidream"
FAMILY_T5 = "t5"  # an embedding for a T5 text encoder alone (PixArt, Chroma)
FAMILY_OPENCLIP_G = "openclip-g"  # an embedding for OpenCLIP-G alone (half of an SDXL one)
# Family ids (JSON, panel) -> the names people use for those models.
FAMILY_LABELS = {
    FAMILY_SD1: "SD1",
    FAMILY_SD2: "SD2",
    FAMILY_SDXL: "SDXL",
    FAMILY_FLUX: "Flux",
    FAMILY_CHROMA: "Chroma (Flux-based)",
    FAMILY_SD3: "SD3",
    FAMILY_KOLORS: "Kolors",
    FAMILY_PIXART: "PixArt",
    FAMILY_CASCADE: "Stable Cascade",
    FAMILY_LUMINA: "Lumina",
    FAMILY_HUNYUAN: "Hunyuan",
    FAMILY_HIDREAM: "HiDream",
    FAMILY_T5: "T5 (PixArt, Chroma)",
    FAMILY_OPENCLIP_G: "OpenCLIP-G alone",
    FAMILY_UNKNOWN: "unknown",
}

# Format ids are stable (JSON output, panel); labels are for people.
FORMAT_LABELS = {
    "kohya": "kohya LoRA",
    "diffusers-peft": "diffusers/PEFT LoRA",
    "lycoris-locon": "LyCORIS LoCon",
    "lycoris-loha": "LyCORIS LoHa",
    "lycoris-lokr": "LyCORIS LoKr",
    "lycoris-ia3": "LyCORIS (IA)^3",
    "lycoris-oft": "LyCORIS OFT",
    "lycoris-glora": "LyCORIS GLoRA",
    "lycoris-full": "LyCORIS full/diff",
    "a1111-pt": "A1111 .pt textual inversion",
    "ti-parameterdict": "original textual-inversion .pt (string_to_param ParameterDict, 2022)",
    "diffusers-bin": "diffusers learned_embeds textual inversion",
    "emb-params": "kohya emb_params textual inversion",
    "onetrainer": "OneTrainer textual inversion",
    "sdxl-clip-l-g": "clip_l/clip_g textual inversion",
    "png-embedded": "PNG-embedded textual inversion",
    "image-embedded": "textual inversion hidden in an image's pixels",
}

# Encoder names and their full depth in the value contract (SD2 counted on 24 layers).
ENCODER_LAYERS = {"clip_l": 12, "clip_h": 24, "clip_g": 32}
ENCODER_LABELS = {"clip_l": "CLIP-L", "clip_h": "OpenCLIP-H", "clip_g": "OpenCLIP-G"}

CODE_TRAINED_SKIP_MISMATCH = "trained-clip-skip-mismatch"
CODE_TE_LAYERS_SKIPPED = "te-layers-skipped"
CODE_FAMILY_MISMATCH = "family-mismatch"
CODE_TE_KEYS_IGNORED = "te-keys-ignored-by-host"
CODE_NO_EFFECT = "no-effect-on-model"
CODE_UNREADABLE = "unreadable"
CODE_HOST_CANNOT_LOAD = "host-cannot-load"

HOSTS = ("a1111", "forge", "reforge", "forge-classic")


@dataclass(frozen=True)
class CompatWarning:
    code: str
    message: str

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass
class FileReport:
    """What one file is and what it touches. Independent of the target model and value.

    ``warnings`` is empty in cached analyses; ``check_files`` returns copies with
    warnings for a given target."""

    path: str
    kind: str = KIND_UNKNOWN
    format: str | None = None
    family: str = FAMILY_UNKNOWN
    family_source: str | None = None  # "weights" | "metadata"
    base_model: str | None = None  # raw ss_base_model_version / modelspec.architecture
    trained_on: str | None = None  # the checkpoint it was trained on (ss_sd_model_name), when recorded
    output_name: str | None = None  # ss_output_name: the alias hosts match <lora:...> by
    trained_clip_skip: float | None = None
    trained_clip_skip_source: str | None = None  # "metadata" | "weights"
    trained_clip_skip_detail: str | None = None  # e.g. "ss_clip_skip=2"
    # encoder -> {layer: number of modules on it}
    te_modules: dict[str, dict[int, int]] = field(default_factory=dict)
    # encoder -> layers whose modules are all exactly zero (trailing layers only)
    te_zero_layers: dict[str, list[int]] = field(default_factory=dict)
    # key style -> number of TE keys in that style: "kohya", "diffusers", "comfy"
    te_key_styles: dict[str, int] = field(default_factory=dict)
    # for embeddings: the word that calls it (the file stem; an image's own "name"), and its vectors
    embedding_name: str | None = None
    vectors: int | None = None
    # host -> why that host will not load the file at all ("a1111", "forge", or "*" for both)
    host_refuses: dict[str, str] = field(default_factory=dict)
    # a pickle global torch >= 2.6's default torch.load(weights_only=True) refuses, if any
    needs_full_unpickler: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[CompatWarning] = field(default_factory=list)
    error: str | None = None

    def with_warnings(self, warnings: list[CompatWarning]) -> FileReport:
        """A shallow copy with its own notes list and the given warnings (cheaper than
        dataclasses.replace, which matters when a panel update re-checks many files)."""
        copy = object.__new__(FileReport)
        copy.__dict__.update(self.__dict__)
        copy.notes = list(self.notes)
        copy.warnings = list(warnings)
        return copy

    @property
    def te_layers(self) -> dict[str, list[int]]:
        return {enc: sorted(layers) for enc, layers in sorted(self.te_modules.items())}

    @property
    def family_label(self) -> str:
        return FAMILY_LABELS.get(self.family, self.family)

    @property
    def format_label(self) -> str | None:
        return FORMAT_LABELS.get(self.format, self.format) if self.format else None

    def to_json(self) -> dict:
        skip = self.trained_clip_skip
        if skip is not None and float(skip).is_integer():
            skip = int(skip)
        return {
            "path": self.path,
            "kind": self.kind,
            "format": self.format,
            "family": self.family,
            "family_label": self.family_label,
            "base_model": self.base_model,
            "trained_on": self.trained_on,
            "trained_clip_skip": skip,
            "trained_clip_skip_source": self.trained_clip_skip_source,
            "te_layers": self.te_layers,
            "warnings": [w.to_json() for w in self.warnings],
            "notes": list(self.notes),
            "error": self.error,
        }


class UnreadableFile(Exception):
    """The file cannot be inspected safely; ``str(exc)`` is the reason shown to the
    user."""
