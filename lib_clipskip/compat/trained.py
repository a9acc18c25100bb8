"""The clip skip a file was trained at: recorded in its metadata (kohya ``ss_clip_skip``,
ModelSpec ``modelspec.encoder_layer``), or inferred from the weights.

Inference: kohya and LyCORIS initialise a text-encoder module's up-weight (LoHa
``hada_w2_a``, LoKr ``lokr_w2``, ...) at zero, and at clip skip N the encoder's last N-1
layers get no gradient, so their deltas stay exactly zero. Trailing all-zero layers
therefore mean "trained at 1 + their count". The test reads a few raw tensors from the
top layer down and stops at the first non-zero one.
"""

from __future__ import annotations

from itertools import compress

from .report import FAMILY_SD1, FAMILY_SD2, FAMILY_SDXL, FAMILY_UNKNOWN, FileReport

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


class LayerModules:
    """The modules of one encoder slot, grouped by layer on demand: the zero test asks for
    the top layers until one is non-zero. Layers are capped at the deepest CLIP's 32
    (keys.MAX_TE_LAYERS), so even a file of thousands of fake layers costs at most 32
    C-level passes over its modules."""

    def __init__(self, modules: list, module_slot_layers: list, slots: list, layers):
        self._modules = modules
        self._slot_layers = module_slot_layers
        self._slots = slots
        self.layers = sorted(layers, reverse=True)

    def modules_on(self, layer: int) -> list:
        found = []
        for slot in self._slots:
            key = (slot, layer)
            found += compress(self._modules, map(key.__eq__, self._slot_layers))
        return found


def _first_present(prefix: str, alternatives, keys) -> str | None:
    for name in alternatives:
        key = prefix + name
        if key in keys:
            return key
    return None


def _module_is_zero(source, module) -> bool:
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


def trailing_zero_layers(source, layers: LayerModules) -> list[int]:
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


def parse_skip(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not 1 <= number <= 32:
        return None
    return int(number) if number.is_integer() else number


def apply_embedding_metadata(report: FileReport, metadata: dict) -> None:
    layer = parse_skip(metadata.get("modelspec.encoder_layer"))
    if layer is not None:
        set_recorded_skip(report, layer, f"modelspec.encoder_layer={metadata['modelspec.encoder_layer']}")


def set_recorded_skip(report: FileReport, kohya_value: float, detail: str) -> None:
    if report.family == FAMILY_SDXL:
        report.notes.append(f"{detail} is recorded, but kohya ignores clip skip when training SDXL: it had no effect on this file")
        return
    if report.family not in (FAMILY_SD1, FAMILY_SD2, FAMILY_UNKNOWN):
        return  # made for Flux, SD3, ...: a recorded value means nothing there
    value = kohya_value
    if report.family == FAMILY_SD2:
        # kohya trains SD2 on the 23-layer HF encoder; its k is k+1 of the 24
        # layers here.
        value = kohya_value + 1
        detail += " (kohya counts SD2's 23-layer encoder; that is clip skip " + fmt(value) + ")"
    report.trained_clip_skip = value
    report.trained_clip_skip_source = "metadata"
    report.trained_clip_skip_detail = detail


def apply_trained_skip(report, metadata, per_encoder, zero_layers) -> None:
    for meta_key in ("ss_clip_skip", "modelspec.encoder_layer"):
        value = parse_skip(metadata.get(meta_key))
        if value is not None:
            set_recorded_skip(report, value, f"{meta_key}={metadata[meta_key]}")
            return
    if report.family in (FAMILY_SD1, FAMILY_SD2):
        encoder = "clip_l" if report.family == FAMILY_SD1 else "clip_h"
        layers = per_encoder.get(encoder, {})
        # trained depth: 12 for CLIP-L; 23 for kohya SD2 files (24 if layer 23
        # is present)
        depth = 12 if encoder == "clip_l" else (24 if 23 in layers else 23)
        zeros = zero_layers.get(encoder) or []
        if layers and (depth - 1) in layers and zeros and max(layers) < depth:
            value = (24 - depth) + 1 + len(zeros) if encoder == "clip_h" else 1 + len(zeros)
            report.trained_clip_skip = value
            report.trained_clip_skip_source = "weights"
            report.trained_clip_skip_detail = f"inferred from the weights: TE {layer_list(zeros)} exactly zero"
            return
    if metadata.get("ss_clip_skip") == "None" and report.family in (FAMILY_SD1, FAMILY_SD2):
        default = 1 if report.family == FAMILY_SD1 else 2
        report.trained_clip_skip = default
        report.trained_clip_skip_source = "metadata"
        report.trained_clip_skip_detail = "ss_clip_skip=None, kohya's default"


def fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def layer_list(layers: list[int]) -> str:
    if len(layers) == 1:
        return f"layer {layers[0]} is"
    if layers == list(range(layers[0], layers[-1] + 1)):
        return f"layers {layers[0]}-{layers[-1]} are"
    return "layers " + ", ".join(str(n) for n in layers) + " are"
