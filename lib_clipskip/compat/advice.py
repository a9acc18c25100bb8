"""Warnings for one analysed file at a target model family, clip-skip value(s) and host."""

from __future__ import annotations

import math
import re
import sys

from .families import sdxl_derivative
from .report import (
    CODE_FAMILY_MISMATCH,
    CODE_HOST_CANNOT_LOAD,
    CODE_NO_EFFECT,
    CODE_TE_KEYS_IGNORED,
    CODE_TE_LAYERS_SKIPPED,
    CODE_TRAINED_SKIP_MISMATCH,
    CODE_UNREADABLE,
    ENCODER_LABELS,
    ENCODER_LAYERS,
    FAMILY_LABELS,
    FAMILY_OPENCLIP_G,
    FAMILY_SD1,
    FAMILY_SD2,
    FAMILY_SD3,
    FAMILY_SDXL,
    FAMILY_T5,
    FAMILY_UNKNOWN,
    KIND_EMBEDDING,
    KIND_LYCORIS,
    KIND_UNKNOWN,
    SD_FAMILIES,
    CompatWarning,
    FileReport,
)

HOST_LABELS = {"a1111": "A1111", "forge": "Forge", "reforge": "reForge", "forge-classic": "Forge Classic"}
# The hosts' own defaults per family: what a generation uses when nobody sets a value.
DEFAULT_CLIP_SKIP = {FAMILY_SD1: 1, FAMILY_SD2: 2, FAMILY_SDXL: 2}


DETECT = "detect"  # torch_version: the torch this process runs, if it has loaded one


def running_torch_version() -> tuple[int, int] | None:
    """(major, minor) of the torch this process has loaded; None when it has none (the CLI).
    Never imports torch: inside a WebUI it is loaded already."""
    match = re.match(r"(\d+)\.(\d+)", str(getattr(sys.modules.get("torch"), "__version__", "")))
    return (int(match[1]), int(match[2])) if match else None


def fmt_skip(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def last_used_layer(encoder: str, clip_skip: float) -> int:
    """0-based index of the deepest layer whose output reaches the result at this value.

    Skip N uses hidden_states[-N] = the output of layer L-N; a fractional N blends in
    the next deeper layer, which then counts as used."""
    return ENCODER_LAYERS[encoder] - math.floor(clip_skip)


def _layer_phrase(layers: list[int]) -> str:
    if len(layers) == 1:
        return f"layer {layers[0]}"
    if layers == list(range(layers[0], layers[-1] + 1)):
        return f"layers {layers[0]}-{layers[-1]}"
    return "layers " + ", ".join(map(str, layers))


def _skipped_layers_warning(report: FileReport, encoder: str, value: float, value_name: str) -> CompatWarning | None:
    modules = report.te_modules.get(encoder) or {}
    if not modules:
        return None
    last_used = last_used_layer(encoder, value)
    known_zero = set(report.te_zero_layers.get(encoder, ()))
    # bigG's last layer only ever feeds SDXL's pooled vector (the tokens get the penultimate at
    # the default 2): it is no loss of this value, so only layers that reach the tokens at the
    # default and stop reaching them here are reported.
    pooled_only = ENCODER_LAYERS[encoder] - 1 if encoder == "clip_g" else None
    skipped = sorted(layer for layer in modules if layer > last_used and layer not in known_zero and layer != pooled_only)
    if not skipped:
        return None
    count = sum(modules[layer] for layer in skipped)
    total = sum(modules.values())
    which = f"{count} of its {total} {ENCODER_LABELS[encoder]} modules ({_layer_phrase(skipped)})"
    at = f"at {value_name} {fmt_skip(value)}"
    if encoder == "clip_g":  # every layer still runs for the pooled vector
        return CompatWarning(CODE_TE_LAYERS_SKIPPED, f"{which} no longer reach the per-token conditioning {at}: "
                                                     "they change only the pooled vector")
    not_run = "that layer is" if len(skipped) == 1 else "those layers are"
    return CompatWarning(CODE_TE_LAYERS_SKIPPED, f"{which} have no effect {at}: {not_run} not run")


def warnings_for(
    report: FileReport,
    family: str | None,
    clip_skip: float | None,
    clip_skip_g: float | None = None,
    host: str = "a1111",
    torch_version: tuple[int, int] | str | None = DETECT,
) -> list[CompatWarning]:
    """Warnings for ``report`` when generating on a ``family`` model at the given
    value(s).

    ``family`` None means "the file's own family" (the CLI without --model); a family
    outside sd1/sd2/sdxl (flux, sd3, ...) is a model clip skip cannot change.
    ``clip_skip`` None means the host default for the family; ``clip_skip_g`` None means
    the same as ``clip_skip``. ``torch_version`` (major, minor) is the WebUI's torch, which
    decides whether .pt files needing more than torch's weights-only loader still load;
    by default the torch this process runs, and None means the hosts' own (before 2.6)."""
    if report.error:
        return [CompatWarning(CODE_UNREADABLE, report.error)]
    refusal = report.host_refuses.get(host) or report.host_refuses.get("*")
    if refusal and report.kind == KIND_UNKNOWN:
        return [CompatWarning(CODE_HOST_CANNOT_LOAD, refusal)]  # e.g. a whole checkpoint named as a LoRA
    if report.kind == KIND_UNKNOWN:
        return []
    if refusal:
        who = "the WebUI" if host not in report.host_refuses else HOST_LABELS.get(host, host)
        return [CompatWarning(CODE_HOST_CANNOT_LOAD, f"{what_it_is(report)}; {who} will not load it: {refusal}")]
    torch_refusal = _weights_only_refusal(report, host, running_torch_version() if torch_version == DETECT else torch_version)
    if torch_refusal:
        return [torch_refusal]
    target = family or report.family
    if target not in SD_FAMILIES:
        if family is None:
            if report.family != FAMILY_UNKNOWN:
                return [CompatWarning(CODE_NO_EFFECT, f"{what_it_is(report)}: clip skip does not change {report.family_label} models")]
            if report.base_model:
                return [CompatWarning(CODE_NO_EFFECT, f"made for {report.base_model}: clip skip does not change that model")]
            return []
        label = FAMILY_LABELS.get(family, family)
        return [CompatWarning(CODE_NO_EFFECT, f"clip skip cannot change {_article(label)} {label} model on this host: "
                                              "this file is unaffected by the value")]
    mismatch = _family_mismatch(report, target)
    if mismatch:
        return [mismatch]  # skip and layer advice for another family would mislead

    found = []
    value = clip_skip if clip_skip is not None else DEFAULT_CLIP_SKIP[target]
    value_g = clip_skip_g if clip_skip_g is not None else value

    trained = report.trained_clip_skip
    if target in (FAMILY_SD1, FAMILY_SD2) and trained is not None and trained != value:
        how = report.trained_clip_skip_detail or report.trained_clip_skip_source
        found.append(
            CompatWarning(
                CODE_TRAINED_SKIP_MISMATCH,
                f"trained at clip skip {fmt_skip(trained)} ({how}), generating at {fmt_skip(value)}",
            )
        )

    host_warnings, te_ignored = _host_key_warnings(report, host)
    sdxl = target == FAMILY_SDXL
    for encoder in (name for name in ENCODER_LAYERS if name in report.te_modules):  # CLIP-L first
        if te_ignored:
            continue  # a text-encoder part the host drops cannot lose layers: saying so would mislead
        if encoder == "clip_g":
            warning = _skipped_layers_warning(report, encoder, value_g, "clip skip G")
        else:
            warning = _skipped_layers_warning(report, encoder, value, "clip skip L" if sdxl else "clip skip")
        if warning:
            found.append(warning)
    return found + host_warnings


def _weights_only_refusal(report: FileReport, host: str, version) -> CompatWarning | None:
    """torch >= 2.6 loads with weights_only=True unless told otherwise: the hosts' embedding
    loaders (plain torch.load) and A1111's LoRA loader then refuse e.g. nn.ParameterDict;
    Forge reads LoRA .pt files with its own unpickler; reForge's LoRA loader asks for weights_only
    at any torch (``ldm_patched/modules/utils.py:83`` ``load_torch_file(safe_load=True)``, called by
    ``extensions-builtin/Lora/networks.py:21``).  reForge keeps A1111's ``modules/safe.py`` but no
    longer puts it in place of ``torch.load`` (3b56b268 ``safe.py:194``), so A1111's refusals are not its."""
    if host in ("reforge", "forge-classic") and report.kind != KIND_EMBEDDING and report.needs_full_unpickler:
        return CompatWarning(CODE_HOST_CANNOT_LOAD, (
            f"{what_it_is(report)}; {HOST_LABELS[host]} will not load it: its LoRA loader reads .pt files with torch's weights-only "
            f"loader, which refuses {report.needs_full_unpickler}; re-save the file as .safetensors"))
    if not (report.needs_full_unpickler and version and tuple(version) >= (2, 6)):
        return None
    if report.kind != KIND_EMBEDDING and host != "a1111":
        return None
    who = HOST_LABELS.get(host, host)
    return CompatWarning(CODE_HOST_CANNOT_LOAD, (
        f"{what_it_is(report)}; {who} will not load it: this WebUI runs torch {version[0]}.{version[1]}, whose torch.load "
        f"refuses {report.needs_full_unpickler} by default (weights_only, since torch 2.6); re-save the file as .safetensors"))


def _article(word: str) -> str:
    return "an" if word.startswith("SD") or word[:1] in "AEIOUaeiou" else "a"


def what_it_is(report: FileReport) -> str:
    """'an SD1 embedding', 'a Flux LoRA', 'an SDXL LoRA (trained on Pony Diffusion, an SDXL
    model)': what the file is, in the words people use."""
    noun = {KIND_EMBEDDING: "embedding", KIND_LYCORIS: "LyCORIS"}.get(report.kind, "LoRA")
    if report.family == FAMILY_UNKNOWN:
        return f"{_article(noun)} {noun} of unknown model family"
    label = report.family_label
    if report.family in (FAMILY_T5, FAMILY_OPENCLIP_G):
        return f"an embedding for {label}"
    phrase = f"{_article(label)} {label} {noun}"
    derivative = sdxl_derivative(report.trained_on) if report.family == FAMILY_SDXL else None
    if derivative:
        phrase += f" (trained on {derivative}, an SDXL model)"
    return phrase


def _family_mismatch(report: FileReport, target: str) -> CompatWarning | None:
    target_label = FAMILY_LABELS[target]
    if report.family == target:
        return None
    if report.family == FAMILY_UNKNOWN:
        if report.base_model:
            # metadata names a base model we do not know
            return CompatWarning(CODE_FAMILY_MISMATCH,
                                 f"made for {report.base_model}, the model is {target_label}: it will not load as intended")
        return None
    what = what_it_is(report)
    if report.kind != KIND_EMBEDDING:
        fit = "its weights do not fit and it will not load as intended" if report.family in SD_FAMILIES else "it will not load as intended"
        return CompatWarning(CODE_FAMILY_MISMATCH, f"{what}, the model is {target_label}: {fit}")
    if report.family == FAMILY_SD3 and target == FAMILY_SDXL:
        # SD3's clip_l + clip_g add up to SDXL's 2048: the host takes them, T5 aside
        return CompatWarning(CODE_FAMILY_MISMATCH, f"{what}: on SDXL the WebUI uses its clip_l/clip_g vectors, which were trained "
                                                   "for SD3 (next to a T5 encoder), not for SDXL")
    return CompatWarning(CODE_FAMILY_MISMATCH,
                         f"{what}: on {target_label} the WebUI skips it and its name stays in the prompt as literal text")


def _host_key_warnings(report: FileReport, host: str) -> tuple[list[CompatWarning], bool]:
    """Warnings about text-encoder keys the host drops, and whether it drops all of them."""
    found = []
    styles = report.te_key_styles
    foreign = styles.get("diffusers", 0) + styles.get("comfy", 0)
    total = sum(styles.values())
    if host == "a1111" and foreign:
        if foreign == total:
            message = (f"A1111 ignores this file's text-encoder part ({foreign} modules named the diffusers/PEFT way, "
                       "text_encoder.text_model..., which A1111 does not map); Forge applies it")
        else:
            message = (f"A1111 ignores {foreign} of its {total} text-encoder modules (named the diffusers/PEFT way, "
                       "text_encoder.text_model..., which A1111 does not map); Forge applies them")
        found.append(CompatWarning(CODE_TE_KEYS_IGNORED, message))
        return found, foreign == total
    if host == "forge" and report.family == FAMILY_SD2 and 23 in report.te_modules.get("clip_h", {}):
        found.append(
            CompatWarning(
                CODE_TE_KEYS_IGNORED,
                "Forge loads SD2's encoder with 23 layers (0-22): the modules on layer 23 are not applied",
            )
        )
    return found, False
