"""Textual-inversion layouts, recognised the way the hosts load them.

Both hosts turn a loaded file into an embedding with the same function
(A1111 modules/textual_inversion/textual_inversion.py:287 ``create_embedding_from_data``;
Forge backend/text_processing/textual_inversion.py:229):

1. ``string_to_param`` (A1111 .pt, and the original textual-inversion code's
   ``nn.ParameterDict``, read through ``_parameters``): exactly one term, else refused;
2. a plain dict with ``clip_l`` and ``clip_g``: an SDXL embedding, extra keys ignored;
3. a plain dict whose first value is a tensor: exactly one tensor ("diffusers concept":
   ``learned_embeds``, kohya ``emb_params``), else refused ("multiple terms").

What trainers write (their save code): kohya sd-scripts ``{"emb_params"}`` (SD1/SD2) and
``{"clip_l", "clip_g"}`` (SDXL); OneTrainer ``emp_params`` (sic), ``clip_l``/``clip_g``,
``t5``, ``llama``, ``gemma``, each optionally with an ``*_out`` output vector;
diffusers ``{"<token>": tensor}`` (SDXL: one file per encoder, ``learned_embeds_2`` holds
the 1280-wide OpenCLIP-G half).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pickles import ParameterDictStub
from .report import (
    FAMILY_CASCADE,
    FAMILY_FLUX,
    FAMILY_HIDREAM,
    FAMILY_HUNYUAN,
    FAMILY_OPENCLIP_G,
    FAMILY_SD1,
    FAMILY_SD2,
    FAMILY_SD3,
    FAMILY_SDXL,
    FAMILY_T5,
    FAMILY_UNKNOWN,
)

MULTIPLE_TERMS = "it loads only embeddings with one tensor ('embedding file has multiple terms in it')"

# OneTrainer's tensor names per text encoder (its *EmbeddingSaver._to_state_dict).
_ONETRAINER_ENCODERS = frozenset({"emp_params", "clip_l", "clip_g", "t5", "llama", "gemma"})
_KNOWN_NAMES = _ONETRAINER_ENCODERS | {n + "_out" for n in _ONETRAINER_ENCODERS} | {"emb_params"}
# encoder set -> family (OneTrainer: SDXL, SD3, Flux, Stable Cascade, PixArt/Chroma, HiDream, Hunyuan)
_FAMILY_BY_ENCODERS = {
    frozenset({"clip_l", "clip_g"}): FAMILY_SDXL,
    frozenset({"clip_l", "clip_g", "t5"}): FAMILY_SD3,
    frozenset({"clip_l", "t5"}): FAMILY_FLUX,
    frozenset({"clip_g"}): FAMILY_CASCADE,
    frozenset({"t5"}): FAMILY_T5,
    frozenset({"clip_l", "clip_g", "t5", "llama"}): FAMILY_HIDREAM,
    frozenset({"clip_l", "llama"}): FAMILY_HUNYUAN,
}
_WIDTH_FAMILY = {768: FAMILY_SD1, 1024: FAMILY_SD2}


@dataclass
class EmbeddingLayout:
    format: str
    family: str
    vectors: int
    refused: str | None = None  # why neither host loads it
    notes: list[str] = field(default_factory=list)


def _shape(value) -> tuple | None:
    shape = getattr(value, "shape", None)
    try:
        return tuple(int(d) for d in shape) if shape is not None else None
    except (TypeError, ValueError):
        return None


def _rows(shape: tuple) -> int:
    return 1 if len(shape) <= 1 else shape[0]


def _is_tensor(value) -> bool:
    return _shape(value) is not None


def _width_family(shape: tuple | None, notes: list) -> str:
    width = shape[-1] if shape else None
    family = _WIDTH_FAMILY.get(width)
    if family:
        return family
    if width == 1280:
        notes.append("1280 wide: the OpenCLIP-G half of an SDXL embedding on its own (e.g. diffusers' learned_embeds_2); "
                     "the WebUI takes SDXL embeddings only as clip_l + clip_g pairs")
        return FAMILY_OPENCLIP_G
    if width == 4096:
        notes.append("4096 wide: a T5 text-encoder embedding (PixArt, Chroma, Flux's T5)")
        return FAMILY_T5
    if width is not None:
        notes.append(f"{width} wide: no SD1 (768), SD2 (1024) or SDXL (768 + 1280) text encoder has that width")
    return FAMILY_UNKNOWN


def recognise(data, container: str) -> EmbeddingLayout | None:
    """The layout of an embedding file's content, or None when it is not one.

    ``container``: ".pt"/".bin"/".safetensors"/"image" — picks the format id when the
    layout itself does not tell."""
    if not hasattr(data, "__contains__") or not hasattr(data, "get"):
        return None
    if "string_to_param" in data:
        return _string_to_param(data, container)
    plain = type(data) is dict  # the host's check is type(data) == dict
    tensors = {k: v for k, v in data.items() if isinstance(k, str) and _is_tensor(v)} if plain else {}
    if plain and "clip_l" in tensors and "clip_g" in tensors:
        encoders = frozenset(k for k in tensors if k in _ONETRAINER_ENCODERS)
        family = _FAMILY_BY_ENCODERS.get(encoders, FAMILY_SDXL)
        onetrainer = encoders != {"clip_l", "clip_g"} or any(k.endswith("_out") for k in tensors)
        layout = EmbeddingLayout("onetrainer" if onetrainer else "sdxl-clip-l-g", family, _rows(_shape(tensors["clip_g"])))
        widths = (_shape(tensors["clip_l"])[-1:], _shape(tensors["clip_g"])[-1:])
        if widths != ((768,), (1280,)):
            layout.notes.append(f"clip_l/clip_g widths {widths[0]}/{widths[1]}, not SDXL's 768/1280")
            layout.family = FAMILY_UNKNOWN
        return layout
    if not (plain and tensors and _is_tensor(next(iter(data.values())))):
        return None
    if len(data) == 1:
        name, vec = next(iter(tensors.items()))
        notes: list[str] = []
        shape = _shape(vec)
        fmt = {"emb_params": "emb-params", "emp_params": "onetrainer"}.get(name, "diffusers-bin")
        family = _FAMILY_BY_ENCODERS.get(frozenset({name})) or _width_family(shape, notes)
        if name in ("t5", "clip_g"):
            fmt = "onetrainer"
        return EmbeddingLayout(fmt, family, _rows(shape), notes=notes)
    if not set(tensors) <= _KNOWN_NAMES or len(tensors) != len(data):
        return None  # many tensors with other names: a LoRA or a checkpoint, not an embedding
    encoders = frozenset(k.removesuffix("_out") for k in tensors)
    notes = []
    if encoders == {"emp_params"}:
        family = _width_family(_shape(tensors["emp_params"]), notes)
    else:
        family = _FAMILY_BY_ENCODERS.get(encoders, FAMILY_UNKNOWN)
    main = next(k for k in tensors if not k.endswith("_out"))
    if any(k.endswith("_out") for k in tensors):
        notes.append("it has OneTrainer output embeddings (*_out)")
    return EmbeddingLayout("onetrainer", family, _rows(_shape(tensors[main])), refused=MULTIPLE_TERMS, notes=notes)


def _string_to_param(data, container: str) -> EmbeddingLayout:
    params = data["string_to_param"]
    fmt = "ti-parameterdict" if isinstance(params, ParameterDictStub) else "a1111-pt"
    params = getattr(params, "_parameters", params)  # the host's read, for old ParameterDicts
    if not hasattr(params, "values"):
        return EmbeddingLayout(fmt, FAMILY_UNKNOWN, 0, refused="its string_to_param is not a dictionary of vectors")
    terms = [v for v in params.values() if _is_tensor(v)]
    if len(terms) != len(params) or not terms:
        return EmbeddingLayout(fmt, FAMILY_UNKNOWN, 0, refused="its string_to_param holds something other than vectors")
    notes: list[str] = []
    shape = _shape(terms[0])
    layout = EmbeddingLayout(fmt, _width_family(shape, notes), _rows(shape), notes=notes)
    if len(terms) != 1:
        layout.refused = f"it has {len(terms)} terms in string_to_param; " + MULTIPLE_TERMS
    return layout
