"""Tensor key names of LoRA / LyCORIS files: which text-encoder module and layer a key
belongs to, its tensor name inside the module, and hints of model families other than
SD (Flux, SD3, ...).

Key names repeat across files (every kohya SD1 LoRA uses the same few hundred), so each
distinct key is parsed once and memoised, in a memo that never holds more than
``KEY_INFO_LIMIT`` entries.
"""

from __future__ import annotations

import re

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
DIFFUSERS_ROOTS = frozenset({"unet", "text_encoder", "text_encoder_2", "text_encoders", "base_model", "transformer"})
# The deepest CLIP text encoder has 32 layers; a "layer" past that is not a CLIP layer.
MAX_TE_LAYERS = 32

# Key patterns only networks for other model families have (kohya, diffusers, ComfyUI and
# BFL spellings). "mmdit" is Flux or SD3 (diffusers names both alike); "t5" is a T5
# text encoder (SD3, Flux).
_FAMILY_HINTS = (
    ("flux", r"(?:^|[._])(?:double_blocks|single_blocks|single_transformer_blocks)[._]\d"),
    ("sd3", r"(?:^|[._])joint_blocks[._]\d"),
    ("mmdit", r"(?:^|[._])transformer_blocks[._]\d+[._]attn[._]add_[qkv]_proj"),
    ("pixart", r"^(?:transformer|lora_transformer)[._]transformer_blocks[._]\d+[._]attn2[._]"),
    ("stable-cascade", r"^lora_prior_(?:unet|te)_"),
    ("kolors", r"self_attention[._]query_key_value|mlp[._]dense_(?:h_to_4h|4h_to_h)"),
    ("t5", r"^lora_te3_|^text_encoders[._]t5xxl[._]|^text_encoder_3[._]"),
)
# One search per key: the first alternative that matches names the family.
_HINT_PATTERN = re.compile("|".join(f"(?P<h{n}>{pattern})" for n, (_family, pattern) in enumerate(_FAMILY_HINTS)))
_HINT_FAMILIES = {f"h{n}": family for n, (family, _pattern) in enumerate(_FAMILY_HINTS)}
# Every pattern above contains one of these: keys without any skip the regex (C-level
# substring tests are ~20x cheaper than the search).
_HINT_WORDS = ("blocks", "prior_", "self_attention", "dense_", "te3_", "t5xxl", "text_encoder_3")

# Trailing key parts that are tensor names, not module names (diffusers/PEFT forms).
_WEIGHT_PARTS = frozenset({
    "lora_A", "lora_B", "lora_up", "lora_down", "lora_mid", "lora", "lora_linear_layer", "up", "down", "weight",
    "bias", "alpha", "lora_magnitude_vector", "dora_scale", "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b",
    "hada_t1", "hada_t2", "lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2",
    "on_input", "oft_blocks", "oft_diag", "rescale", "a1", "a2", "b1", "b2", "diff", "diff_b", "w_norm", "b_norm",
})

class TeModule:
    """A text-encoder module of one file; kohya ones are shared between files."""

    __slots__ = ("encoder_slot", "layer", "prefix", "slot_layer", "style")

    def __init__(self, encoder_slot, layer, prefix, style):
        self.encoder_slot = encoder_slot
        self.layer = layer
        self.slot_layer = (encoder_slot, layer)
        self.prefix = prefix  # this module's tensor names are appended to it
        self.style = style


# Module base name -> TeModule (None for non-TE modules), shared by all files.
_kohya_base_info: dict[str, TeModule | None] = {}
KOHYA_BASE_INFO_LIMIT = 100_000
# Key -> (kohya TE module or None, tensor name, family hint or None), shared by all files.
_key_info: dict[str, tuple] = {}
KEY_INFO_LIMIT = 300_000


def _kohya_te_module(base: str) -> TeModule | None:
    """One shared TeModule per kohya TE module name (so sets dedupe them by identity)."""
    module = _kohya_base_info.get(base, False)
    if module is False:
        match = _KOHYA_TE_MODULE.match(base) if base.startswith(_KOHYA_TE_PREFIXES) else None
        module = TeModule(_KOHYA_SLOTS[match.group(1)], int(match.group(2)), base + ".", "kohya") if match else None
        if len(_kohya_base_info) < KOHYA_BASE_INFO_LIMIT:
            _kohya_base_info[base] = module
    return module


_tensor_parts: dict[str, str] = {}  # suffix -> tensor name: a few dozen distinct suffixes in any file


def _tensor_part(suffix: str) -> str:
    """The tensor's name inside its module: 'lora_up' for suffix 'lora_up.weight'."""
    part = _tensor_parts.get(suffix)
    if part is None:
        head, _, tail = suffix.rpartition(".")
        part = head.rpartition(".")[2] if tail in ("weight", "bias") and head else tail
        if len(_tensor_parts) < 10_000:
            _tensor_parts[suffix] = part
    return part


def _hint(key: str) -> str | None:
    if not any(word in key for word in _HINT_WORDS):
        return None
    match = _HINT_PATTERN.search(key)
    return _HINT_FAMILIES[match.lastgroup] if match else None


def _parse(key: str) -> tuple:
    base, _, suffix = key.partition(".")
    module = _kohya_te_module(base)  # a CLIP text-encoder key hints at no other family
    return module, _tensor_part(suffix), (None if module is not None else _hint(key))


def split_keys(keys) -> list:
    """(kohya TE module or None, tensor name, family hint or None) per key, e.g.
    (module, 'lora_up', None) for 'lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight'.

    Memoised across files (a dict lookup is cheaper than splitting and matching each key
    again). The memo stays within KEY_INFO_LIMIT: a file with more than a quarter of that
    is parsed without it, and the memo is emptied before it would overflow.
    """
    memo = _key_info
    if len(keys) > KEY_INFO_LIMIT // 4:
        return list(map(_parse, keys))  # too many for the memo: one pass, nothing kept
    infos = list(map(memo.get, keys))
    if None in infos:
        if len(memo) + len(infos) > KEY_INFO_LIMIT:
            memo.clear()  # bounded memory; entries are rebuilt on demand
        for index, key in enumerate(keys):  # same order as the map above
            if infos[index] is None:
                infos[index] = memo[key] = _parse(key)
    return infos


def memo_sizes() -> tuple[int, int]:
    return len(_key_info), len(_kohya_base_info)


def forget() -> None:
    """Empty the memos (benchmarks measure the cost for keys never seen)."""
    _key_info.clear()
    _kohya_base_info.clear()
    _tensor_parts.clear()


def split_diffusers(rest: str) -> tuple[str, str]:
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


def collect_te_key(key: str, te_modules: dict) -> None:
    """Diffusers/PEFT and ComfyUI-style TE keys (kohya ones come from split_keys)."""
    match = _DIFFUSERS_TE.match(key)
    if match:
        slot = "te2" if match.group(1) else "te"
        style = "diffusers"
    else:
        match = _COMFY_TE.match(key)
        if not match:
            return
        slot = match.group(1)
        style = "comfy"
    layer, rest = match.group(2), match.group(3)
    module, tensor_prefix = split_diffusers(rest)
    head = key[: len(key) - len(rest)]
    if head + module not in te_modules:
        te_modules[head + module] = TeModule(slot, int(layer), head + tensor_prefix, style)


def first_and_last(keys) -> tuple:
    if not keys:
        return ()
    iterator = iter(keys)
    first = next(iterator)
    return (first, next(reversed(keys), first)) if hasattr(keys, "__reversed__") else (first,)
