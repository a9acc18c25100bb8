"""Analysis of one LoRA / LyCORIS / textual-inversion file into a FileReport.

Safetensors: the header only (plus a few raw tensors for the zero test). Torch pickles:
through the restricted unpickler (``pickles``), which builds no tensors. Images: the
embedding in a PNG text chunk or hidden in the pixels (``images``). Key names are parsed
by ``keys``, families told by ``families``, embedding layouts by ``embeddings``, the
trained clip skip by ``trained``.
"""

from __future__ import annotations

import os
from collections import Counter
from operator import attrgetter, itemgetter

from . import embeddings, families, images, pickles, readers, torchfile, trained
from . import keys as keys_module
from .report import (
    ENCODER_LAYERS,
    FAMILY_LABELS,
    FAMILY_SD2,
    FAMILY_UNKNOWN,
    KIND_EMBEDDING,
    KIND_LORA,
    KIND_LYCORIS,
    KIND_UNKNOWN,
    SD_FAMILIES,
    FileReport,
    UnreadableFile,
)

SAFETENSORS_EXTS = (".safetensors",)
PICKLE_EXTS = (".pt", ".pth", ".ckpt", ".bin")
IMAGE_EXTS = images.IMAGE_EXTS
MODEL_EXTS = SAFETENSORS_EXTS + PICKLE_EXTS + IMAGE_EXTS
_MAX_EMBEDDING_TENSORS = 8  # OneTrainer's largest: four encoders, each with an *_out vector

_ALGO_MARKERS = (
    # (tensor name inside a module, format id); first match wins
    ("hada_w1_a", "lycoris-loha"),
    ("lokr_w1", "lycoris-lokr"),
    ("lokr_w1_a", "lycoris-lokr"),
    ("on_input", "lycoris-ia3"),
    ("oft_blocks", "lycoris-oft"),
    ("oft_diag", "lycoris-oft"),
    ("a1", "lycoris-glora"),
    ("diff", "lycoris-full"),
)


def analyze_path(path: str) -> FileReport:
    """Analyse one file. Never raises for a bad file: problems end up in
    ``report.error``."""
    report = FileReport(path=path)
    try:
        lower = path.lower()
        if lower.endswith(SAFETENSORS_EXTS):
            with readers.SafetensorsFile(path) as source:
                _analyze_safetensors(report, source)
        elif lower.endswith(PICKLE_EXTS):
            torch_file, handle = torchfile.open_torch_file(path)
            with handle:
                _analyze_torch(report, torch_file, os.path.splitext(lower)[1])
        elif lower.endswith(IMAGE_EXTS):
            _analyze_image(report, path)
        else:
            raise UnreadableFile("unsupported file type")
    except UnreadableFile as exc:
        report.error = str(exc)
    except OSError as exc:
        report.error = f"cannot read: {exc.strerror or exc}"
    except (MemoryError, RecursionError) as exc:
        report.error = f"cannot read: {type(exc).__name__}"
    except Exception as exc:  # one odd file must never hide the others
        report.error = f"cannot analyse: {type(exc).__name__}: {exc}"
    if report.error:
        report.kind = KIND_UNKNOWN
    return report


class _ShapeOnly:
    """Lets embedding detection run on safetensors headers without reading tensor data."""

    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = shape


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _apply_layout(report: FileReport, layout: embeddings.EmbeddingLayout) -> None:
    report.kind = KIND_EMBEDDING
    report.format = layout.format
    report.family, report.family_source = layout.family, "weights"
    report.vectors = layout.vectors
    report.notes += layout.notes
    if layout.refused:
        report.host_refuses["*"] = layout.refused
    if report.embedding_name is None:
        report.embedding_name = _stem(report.path)


def _analyze_safetensors(report: FileReport, source: readers.SafetensorsFile) -> None:
    keys = source.keys()
    if 0 < len(keys) <= _MAX_EMBEDDING_TENSORS:
        layout = embeddings.recognise({k: _ShapeOnly(source.shape(k)) for k in keys}, ".safetensors")
        if layout is not None:
            _apply_layout(report, layout)
            meta_family, report.base_model = families.family_from_metadata(source.metadata)
            if report.family == FAMILY_UNKNOWN and meta_family != FAMILY_UNKNOWN:
                report.family, report.family_source = meta_family, "metadata"
            trained.apply_embedding_metadata(report, source.metadata)
            return
    _analyze_lora(report, source, source.metadata)


class _TorchTensors:
    """keys / shape / is_all_zero over the tensors of an unpickled state dict."""

    def __init__(self, torch_file: torchfile.TorchFile, tensors: dict):
        self._file, self.tensors = torch_file, tensors

    def keys(self):
        return self.tensors.keys()

    def shape(self, name: str):
        value = self.tensors.get(name)
        return tuple(value.shape) if value is not None else None

    def is_all_zero(self, name: str) -> bool:
        return self._file.is_all_zero(self.tensors[name])


def _analyze_torch(report: FileReport, torch_file: torchfile.TorchFile, ext: str) -> None:
    if torch_file.a1111_refusal:
        report.host_refuses["a1111"] = torch_file.a1111_refusal
    report.needs_full_unpickler = torch_file.needs_full_unpickler
    data = torch_file.root
    layout = embeddings.recognise(data, ext)
    if layout is not None:
        _apply_layout(report, layout)
        return
    if not isinstance(data, dict):
        raise UnreadableFile(f"a torch file holding a {type(data).__name__}, not a dictionary of tensors")
    if "state_dict" in data and isinstance(data["state_dict"], dict) and len(data) < 8:
        data = data["state_dict"]
    tensors = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, (pickles.TensorRef, pickles.ArrayTensor))}
    _analyze_lora(report, _TorchTensors(torch_file, tensors), {})


def _analyze_image(report: FileReport, path: str) -> None:
    if images.is_preview_name(path):
        report.notes.append("a preview image (name.preview.*): the WebUI never reads it as an embedding")
        return
    data, where = images.image_embedding(path)
    if data is None:
        report.notes.append("an image without an embedding in it (a preview): the WebUI skips it")
        return
    layout = embeddings.recognise(data, "image")
    if layout is None:
        raise UnreadableFile("the image carries embedding data, but no embedding the WebUI could load")
    name = data.get("name") if isinstance(data, dict) else None
    report.embedding_name = name if isinstance(name, str) and name else _stem(path)
    _apply_layout(report, layout)
    if where == "text-chunk" and not isinstance(data, dict):
        report.host_refuses["*"] = "its text chunk holds a torch file; the WebUI decodes only JSON there"
    report.format = "png-embedded" if where == "text-chunk" else "image-embedded"


def _analyze_lora(report: FileReport, source, metadata: dict) -> None:
    keys = source.keys()
    # Per-key Python work is kept to C-level map/set operations: a Python loop
    # doing real work on hundreds of keys per file would cost more than the JSON
    # parse of the header.
    key_info = keys_module.split_keys(keys)
    tensor_parts = set(map(itemgetter(1), key_info))
    hints = set(filter(None, map(itemgetter(2), key_info)))
    te_modules = list(set(filter(None, map(itemgetter(0), key_info))))
    # diffusers/PEFT files name every key from a few roots; kohya files never do
    diffusers_names = any(k.partition(".")[0] in keys_module.DIFFUSERS_ROOTS for k in keys_module.first_and_last(keys))
    if diffusers_names:
        found: dict = {}
        for key in keys:
            if key.startswith(("text_encoder", "text_encoders.")):
                keys_module.collect_te_key(key, found)
        te_modules += found.values()

    report.output_name = metadata.get("ss_output_name") or None
    report.trained_on = families.trained_on(metadata)
    meta_family, report.base_model = families.family_from_metadata(metadata)
    fmt = _detect_format(tensor_parts, diffusers_names, metadata)
    if fmt is None:
        report.kind = KIND_UNKNOWN
        what, certain = _not_a_network(keys, hints)
        report.notes.append(what)
        if certain:  # a whole model, not an unknown network format: no host applies it as a LoRA
            report.host_refuses["*"] = what
        return
    report.format = fmt
    report.kind = KIND_LYCORIS if fmt.startswith("lycoris-") else KIND_LORA
    report.family, report.family_source = families.family_from_weights(source, keys, te_modules, meta_family, hints)
    if report.family not in SD_FAMILIES and report.family != FAMILY_UNKNOWN:
        return  # clip skip means nothing for this file's model: no layer or skip analysis

    # Tallied once in C; the checks below then look at distinct (slot, layer) pairs only.
    module_slot_layers = list(map(attrgetter("slot_layer"), te_modules))
    counts = Counter(module_slot_layers)
    deepest = min(max((layer for _slot, layer in counts), default=0), keys_module.MAX_TE_LAYERS)
    slots_by_encoder: dict[str, list] = {}
    for slot in {slot for slot, _layer in counts}:
        slots_by_encoder.setdefault(_encoder_name(slot, report.family, deepest), []).append(slot)
    # A layer an encoder does not have (CLIP-L's 12th, bigG's 32nd) is no layer of it: a
    # damaged or synthetic file, maybe with thousands of them.
    depth_of = {slot: ENCODER_LAYERS.get(encoder, keys_module.MAX_TE_LAYERS)
                for encoder, slots in slots_by_encoder.items() for slot in slots}
    if any(layer >= depth_of[slot] for slot, layer in counts):
        kept = [m for m in te_modules if m.layer < depth_of[m.encoder_slot]]
        report.notes.append(f"{len(te_modules) - len(kept)} text-encoder modules name layers their encoder does not have: "
                            "ignored (a damaged or synthetic file?)")
        te_modules = kept
        module_slot_layers = list(map(attrgetter("slot_layer"), te_modules))
        counts = Counter(module_slot_layers)
    report.te_modules = {}
    per_encoder = {}
    for encoder, slots in slots_by_encoder.items():
        # comprehensions, not a loop with calls: SDXL files have 44 layers to tally
        layer_counts = {layer: count for (slot, layer), count in counts.items() if slot in slots}
        if len(slots) > 1:  # one encoder under two key spellings: add them up
            layer_counts = dict(Counter(layer for (slot, layer) in module_slot_layers if slot in slots))
        report.te_modules[encoder] = layer_counts
        per_encoder[encoder] = trained.LayerModules(te_modules, module_slot_layers, slots, layer_counts)
    if diffusers_names:
        report.te_key_styles = dict(Counter(map(attrgetter("style"), te_modules)))
    elif te_modules:
        report.te_key_styles = {"kohya": len(te_modules)}

    zero_layers = {}
    try:
        for encoder, layers in per_encoder.items():
            zero_layers[encoder] = trained.trailing_zero_layers(source, layers)
    except readers.ZeroTestBudgetExceeded:
        report.notes.append("tensors too large to test for zero layers; trained skip not inferred")
    report.te_zero_layers = {enc: z for enc, z in zero_layers.items() if z}

    trained.apply_trained_skip(report, metadata, report.te_modules, zero_layers)


def _not_a_network(keys, hints: set) -> tuple[str, bool]:
    """What a file without LoRA tensors is, and whether that is certain."""
    family = families.family_from_hints(hints)
    if any(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")) for k in keys):
        return "a full Stable Diffusion checkpoint, not a LoRA or embedding (it belongs in models/Stable-diffusion)", True
    if family:
        return f"no LoRA tensors: a {FAMILY_LABELS.get(family, family)} model file, not a LoRA", True
    return "no LoRA, LyCORIS or embedding tensors recognised", False


def _detect_format(tensor_parts: set, diffusers_names: bool, metadata: dict) -> str | None:
    for marker, fmt in _ALGO_MARKERS:
        if marker in tensor_parts:
            return fmt
    lycoris_module = metadata.get("ss_network_module", "").startswith("lycoris")
    if "lora_up" in tensor_parts or "lora_down" in tensor_parts:
        return "lycoris-locon" if lycoris_module else "kohya"
    if not tensor_parts.isdisjoint(("lora_A", "lora_B", "up", "down")):
        if diffusers_names:
            return "diffusers-peft"
        return "lycoris-locon" if lycoris_module else "kohya"
    return None


def _encoder_name(slot: str, family: str, deepest: int = 0) -> str:
    if slot == "te":
        # an unknown family's single encoder with layers past CLIP-L's 12 can only be SD2's
        return "clip_h" if family == FAMILY_SD2 or (family == FAMILY_UNKNOWN and deepest >= 12) else "clip_l"
    return {"te1": "clip_l", "te2": "clip_g"}.get(slot, slot)
