"""Analysis of one LoRA / LyCORIS / textual-inversion file into a FileReport.

Reads safetensors headers only (plus a few raw tensors for the zero test), pickles only
through ``torch.load(weights_only=True)``, PNG embeddings from their text chunk.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from itertools import compress
from operator import attrgetter, itemgetter

from . import readers
from .report import (
    FAMILY_SD1,
    FAMILY_SD2,
    FAMILY_SDXL,
    FAMILY_UNKNOWN,
    KIND_EMBEDDING,
    KIND_LORA,
    KIND_LYCORIS,
    KIND_UNKNOWN,
    FileReport,
    UnreadableFile,
)

SAFETENSORS_EXTS = (".safetensors",)
PICKLE_EXTS = (".pt", ".pth", ".ckpt", ".bin")
IMAGE_EXTS = (".png",)
MODEL_EXTS = SAFETENSORS_EXTS + PICKLE_EXTS + IMAGE_EXTS

# Text-encoder key forms. Slot "te" is the single encoder of SD1/SD2 (CLIP-L if
# another clue says SDXL), "te1"/"te2" are SDXL's CLIP-L/bigG.
_DIFFUSERS_TE = re.compile(r"^text_encoder(_2)?\.(?:text_model\.)?encoder\.layers\.(\d+)\.(.+)$")
_COMFY_TE = re.compile(r"^text_encoders\.(clip_[lgh])\.transformer\.text_model\.encoder\.layers\.(\d+)\.(.+)$")
_KOHYA_TE_PREFIXES = ("lora_te", "lycoris_te")
_KOHYA_TE_MODULE = re.compile(
    r"(?:lora|lycoris)_te([12]?)_(?:text_model_encoder_layers|model_transformer_resblocks)"
    r"_(\d+)_"
)
_KOHYA_SLOTS = {"": "te", "1": "te1", "2": "te2"}
# First key segments of diffusers/PEFT/ComfyUI-style files.
_DIFFUSERS_ROOTS = frozenset({"unet", "text_encoder", "text_encoder_2", "text_encoders", "base_model"})
# Module base name -> _TeModule (None for non-TE modules), shared by all files: kohya
# files repeat the same few hundred module names, so parsing each name once pays off.
_kohya_base_info: dict[str, _TeModule | None] = {}
_KOHYA_BASE_INFO_LIMIT = 100_000
# Key -> (kohya TE module or None, tensor name), shared by all files for the same reason.
_key_info: dict[str, tuple[_TeModule | None, str]] = {}
_KEY_INFO_LIMIT = 300_000
# Trailing key parts that are tensor names, not module names (diffusers/PEFT forms).
_WEIGHT_PARTS = frozenset(
    {
        "lora_A",
        "lora_B",
        "lora_up",
        "lora_down",
        "lora_mid",
        "lora",
        "lora_linear_layer",
        "up",
        "down",
        "weight",
        "bias",
        "alpha",
        "lora_magnitude_vector",
        "dora_scale",
        "hada_w1_a",
        "hada_w1_b",
        "hada_w2_a",
        "hada_w2_b",
        "hada_t1",
        "hada_t2",
        "lokr_w1",
        "lokr_w1_a",
        "lokr_w1_b",
        "lokr_w2",
        "lokr_w2_a",
        "lokr_w2_b",
        "lokr_t2",
        "on_input",
        "oft_blocks",
        "oft_diag",
        "rescale",
        "a1",
        "a2",
        "b1",
        "b2",
        "diff",
        "diff_b",
        "w_norm",
        "b_norm",
    }
)

# When is a module's delta exactly zero? Per algorithm, a list of additive terms; a
# term is zero when one of its multiplied factors is all zero. Each factor lists the
# tensor names it may be stored under; the factor trainers initialise at zero comes
# first, so an untrained (zero) module is recognised after one read.
_LORA_UP = ("lora_up.weight", "lora_B.weight", "lora.up.weight",
            "lora_linear_layer.up.weight", "up.weight")  # fmt: skip
_LORA_DOWN = ("lora_down.weight", "lora_A.weight", "lora.down.weight",
              "lora_linear_layer.down.weight", "down.weight")  # fmt: skip
_LOKR_FACTORS = [("lokr_w2", "lokr_w2_a"), ("lokr_w2_b",), ("lokr_w1", "lokr_w1_a"),
                 ("lokr_w1_b",)]  # fmt: skip
_ZERO_TERMS = (
    ("lora", [[_LORA_UP, _LORA_DOWN]]),
    ("loha", [[("hada_w2_a",), ("hada_w2_b",), ("hada_w1_a",), ("hada_w1_b",)]]),
    ("lokr", [_LOKR_FACTORS]),
    ("ia3", [[("weight",)]]),
    ("oft", [[("oft_blocks", "oft_diag")]]),
    ("glora", [[("a2.weight",), ("a1.weight",)], [("b2.weight",), ("b1.weight",)]]),
    ("full", [[("diff",)], [("diff_b",)]]),
)

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


class _TeModule:
    """A text-encoder module of one file; kohya ones are shared between files."""

    __slots__ = ("encoder_slot", "layer", "prefix", "slot_layer", "style")

    def __init__(self, encoder_slot, layer, prefix, style):
        self.encoder_slot = encoder_slot
        self.layer = layer
        self.slot_layer = (encoder_slot, layer)
        self.prefix = prefix  # this module's tensor names are appended to it
        self.style = style


def _split_diffusers(rest: str) -> tuple[str, str]:
    """Module name used for counting, and the key part its tensor names are appended to:
    ('self_attn.to_q', 'self_attn.to_q_lora.') for 'self_attn.to_q_lora.up.weight'."""
    parts = rest.split(".")
    module_parts = []
    for part in parts:
        if part in _WEIGHT_PARTS:
            break
        module_parts.append(part)
    module = ".".join(p[:-5] if p.endswith("_lora") else p for p in module_parts)
    return module, ".".join(module_parts) + "."


def analyze_path(path: str) -> FileReport:
    """Analyse one file. Never raises for a bad file: problems end up in
    ``report.error``."""
    report = FileReport(path=path)
    try:
        lower = path.lower()
        if lower.endswith(SAFETENSORS_EXTS):
            with readers.SafetensorsFile(path) as source:
                _analyze_tensors(report, source, source.metadata, container="safetensors")
        elif lower.endswith(PICKLE_EXTS):
            data = readers.load_pickled_file(path, os.path.getsize(path))
            _analyze_pickled(report, data, container=os.path.splitext(lower)[1])
        elif lower.endswith(IMAGE_EXTS):
            text = readers.find_png_ti_text(path)
            if text is None:
                report.notes.append("no sd-ti-embedding text chunk (embeddings hidden in the pixels are not inspected)")
                return report
            data = readers.decode_png_ti_payload(text)
            if not isinstance(data, dict) or not _analyze_embedding_dict(report, data):
                raise UnreadableFile("sd-ti-embedding chunk holds no embedding")
            report.format = "png-embedded"
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


def _analyze_pickled(report: FileReport, data, container: str) -> None:
    if not isinstance(data, dict):
        raise UnreadableFile(f"unexpected content: a {type(data).__name__}, not a dict of tensors")
    if "state_dict" in data and isinstance(data["state_dict"], dict) and len(data) < 8:
        data = data["state_dict"]
    if _analyze_embedding_dict(report, data):
        if report.format is None:
            report.format = "diffusers-bin" if container == ".bin" else "a1111-pt"
        return
    tensors = {k: v for k, v in data.items() if isinstance(k, str) and hasattr(v, "shape")}
    _analyze_tensors(report, readers.InMemoryTensors(tensors), {}, container=container)


def _width(value) -> int | None:
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    return int(shape[-1])


def _vector_count(value) -> int:
    shape = getattr(value, "shape", None)
    if shape is None:
        return 0
    return 1 if len(shape) == 1 else int(shape[0])


def _family_from_width(width: int | None) -> str:
    return {768: FAMILY_SD1, 1024: FAMILY_SD2}.get(width, FAMILY_UNKNOWN)


def _analyze_embedding_dict(report: FileReport, data: dict) -> bool:
    """Recognise the textual-inversion layouts the hosts load; fill report; False if
    none."""
    if "string_to_param" in data and isinstance(data["string_to_param"], dict):
        params = list(data["string_to_param"].values())
        if len(params) != 1:
            raise UnreadableFile(f"embedding has {len(params)} terms in string_to_param, not 1")
        vec = params[0]
        report.kind = KIND_EMBEDDING
        report.format = report.format or "a1111-pt"
        if isinstance(vec, dict) and "clip_l" in vec and "clip_g" in vec:
            report.family, report.family_source = FAMILY_SDXL, "weights"
            report.vectors = _vector_count(vec["clip_g"])
        else:
            report.family, report.family_source = (
                _family_from_width(_width(vec)),
                "weights",
            )
            report.vectors = _vector_count(vec)
        return True
    tensors = {k: v for k, v in data.items() if hasattr(v, "shape")}
    if "clip_l" in tensors and "clip_g" in tensors:
        report.kind = KIND_EMBEDDING
        report.format = report.format or "sdxl-clip-l-g"
        report.family, report.family_source = FAMILY_SDXL, "weights"
        report.vectors = _vector_count(tensors["clip_g"])
        return True
    if len(tensors) == 1 and len(data) == 1:
        name, vec = next(iter(tensors.items()))
        report.kind = KIND_EMBEDDING
        report.format = report.format or ("emb-params" if name == "emb_params" else "diffusers-bin")
        report.family, report.family_source = _family_from_width(_width(vec)), "weights"
        report.vectors = _vector_count(vec)
        return True
    return False


class _ShapeOnly:
    """Lets embedding detection run on safetensors headers without reading tensor data."""

    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = shape


def _analyze_tensors(report: FileReport, source, metadata: dict, container: str) -> None:
    keys = source.keys()
    if container == "safetensors" and 0 < len(keys) <= 2:
        shapes = {k: _ShapeOnly(source.shape(k)) for k in keys}
        if _analyze_embedding_dict(report, shapes):
            _apply_embedding_metadata(report, metadata)
            return

    # Per-key Python work is kept to C-level map/set operations: a Python loop
    # doing real work on hundreds of keys per file would cost more than the JSON
    # parse of the header.
    key_info = _split_keys(keys)
    tensor_parts = set(map(itemgetter(1), key_info))
    te_modules = list(set(filter(None, map(itemgetter(0), key_info))))
    # diffusers/PEFT files name every key from a few roots; kohya files never do
    diffusers_names = any(k.partition(".")[0] in _DIFFUSERS_ROOTS for k in _first_and_last(keys))
    if diffusers_names:
        found: dict[str, _TeModule] = {}
        for key in keys:
            if key.startswith(("text_encoder", "text_encoders.")):
                _collect_te_key(key, found)
        te_modules += found.values()

    report.output_name = metadata.get("ss_output_name") or None
    fmt = _detect_format(tensor_parts, diffusers_names, metadata)
    if fmt is None:
        report.kind = KIND_UNKNOWN
        report.notes.append("no LoRA, LyCORIS or embedding tensors recognised")
        return
    report.format = fmt
    report.kind = KIND_LYCORIS if fmt.startswith("lycoris-") else KIND_LORA

    meta_family, report.base_model = _family_from_metadata(metadata)
    report.family, report.family_source = _family_from_weights(source, keys, te_modules, meta_family)

    module_slot_layers = list(map(attrgetter("slot_layer"), te_modules))
    counts = Counter(module_slot_layers)
    slots_by_encoder: dict[str, list] = {}
    for slot in {slot for slot, _layer in counts}:
        slots_by_encoder.setdefault(_encoder_name(slot, report.family), []).append(slot)
    report.te_modules = {}
    per_encoder = {}
    for encoder, slots in slots_by_encoder.items():
        # comprehensions, not a loop with calls: SDXL files have 44 layers to tally
        layer_counts = {layer: count for (slot, layer), count in counts.items() if slot in slots}
        if len(slots) > 1:  # one encoder under two key spellings: add them up
            layer_counts = dict(Counter(layer for (slot, layer) in module_slot_layers if slot in slots))
        report.te_modules[encoder] = layer_counts
        per_encoder[encoder] = _LayerModules(te_modules, module_slot_layers, slots, layer_counts)
    if diffusers_names:
        report.te_key_styles = dict(Counter(map(attrgetter("style"), te_modules)))
    elif te_modules:
        report.te_key_styles = {"kohya": len(te_modules)}

    zero_layers = {}
    try:
        for encoder, layers in per_encoder.items():
            zero_layers[encoder] = _trailing_zero_layers(source, layers)
    except readers.ZeroTestBudgetExceeded:
        report.notes.append("tensors too large to test for zero layers; trained skip not inferred")
    report.te_zero_layers = {enc: z for enc, z in zero_layers.items() if z}

    _apply_trained_skip(report, metadata, report.te_modules, zero_layers)


def _collect_te_key(key: str, te_modules: dict) -> None:
    """Diffusers/PEFT and ComfyUI-style TE keys (kohya ones come from _split_keys)."""
    match = _DIFFUSERS_TE.match(key)
    if match:
        slot = "te2" if match.group(1) else "te"
        style = "diffusers"
        layer, rest = match.group(2), match.group(3)
    else:
        match = _COMFY_TE.match(key)
        if not match:
            return
        slot = {"clip_l": "clip_l", "clip_g": "clip_g", "clip_h": "clip_h"}[match.group(1)]
        style = "comfy"
        layer, rest = match.group(2), match.group(3)
    module, tensor_prefix = _split_diffusers(rest)
    head = key[: len(key) - len(rest)]
    if head + module not in te_modules:
        te_modules[head + module] = _TeModule(slot, int(layer), head + tensor_prefix, style)


def _tensor_part(suffix: str) -> str:
    """The tensor's name inside its module: 'lora_up' for suffix 'lora_up.weight'."""
    head, _, tail = suffix.rpartition(".")
    if tail in ("weight", "bias") and head:
        return head.rpartition(".")[2]
    return tail


def _first_and_last(keys) -> tuple:
    if not keys:
        return ()
    iterator = iter(keys)
    first = next(iterator)
    return (first, next(reversed(keys), first)) if hasattr(keys, "__reversed__") else (first,)


def _split_keys(keys) -> list:
    """(kohya TE module or None, tensor name) per key, e.g. (module, 'lora_up') for
    'lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight'.

    Memoised across files: LoRA files repeat the same key names, and a dict lookup is
    cheaper than splitting and matching each key again.
    """
    memo = _key_info
    infos = list(map(memo.get, keys))
    if None in infos:
        if len(memo) > _KEY_INFO_LIMIT:
            memo.clear()  # bounded memory; entries are rebuilt on demand
        for index, key in enumerate(keys):  # same order as the map above
            if infos[index] is None:
                base, _, suffix = key.partition(".")
                infos[index] = memo[key] = (
                    _kohya_te_module(base),
                    _tensor_part(suffix),
                )
    return infos


def _kohya_te_module(base: str) -> _TeModule | None:
    """One shared _TeModule per kohya TE module name (so sets dedupe them by identity)."""
    module = _kohya_base_info.get(base, False)
    if module is False:
        match = _KOHYA_TE_MODULE.match(base) if base.startswith(_KOHYA_TE_PREFIXES) else None
        module = _TeModule(_KOHYA_SLOTS[match.group(1)], int(match.group(2)), base + ".", "kohya") if match else None
        if len(_kohya_base_info) < _KOHYA_BASE_INFO_LIMIT:
            _kohya_base_info[base] = module
    return module


class _LayerModules:
    """The modules of one encoder slot, grouped by layer on demand (only the few trailing
    layers are ever asked for)."""

    def __init__(self, modules: list, module_slot_layers: list, slots: list, layers):
        self._modules = modules
        self._slot_layers = module_slot_layers
        self._slots = slots
        self.layers = sorted(layers, reverse=True)

    def modules_on(self, layer: int) -> list:
        found = []
        for slot in self._slots:
            # C-level filtering: this runs for every file on its last layers
            key = (slot, layer)
            found += compress(self._modules, map(key.__eq__, self._slot_layers))
        return found


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


def _context_width(source, keys) -> int | None:
    """Input width of a UNet cross-attention to_k/to_v: the text conditioning width."""
    all_keys = source.keys()
    for key in keys:
        for anchor in ("attn2_to_k.", "attn2.to_k.", "attn2_to_v.", "attn2.to_v."):
            pos = key.find(anchor)
            if pos < 0:
                continue
            prefix = key[: pos + len(anchor)]
            for down in (
                "lora_down.weight",
                "lora_A.weight",
                "hada_w1_b",
                "down.weight",
            ):
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


def _te_width(source, te_modules: list) -> int | None:
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
            if all(shape for shape in shapes) and all(len(x) >= 2 or len(x) == 1 for x in shapes):
                try:
                    return int(width_of(shapes))
                except IndexError:
                    continue
    return None


def _family_from_weights(source, keys, te_modules: list, meta_family: str):
    """Family from the text-encoder slots and width; else the metadata's declared base
    model; else the UNet's context width or SGM-style UNet names. Costly clues last."""
    slots = set(map(attrgetter("encoder_slot"), te_modules))
    if not slots.isdisjoint(("te1", "te2", "clip_g")):
        return FAMILY_SDXL, "weights"
    by_te = {768: FAMILY_SD1, 1024: FAMILY_SD2}.get(_te_width(source, te_modules))
    if by_te:
        return by_te, "weights"
    if meta_family != FAMILY_UNKNOWN:
        return meta_family, "metadata"
    by_context = {768: FAMILY_SD1, 1024: FAMILY_SD2, 2048: FAMILY_SDXL}.get(_context_width(source, keys))
    if by_context:
        return by_context, "weights"
    if "clip_h" in slots:
        return FAMILY_SD2, "weights"
    if any(k.startswith(("lora_unet_input_blocks", "lora_unet_output_blocks")) for k in keys):
        return FAMILY_SDXL, "weights"
    return FAMILY_UNKNOWN, None


def _family_from_metadata(metadata: dict) -> tuple[str, str | None]:
    base = metadata.get("ss_base_model_version", "")
    arch = metadata.get("modelspec.architecture", "")
    base_model = base or arch or None
    if base.startswith("sdxl"):
        return FAMILY_SDXL, base_model
    if base.startswith("sd_v2"):
        return FAMILY_SD2, base_model
    if base.startswith("sd_v1"):
        return FAMILY_SD1, base_model
    if arch.startswith("stable-diffusion-xl"):
        return FAMILY_SDXL, base_model
    if arch.startswith("stable-diffusion-v2"):
        return FAMILY_SD2, base_model
    if arch.startswith("stable-diffusion-v1"):
        return FAMILY_SD1, base_model
    if not base and not arch and metadata.get("ss_v2") == "True":
        return FAMILY_SD2, "ss_v2=True"
    return FAMILY_UNKNOWN, base_model


def _encoder_name(slot: str, family: str) -> str:
    if slot == "te":
        return "clip_h" if family == FAMILY_SD2 else "clip_l"
    return {"te1": "clip_l", "te2": "clip_g"}.get(slot, slot)


def _first_present(prefix: str, alternatives, keys) -> str | None:
    for name in alternatives:
        key = prefix + name
        if key in keys:
            return key
    return None


def _module_is_zero(source, module: _TeModule) -> bool:
    keys = source.keys()
    prefix = module.prefix
    for _algo, terms in _ZERO_TERMS:
        found_any = False
        all_terms_zero = True
        for term in terms:
            term_zero = False
            term_found = False
            for alternatives in term:
                key = _first_present(prefix, alternatives, keys)
                if key is None:
                    continue
                term_found = True
                if source.is_all_zero(key):
                    term_zero = True
                    break
            found_any = found_any or term_found
            if term_found and not term_zero:
                all_terms_zero = False
        if found_any:
            return all_terms_zero
    return False  # unknown tensor layout: do not claim it is zero


def _trailing_zero_layers(source, layers: _LayerModules) -> list[int]:
    """Layers, from the top, whose modules are all exactly zero; stops at the first
    layer with any non-zero module. Empty when every layer is zero (nothing was
    trained)."""
    zero = []
    for layer in layers.layers:
        if all(_module_is_zero(source, m) for m in layers.modules_on(layer)):
            zero.append(layer)
        else:
            return sorted(zero)
    return []


def _parse_skip(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not 1 <= number <= 32:
        return None
    return int(number) if number.is_integer() else number


def _apply_embedding_metadata(report: FileReport, metadata: dict) -> None:
    meta_family, base_model = _family_from_metadata(metadata)
    report.base_model = base_model
    if report.family == FAMILY_UNKNOWN and meta_family != FAMILY_UNKNOWN:
        report.family, report.family_source = meta_family, "metadata"
    layer = _parse_skip(metadata.get("modelspec.encoder_layer"))
    if layer is not None:
        _set_recorded_skip(
            report,
            layer,
            f"modelspec.encoder_layer={metadata['modelspec.encoder_layer']}",
        )


def _set_recorded_skip(report: FileReport, kohya_value: float, detail: str) -> None:
    if report.family == FAMILY_SDXL:
        report.notes.append(f"{detail} is recorded, but kohya ignores clip skip when training SDXL: it had no effect on this file")
        return
    value = kohya_value
    if report.family == FAMILY_SD2:
        # kohya trains SD2 on the 23-layer HF encoder; its k is k+1 of the 24
        # layers here.
        value = kohya_value + 1
        detail += " (kohya counts SD2's 23-layer encoder; that is clip skip " + _fmt(value) + ")"
    report.trained_clip_skip = value
    report.trained_clip_skip_source = "metadata"
    report.trained_clip_skip_detail = detail


def _apply_trained_skip(report, metadata, per_encoder, zero_layers) -> None:
    for meta_key in ("ss_clip_skip", "modelspec.encoder_layer"):
        value = _parse_skip(metadata.get(meta_key))
        if value is not None:
            _set_recorded_skip(report, value, f"{meta_key}={metadata[meta_key]}")
            return
    if report.family in (FAMILY_SD1, FAMILY_SD2):
        encoder = "clip_l" if report.family == FAMILY_SD1 else "clip_h"
        layers = per_encoder.get(encoder, {})
        # trained depth: 12 for CLIP-L; 23 for kohya SD2 files (24 if layer 23
        # is present)
        depth = 12 if encoder == "clip_l" else (24 if 23 in layers else 23)
        zeros = zero_layers.get(encoder) or []
        if layers and (depth - 1) in layers and zeros:
            value = (24 - depth) + 1 + len(zeros) if encoder == "clip_h" else 1 + len(zeros)
            report.trained_clip_skip = value
            report.trained_clip_skip_source = "weights"
            report.trained_clip_skip_detail = f"inferred from the weights: TE {_layer_list(zeros)} exactly zero"
            return
    if metadata.get("ss_clip_skip") == "None" and report.family in (
        FAMILY_SD1,
        FAMILY_SD2,
    ):
        default = 1 if report.family == FAMILY_SD1 else 2
        report.trained_clip_skip = default
        report.trained_clip_skip_source = "metadata"
        report.trained_clip_skip_detail = "ss_clip_skip=None (kohya's default)"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _layer_list(layers: list[int]) -> str:
    if len(layers) == 1:
        return f"layer {layers[0]} is"
    if layers == list(range(layers[0], layers[-1] + 1)):
        return f"layers {layers[0]}-{layers[-1]} are"
    return "layers " + ", ".join(str(n) for n in layers) + " are"
