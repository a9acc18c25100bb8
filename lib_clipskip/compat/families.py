"""Which model family a LoRA was made for: from the key names of networks for other
families (Flux, SD3, PixArt, Stable Cascade, Kolors), the text-encoder slots and widths,
the trainers' metadata (kohya ``ss_base_model_version``, ModelSpec
``modelspec.architecture``) and the UNet's cross-attention width.

Other families come first: kohya's Flux and SD3 LoRAs name their CLIP-L (and SD3's
CLIP-G) ``lora_te1``/``lora_te2`` exactly as SDXL LoRAs do.
"""

from __future__ import annotations

import os
from operator import attrgetter

from .report import (
    FAMILY_CASCADE,
    FAMILY_CHROMA,
    FAMILY_FLUX,
    FAMILY_HIDREAM,
    FAMILY_HUNYUAN,
    FAMILY_KOLORS,
    FAMILY_LUMINA,
    FAMILY_PIXART,
    FAMILY_SD1,
    FAMILY_SD2,
    FAMILY_SD3,
    FAMILY_SDXL,
    FAMILY_UNKNOWN,
    SD_FAMILIES,
)

# ss_base_model_version (kohya) and modelspec.architecture (ModelSpec) prefixes. Longer
# prefixes first where one starts another.
_METADATA_PREFIXES = (
    ("sdxl", FAMILY_SDXL),
    ("sd_v2", FAMILY_SD2),
    ("sd_v1", FAMILY_SD1),
    ("stable-diffusion-xl", FAMILY_SDXL),
    ("stable-diffusion-v2", FAMILY_SD2),
    ("stable-diffusion-v1", FAMILY_SD1),
    ("stable-diffusion-3", FAMILY_SD3),
    ("sd3", FAMILY_SD3),
    ("flux", FAMILY_FLUX),
    ("chroma", FAMILY_CHROMA),
    ("lumina", FAMILY_LUMINA),
    ("hunyuan", FAMILY_HUNYUAN),
    ("hidream", FAMILY_HIDREAM),
    ("kolors", FAMILY_KOLORS),
    ("pixart", FAMILY_PIXART),
    ("stable-cascade", FAMILY_CASCADE),
)

# Checkpoints users know by name that are SDXL underneath (what ss_sd_model_name holds).
_SDXL_DERIVATIVES = (
    ("pony", "Pony Diffusion"),
    ("noobai", "NoobAI (Illustrious-based)"),
    ("illustrious", "Illustrious"),
    ("animagine", "Animagine XL"),
)


def family_from_metadata(metadata: dict) -> tuple[str, str | None]:
    """(family, the raw value it came from) from kohya / ModelSpec metadata."""
    base = metadata.get("ss_base_model_version", "")
    arch = metadata.get("modelspec.architecture", "")
    base_model = base or arch or None
    for value in (base, arch):
        lowered = value.lower()
        for prefix, family in _METADATA_PREFIXES:
            if lowered.startswith(prefix):
                return family, base_model
    if not base and not arch and metadata.get("ss_v2") == "True":
        return FAMILY_SD2, "ss_v2=True"
    return FAMILY_UNKNOWN, base_model


def trained_on(metadata: dict) -> str | None:
    """The checkpoint a kohya LoRA was trained on (its file name), when recorded."""
    name = metadata.get("ss_sd_model_name")
    if not name or name == "None":
        return None
    return os.path.basename(name.replace("\\", "/"))


def sdxl_derivative(checkpoint: str | None) -> str | None:
    """'Pony Diffusion' for 'ponyDiffusionV6XL_v6.safetensors', and so on."""
    lowered = (checkpoint or "").lower()
    return next((label for needle, label in _SDXL_DERIVATIVES if needle in lowered), None)


def family_from_hints(hints: set) -> str | None:
    if "flux" in hints:
        return FAMILY_FLUX
    if "sd3" in hints:
        return FAMILY_SD3
    if "mmdit" in hints or "t5" in hints:
        return None  # Flux or SD3: the encoder slots decide (family_from_weights)
    for family in (FAMILY_PIXART, FAMILY_CASCADE, FAMILY_KOLORS):
        if family in hints:
            return family
    return None


def context_width(source, keys) -> int | None:
    """Input width of a UNet cross-attention to_k/to_v: the text conditioning width."""
    all_keys = source.keys()
    for key in [k for k in keys if "attn2" in k]:  # C-level filter first: most keys have no cross-attention
        for anchor in ("attn2_to_k.", "attn2.to_k.", "attn2_to_v.", "attn2.to_v."):
            pos = key.find(anchor)
            if pos < 0:
                continue
            prefix = key[: pos + len(anchor)]
            for down in ("lora_down.weight", "lora_A.weight", "hada_w1_b", "down.weight"):
                if prefix + down in all_keys:
                    shape = source.shape(prefix + down)
                    if shape is not None and len(shape) >= 2:
                        return shape[1]
    return None


# A module's output features, per algorithm: (tensor names that must all exist, how to
# combine their shapes). For q_proj the output features are the encoder width.
_OUT_FEATURES = (
    (("lora_up.weight",), lambda s: s[0][0]),
    (("lora_B.weight",), lambda s: s[0][0]),
    (("lora.up.weight",), lambda s: s[0][0]),
    (("lora_linear_layer.up.weight",), lambda s: s[0][0]),
    (("up.weight",), lambda s: s[0][0]),
    (("hada_w1_a",), lambda s: s[0][0]),
    (("diff",), lambda s: s[0][0]),
    (("b2.weight",), lambda s: s[0][0]),
    (("weight",), lambda s: s[0][0]),  # (IA)^3
    (("oft_blocks",), lambda s: s[0][0] * s[0][1]),
    (("lokr_w1", "lokr_w2"), lambda s: s[0][0] * s[1][0]),
    (("lokr_w1_a", "lokr_w2_a"), lambda s: s[0][0] * s[1][0]),
    (("lokr_w1", "lokr_w2_a"), lambda s: s[0][0] * s[1][0]),
    (("lokr_w1_a", "lokr_w2"), lambda s: s[0][0] * s[1][0]),
)


def te_width(source, te_modules: list) -> int | None:
    """Width of the single (SD1/SD2) encoder, read from a q_proj module's output
    features."""
    keys = source.keys()
    for module in te_modules:
        if module.encoder_slot != "te" or "q_proj" not in module.prefix:
            continue
        for names, width_of in _OUT_FEATURES:
            full_names = [module.prefix + n for n in names]
            if not all(n in keys for n in full_names):
                continue
            shapes = [source.shape(n) for n in full_names]
            if all(shapes):
                try:
                    return int(width_of(shapes))
                except IndexError:
                    continue
    return None


def family_from_weights(source, keys, te_modules: list, meta_family: str, hints: set):
    """(family, "weights" | "metadata" | None). Networks of other families first, then
    what the metadata declares for them; then the SD clues, costly ones last."""
    by_hint = family_from_hints(hints)
    if by_hint:
        return by_hint, "weights"
    slots = set(map(attrgetter("encoder_slot"), te_modules))
    if "t5" in hints or "mmdit" in hints:
        # a T5 or MM-DiT block: SD3 has CLIP-G (te2), Flux does not
        return (FAMILY_SD3 if "te2" in slots or "clip_g" in slots else FAMILY_FLUX), "weights"
    if meta_family not in SD_FAMILIES and meta_family != FAMILY_UNKNOWN:
        return meta_family, "metadata"  # e.g. a Flux LoRA that only trained CLIP-L (lora_te1)
    if not slots.isdisjoint(("te1", "te2", "clip_g")):
        return FAMILY_SDXL, "weights"
    by_te = {768: FAMILY_SD1, 1024: FAMILY_SD2}.get(te_width(source, te_modules))
    if by_te:
        return by_te, "weights"
    if meta_family != FAMILY_UNKNOWN:
        return meta_family, "metadata"
    by_context = {768: FAMILY_SD1, 1024: FAMILY_SD2, 2048: FAMILY_SDXL}.get(context_width(source, keys))
    if by_context:
        return by_context, "weights"
    if "clip_h" in slots:
        return FAMILY_SD2, "weights"
    if any(k.startswith(("lora_unet_input_blocks", "lora_unet_output_blocks")) for k in keys):
        return FAMILY_SDXL, "weights"
    return FAMILY_UNKNOWN, None
