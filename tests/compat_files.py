"""Writers of real LoRA / LyCORIS / embedding files (and hostile ones) for the compat
tests.

Safetensors files are written with the ``safetensors`` library, pickles with
``torch.save``, PNG embeddings by hand (zlib + struct), so the readers are tested
against the real formats.
"""

from __future__ import annotations

import base64
import json
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

TE_SUBMODULES = (
    "self_attn_q_proj",
    "self_attn_k_proj",
    "self_attn_v_proj",
    "self_attn_out_proj",
    "mlp_fc1",
    "mlp_fc2",
)
WIDTH = {"clip_l": 768, "clip_h": 1024, "clip_g": 1280}
CONTEXT = {"sd1": 768, "sd2": 1024, "sdxl": 2048}
RANK = 2


def _io_dims(sub: str, width: int) -> tuple[int, int]:
    """(in, out) features of a CLIP encoder-layer module."""
    if sub == "mlp_fc1":
        return width, 4 * width
    if sub == "mlp_fc2":
        return 4 * width, width
    return width, width


def _rng(seed=0):
    return np.random.default_rng(seed)


def te_prefixes(family: str) -> list[tuple[str, str, int]]:
    """(kohya prefix, encoder, trained layer count) per text encoder."""
    if family == "sd1":
        return [("lora_te", "clip_l", 12)]
    if family == "sd2":
        return [("lora_te", "clip_h", 23)]
    return [("lora_te1", "clip_l", 12), ("lora_te2", "clip_g", 32)]


def kohya_lora_tensors(
    family="sd1",
    zero_layers=(),
    layers=None,
    algo="lora",
    submodules=TE_SUBMODULES,
    unet=True,
    encoders=None,
    seed=0,
    dtype=np.float16,
) -> dict:
    """kohya/LyCORIS-style tensors. ``zero_layers`` maps encoder -> layers whose zero-
    initialised factor stays zero (as after training at a clip skip that never reaches
    them)."""
    rng = _rng(seed)
    zero_layers = dict(zero_layers) if not isinstance(zero_layers, dict) else zero_layers
    tensors = {}
    for prefix, encoder, depth in te_prefixes(family):
        if encoders is not None and encoder not in encoders:
            continue
        width = WIDTH[encoder]
        for layer in layers if layers is not None else range(depth):
            zero = layer in zero_layers.get(encoder, ())
            for sub in submodules:
                base = f"{prefix}_text_model_encoder_layers_{layer}_{sub}"
                fin, fout = _io_dims(sub, width)
                tensors.update(_module_tensors(base + ".", algo, fin, fout, zero, rng, dtype))
    if unet:
        ctx = CONTEXT[family]
        if family == "sdxl":
            base = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
        else:
            base = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
        tensors.update(_module_tensors(base + ".", algo, ctx, 320, False, rng, dtype))
    return tensors


def _randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _module_tensors(prefix, algo, fin, fout, zero, rng, dtype) -> dict:
    out = {}
    zeros = np.zeros
    if algo == "lora":
        out["lora_down.weight"] = _randn(rng, (RANK, fin), dtype)
        up = zeros((fout, RANK), dtype) if zero else _randn(rng, (fout, RANK), dtype)
        if zero:
            up[0, 0] = -0.0  # negative zero is still zero
        out["lora_up.weight"] = up
        out["alpha"] = np.array(RANK, dtype=np.float32)
    elif algo == "loha":
        out["hada_w1_a"] = _randn(rng, (fout, RANK), dtype)
        out["hada_w1_b"] = _randn(rng, (RANK, fin), dtype)
        out["hada_w2_a"] = zeros((fout, RANK), dtype) if zero else _randn(rng, (fout, RANK), dtype)
        out["hada_w2_b"] = _randn(rng, (RANK, fin), dtype)
        out["alpha"] = np.array(RANK, dtype=np.float32)
    elif algo == "lokr":
        out["lokr_w1"] = _randn(rng, (4, 4), dtype)
        w2 = (fout // 4, fin // 4)
        out["lokr_w2"] = zeros(w2, dtype) if zero else _randn(rng, w2, dtype)
        out["alpha"] = np.array(RANK, dtype=np.float32)
    elif algo == "ia3":
        out["weight"] = zeros((fout,), dtype) if zero else _randn(rng, (fout,), dtype)
        out["on_input"] = np.array(False)
    elif algo == "oft":
        blocks = (fout // 8, 8, 8)  # block count x block size = output features
        out["oft_blocks"] = zeros(blocks, dtype) if zero else _randn(rng, blocks, dtype)
        out["alpha"] = np.array(RANK, dtype=np.float32)
    elif algo == "glora":
        out["a1.weight"] = _randn(rng, (RANK, fin), dtype)
        out["a2.weight"] = zeros((fin, RANK), dtype) if zero else _randn(rng, (fin, RANK), dtype)
        out["b1.weight"] = _randn(rng, (RANK, fin), dtype)
        out["b2.weight"] = zeros((fout, RANK), dtype) if zero else _randn(rng, (fout, RANK), dtype)
        out["alpha"] = np.array(RANK, dtype=np.float32)
    elif algo == "full":
        shape = (
            fout,
            min(fin, 64),
        )  # a slice is enough: the reader only sees the header
        out["diff"] = zeros(shape, dtype) if zero else _randn(rng, shape, dtype)
    else:
        raise ValueError(algo)
    return {prefix + k: v for k, v in out.items()}


def peft_lora_tensors(family="sd1", zero_layers=(), seed=0, dtype=np.float16) -> dict:
    """diffusers/PEFT naming:
    text_encoder(.2).text_model.encoder.layers.N.<mod>.lora_A/B."""
    rng = _rng(seed)
    zero_layers = dict(zero_layers)
    names = {
        "self_attn_q_proj": "self_attn.q_proj",
        "self_attn_k_proj": "self_attn.k_proj",
        "self_attn_v_proj": "self_attn.v_proj",
        "self_attn_out_proj": "self_attn.out_proj",
        "mlp_fc1": "mlp.fc1",
        "mlp_fc2": "mlp.fc2",
    }
    encs = {
        "sd1": [("text_encoder", "clip_l", 12)],
        "sd2": [("text_encoder", "clip_h", 23)],
        "sdxl": [("text_encoder", "clip_l", 12), ("text_encoder_2", "clip_g", 32)],
    }[family]
    tensors = {}
    for prefix, encoder, depth in encs:
        width = WIDTH[encoder]
        for layer in range(depth):
            for sub, dotted in names.items():
                fin, fout = _io_dims(sub, width)
                base = f"{prefix}.text_model.encoder.layers.{layer}.{dotted}"
                tensors[base + ".lora_A.weight"] = _randn(rng, (RANK, fin), dtype)
                zero = layer in zero_layers.get(encoder, ())
                tensors[base + ".lora_B.weight"] = np.zeros((fout, RANK), dtype) if zero else _randn(rng, (fout, RANK), dtype)
    ctx = CONTEXT[family]
    unet = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
    tensors[unet + ".lora_A.weight"] = _randn(rng, (RANK, ctx), dtype)
    tensors[unet + ".lora_B.weight"] = _randn(rng, (640, RANK), dtype)
    return tensors


def kohya_metadata(
    family="sd1",
    clip_skip=None,
    output_name=None,
    network_module="networks.lora",
    **extra,
) -> dict:
    base = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}[family]
    arch = {
        "sd1": "stable-diffusion-v1/lora",
        "sd2": "stable-diffusion-v2-512/lora",
        "sdxl": "stable-diffusion-xl-v1-base/lora",
    }[family]
    meta = {
        "ss_base_model_version": base,
        "ss_v2": str(family == "sd2"),
        "ss_network_module": network_module,
        "ss_network_dim": str(RANK),
        "ss_network_alpha": str(RANK),
        "ss_clip_skip": str(clip_skip),
        "modelspec.architecture": arch,
        "modelspec.sai_model_spec": "1.0.0",
    }
    if clip_skip is not None:
        meta["modelspec.encoder_layer"] = str(clip_skip)
    if output_name:
        meta["ss_output_name"] = output_name
    meta.update(extra)
    return meta


def write_safetensors(path, tensors: dict, metadata: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: np.ascontiguousarray(v) for k, v in tensors.items()},
        str(path),
        metadata=metadata,
    )
    return path


def write_kohya_lora(path, family="sd1", clip_skip=None, zero_layers=(), metadata=True, **kwargs) -> Path:
    meta = kohya_metadata(family, clip_skip) if metadata is True else (metadata or None)
    return write_safetensors(path, kohya_lora_tensors(family, zero_layers, **kwargs), meta)


# ------------------------------------------------------------------ textual inversion


def emb_params_tensors(width=768, vectors=2, seed=0):
    return {"emb_params": _randn(_rng(seed), (vectors, width), np.float32)}


def sdxl_embedding_tensors(vectors=2, seed=0):
    rng = _rng(seed)
    return {
        "clip_l": _randn(rng, (vectors, 768), np.float32),
        "clip_g": _randn(rng, (vectors, 1280), np.float32),
    }


def write_a1111_pt_embedding(path, width=768, vectors=3, extra=None) -> Path:
    import torch

    data = {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": torch.randn(vectors, width)},
        "name": Path(path).stem,
        "step": 1000,
        "sd_checkpoint": "abcdef12",
        "sd_checkpoint_name": "model",
    }
    if extra:
        data.update(extra)
    torch.save(data, str(path))
    return Path(path)


def write_diffusers_bin_embedding(path, token="<cat-toy>", width=768) -> Path:
    import torch

    torch.save({token: torch.randn(width)}, str(path))
    return Path(path)


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def png_bytes(text_chunks=()) -> bytes:
    """A valid 1x1 RGB PNG with the given (chunk type, body) chunks before the image
    data."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00\x00\x00")
    out = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    for ctype, body in text_chunks:
        out += _png_chunk(ctype, body)
    return out + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def a1111_ti_chunk_text(width=768, vectors=2, seed=0) -> bytes:
    """The A1111 encoding: base64 of JSON where tensors are {"TORCHTENSOR": nested
    lists}."""
    vec = _randn(_rng(seed), (vectors, width), np.float32).tolist()
    data = {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": {"TORCHTENSOR": vec}},
        "name": "pngti",
        "step": 500,
        "sd_checkpoint": None,
        "sd_checkpoint_name": None,
    }
    return base64.b64encode(json.dumps(data).encode())


def write_png_embedding(path, width=768, chunk="tEXt") -> Path:
    text = a1111_ti_chunk_text(width)
    if chunk == "tEXt":
        body = b"sd-ti-embedding\0" + text
    elif chunk == "zTXt":
        body = b"sd-ti-embedding\0\0" + zlib.compress(text)
    else:  # iTXt, compressed
        body = b"sd-ti-embedding\0\x01\x00\0\0" + zlib.compress(text)
    Path(path).write_bytes(png_bytes([(chunk.encode(), body)]))
    return Path(path)


# ------------------------------------------------------------------ hostile files


def write_huge_header_length(path) -> Path:
    Path(path).write_bytes(struct.pack("<Q", 2**60) + b"{}")
    return Path(path)


def write_non_json_header(path) -> Path:
    body = b"this is not json \xff\xfe"
    Path(path).write_bytes(struct.pack("<Q", len(body)) + body)
    return Path(path)


def write_offsets_past_end(path) -> Path:
    header = json.dumps(
        {
            "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": {
                "dtype": "F16",
                "shape": [3072, 2],
                "data_offsets": [0, 12288],
            },
        }
    ).encode()
    Path(path).write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    return Path(path)


class CodeOnLoad:
    """Unpickling this calls open(marker, 'w'): a stand-in for arbitrary code execution."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile_pickle_bytes(marker) -> bytes:
    return pickle.dumps({"string_to_param": {"*": CodeOnLoad(marker)}})


def write_hostile_pickle(path, marker) -> Path:
    Path(path).write_bytes(hostile_pickle_bytes(marker))
    return Path(path)


def write_hostile_torch_zip(path, marker) -> Path:
    import torch

    torch.save(
        {"string_to_param": {"*": torch.zeros(1, 768)}, "x": CodeOnLoad(marker)},
        str(path),
    )
    return Path(path)


def write_empty(path) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)
