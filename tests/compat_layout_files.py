"""Writers of the layouts issue 10 is about, each the way its tool writes it: the original
textual-inversion ``nn.ParameterDict``, kohya / OneTrainer / diffusers embeddings, embeddings
hidden in image pixels, LoRAs for other model families, and what broken downloads look like.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from compat_files import RANK, _randn, _rng, kohya_lora_tensors

# ------------------------------------------------------------------ more TI layouts, as their tools write them


def write_parameterdict_ti(path, width=768, vectors=2, terms=1, legacy=False, torch_111_state=True) -> Path:
    """The original textual-inversion code (rinongal/textual_inversion, and the SD forks of
    2022 whose .pt files circulated with NovelAI-era models): ``torch.save`` of
    ``{"string_to_token": {"*": tensor(265)}, "string_to_param": nn.ParameterDict(...)}``.

    ``torch_111_state`` drops the ``_keys`` index torch >= 1.12 adds, leaving the
    parameters only in ``_parameters`` as torch 1.11 stored them (why the hosts read
    ``_parameters``). ``legacy`` writes the pre-zip stream (``_use_new_zipfile_serialization=False``).
    """
    import torch

    params = torch.nn.ParameterDict()
    tokens = {}
    for index, key in enumerate(["*", "@", "#"][:terms]):
        params[key] = torch.nn.Parameter(torch.randn(vectors, width))
        tokens[key] = torch.tensor(265 + index)
    if torch_111_state:
        params.__dict__.pop("_keys", None)
    data = {"string_to_token": tokens, "string_to_param": params}
    torch.save(data, str(path), _use_new_zipfile_serialization=not legacy)
    return Path(path)


def write_kohya_ti(path, family="sd1", vectors=2, clip_skip=None) -> Path:
    """kohya sd-scripts train_textual_inversion / sdxl_train_textual_inversion save_weights:
    {"emb_params"} or {"clip_l", "clip_g"}, safetensors with ModelSpec metadata, else torch.save."""
    import torch

    if family == "sdxl":
        data = {"clip_l": torch.randn(vectors, 768), "clip_g": torch.randn(vectors, 1280)}
        arch = "stable-diffusion-xl-v1-base/textual-inversion"
    else:
        data = {"emb_params": torch.randn(vectors, 768 if family == "sd1" else 1024)}
        arch = "stable-diffusion-v1/textual-inversion" if family == "sd1" else "stable-diffusion-v2-512/textual-inversion"
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        meta = {"modelspec.sai_model_spec": "1.0.1", "modelspec.architecture": arch,
                "modelspec.implementation": "https://github.com/Stability-AI/generative-models"}
        if clip_skip is not None:
            meta["modelspec.encoder_layer"] = str(clip_skip)
        save_file(data, str(path), meta)
    else:
        torch.save(data, str(path))
    return Path(path)


# OneTrainer's *EmbeddingSaver._to_state_dict key sets, per model
ONETRAINER_KEYS = {
    "sd1": {"emp_params": 768},
    "sd2": {"emp_params": 1024},
    "sdxl": {"clip_l": 768, "clip_g": 1280},
    "sd3": {"clip_l": 768, "clip_g": 1280, "t5": 4096},
    "flux": {"clip_l": 768, "t5": 4096},
    "pixart": {"t5": 4096},
    "cascade": {"clip_g": 1280},
}


def write_onetrainer_ti(path, model="sdxl", vectors=2, output_vectors=False) -> Path:
    """OneTrainer saves embeddings with safetensors ``save_file`` and no metadata; with output
    embeddings on, each encoder gets an ``*_out`` tensor too."""
    import torch
    from safetensors.torch import save_file

    data = {}
    for key, width in ONETRAINER_KEYS[model].items():
        data[key] = torch.randn(vectors, width)
        if output_vectors:
            data[key + "_out"] = torch.randn(vectors, width)
    save_file(data, str(path))
    return Path(path)


def write_learned_embeds(path, token="<cat-toy>", width=768, vectors=1) -> Path:
    """diffusers examples/textual_inversion save_progress: {placeholder: tensor}, as
    learned_embeds.bin (torch.save) or learned_embeds.safetensors."""
    import torch

    data = {token: torch.randn(vectors, width) if vectors > 1 else torch.randn(width)}
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.reshape(vectors, width) for k, v in data.items()}, str(path), {"format": "pt"})
    else:
        torch.save(data, str(path))
    return Path(path)


def _embedding_json(width, vectors, name, seed=0) -> dict:
    vec = _randn(_rng(seed), (vectors, width), np.float32)
    return {"string_to_token": {"*": 265}, "string_to_param": {"*": vec}, "name": name, "step": 500,
            "sd_checkpoint": "abcdef12", "sd_checkpoint_name": "model"}


def _json_default(value):
    if isinstance(value, np.ndarray):
        return {"TORCHTENSOR": value.tolist()}
    raise TypeError(type(value))


def _lcg_nibbles(count: int) -> np.ndarray:
    """seed = (1664525 * seed + 1013904223) mod 2**32 from 0, each ``seed % 255``, low nibble."""
    values, seed = [], 0
    for _ in range(count):
        seed = (1664525 * seed + 1013904223) % 2**32
        values.append(seed % 255)
    return np.array(values, np.uint8) & 0x0F


def _styled(block: np.ndarray, shades) -> np.ndarray:
    """The dotted look the trainer gives the data bands: grey ellipses drawn in the high
    nibble only (the data lives in the low nibble)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (block.shape[1], block.shape[0]))
    draw = ImageDraw.Draw(canvas)
    index = 0
    for x in range(-6, canvas.size[0], 8):
        for row, y in enumerate(range(-6, canvas.size[1], 8)):
            offset = 4 if row % 2 == 0 else 0
            shade = int(shades[index % len(shades)])
            index += 1
            draw.ellipse((x + offset, y, x + 6 + offset, y + 6), fill=(shade, shade, shade))
    return block ^ (np.array(canvas, np.uint8) & 0xF0)


def embedding_image(width=768, vectors=2, name="pixelti", size=(64, 64), seed=0):
    """A PIL image carrying an embedding in its pixels, laid out as A1111's training writes
    it ("save images with embedding in PNG chunks"): zlib JSON split into nibbles, two
    bands around the picture, each behind a black column. Returns (image, the JSON dict)."""
    from PIL import Image

    data = _embedding_json(width, vectors, name, seed)
    packed = np.frombuffer(zlib.compress(json.dumps(data, default=_json_default).encode(), 9), np.uint8)
    height, depth = size[1], 3
    count = len(packed) + (height - len(packed) % height)
    count += height * depth - count % (height * depth)
    shades = np.abs(data["string_to_param"]["*"][0][:1024])
    shades = (shades / shades.max() * 255).astype(np.uint8)
    bands = []
    for nibbles, order in ((packed & 0x0F, shades), (packed >> 4, shades[::-1])):
        block = np.resize(nibbles, count).reshape(height, -1, depth)
        block = _styled(block, order)
        bands.append(block ^ _lcg_nibbles(block.size).reshape(block.shape))
    picture = Image.fromarray(_rng(seed + 1).integers(16, 255, (height, size[0], 3), dtype=np.uint8))
    low, high = (Image.fromarray(b, "RGB") for b in bands)
    canvas = Image.new("RGB", (picture.size[0] + low.size[0] + high.size[0] + 2, height))
    canvas.paste(low, (0, 0))
    canvas.paste(picture, (low.size[0] + 1, 0))
    canvas.paste(high, (low.size[0] + 1 + picture.size[0] + 1, 0))
    return canvas, data


def write_image_embedding(path, width=768, vectors=2, name="pixelti", text_chunk=False) -> Path:
    """PNG (optionally also with the sd-ti-embedding chunk, as the trainer saves it) or,
    for a .webp path, lossless WebP (what a converted copy keeps: the pixels only)."""
    from PIL import PngImagePlugin

    image, data = embedding_image(width, vectors, name)
    if str(path).endswith(".webp"):
        image.save(str(path), "WEBP", lossless=True)
    else:
        info = PngImagePlugin.PngInfo()
        if text_chunk:
            info.add_text("sd-ti-embedding", base64.b64encode(json.dumps(data, default=_json_default).encode()).decode())
        image.save(str(path), "PNG", pnginfo=info)
    return Path(path)


def write_preview_png(path, size=(32, 32)) -> Path:
    """A plain preview picture, as the extra-networks UI saves one."""
    from PIL import Image

    Image.fromarray(_rng(7).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(str(path))
    return Path(path)


# ------------------------------------------------------------------ LoRAs for other model families


def _pair(prefix, fin, fout, rng, dtype=np.float16) -> dict:
    return {prefix + ".lora_down.weight": _randn(rng, (RANK, fin), dtype),
            prefix + ".lora_up.weight": _randn(rng, (fout, RANK), dtype),
            prefix + ".alpha": np.array(RANK, np.float32)}


def flux_kohya_tensors(train_clip_l=True, seed=0) -> dict:
    """kohya networks/lora_flux.py names: lora_unet_{double,single}_blocks_*, CLIP-L as lora_te1_*."""
    rng = _rng(seed)
    tensors = {}
    for block in range(2):
        for sub in ("img_attn_qkv", "img_attn_proj", "txt_attn_qkv", "img_mlp_0"):
            tensors.update(_pair(f"lora_unet_double_blocks_{block}_{sub}", 64, 64, rng))
        tensors.update(_pair(f"lora_unet_single_blocks_{block}_linear1", 64, 64, rng))
    if train_clip_l:
        tensors.update(kohya_lora_tensors("sdxl", encoders=("clip_l",), unet=False, seed=seed, layers=range(12)))
    return tensors


def flux_kohya_metadata() -> dict:
    return {"ss_base_model_version": "flux1", "ss_network_module": "networks.lora_flux", "ss_clip_skip": "None",
            "modelspec.architecture": "flux-1-dev/lora", "modelspec.implementation": "https://github.com/black-forest-labs/flux"}


def sd3_kohya_tensors(seed=0) -> dict:
    """kohya networks/lora_sd3.py: lora_unet_joint_blocks_*_{context,x}_block_*, lora_te1/te2."""
    rng = _rng(seed)
    tensors = {}
    for block in range(2):
        for part in ("context_block", "x_block"):
            tensors.update(_pair(f"lora_unet_joint_blocks_{block}_{part}_attn_qkv", 64, 64, rng))
    tensors.update(kohya_lora_tensors("sdxl", unet=False, seed=seed, layers=range(2)))
    return tensors


def flux_diffusers_tensors(seed=0) -> dict:
    """diffusers/PEFT Flux LoRA names (transformer.transformer_blocks / single_transformer_blocks)."""
    rng = _rng(seed)
    tensors = {}
    for name in ("transformer.transformer_blocks.0.attn.to_q", "transformer.transformer_blocks.0.attn.add_q_proj",
                 "transformer.single_transformer_blocks.0.attn.to_q"):
        tensors[name + ".lora_A.weight"] = _randn(rng, (RANK, 64), np.float16)
        tensors[name + ".lora_B.weight"] = _randn(rng, (64, RANK), np.float16)
    return tensors


def pixart_diffusers_tensors(seed=0) -> dict:
    rng = _rng(seed)
    tensors = {}
    for name in ("transformer.transformer_blocks.0.attn1.to_q", "transformer.transformer_blocks.0.attn2.to_k"):
        tensors[name + ".lora_A.weight"] = _randn(rng, (RANK, 1152), np.float16)
        tensors[name + ".lora_B.weight"] = _randn(rng, (1152, RANK), np.float16)
    return tensors


def kolors_tensors(seed=0) -> dict:
    """A Kolors LoRA: SDXL-shaped UNet plus the ChatGLM3 text encoder's modules."""
    rng = _rng(seed)
    tensors = kohya_lora_tensors("sdxl", encoders=(), seed=seed)
    for layer in range(2):
        tensors.update(_pair(f"lora_te_encoder_layers_{layer}_self_attention_query_key_value", 4096, 4608, rng))
    return tensors


def cascade_tensors(seed=0) -> dict:
    rng = _rng(seed)
    return _pair("lora_prior_unet_down_blocks_0_2_attention_attn_to_q", 64, 64, rng)


# ------------------------------------------------------------------ what downloads go wrong into


def write_html_page(path) -> Path:
    """What a download link that needs a login saves under the model's name."""
    Path(path).write_text("<!DOCTYPE html>\n<html lang=\"en\"><head><title>Sign in</title></head>"
                          "<body>Please log in to download this model.</body></html>\n")
    return Path(path)


def write_random_bytes(path, size=4096, seed=0) -> Path:
    Path(path).write_bytes(_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return Path(path)


def write_truncated(path, source, keep: float = 0.5) -> Path:
    data = Path(source).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return Path(path)


def write_lfs_pointer(path) -> Path:
    Path(path).write_text("version https://git-lfs.github.com/spec/v1\n"
                          "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 151108831\n")
    return Path(path)


def zero_layer_header(layers: int) -> bytes:
    """A well-formed safetensors file whose header names ``layers`` text-encoder layers,
    each one zero-size lora_up tensor (no data at all)."""
    entries = {f"lora_te_text_model_encoder_layers_{n}_mlp_fc1.lora_up.weight":
               {"dtype": "F16", "shape": [0, 4], "data_offsets": [0, 0]} for n in range(layers)}
    header = json.dumps(entries).encode()
    return struct.pack("<Q", len(header)) + header


def empty_objects_header(megabytes: float) -> bytes:
    """A header of ``{"x": [{},{},{},...]}``: valid JSON, one object per 3 bytes once parsed."""
    count = int(megabytes * 1_000_000) // 3
    header = b'{"x":[' + b"{}," * (count - 1) + b"{}]}"
    return struct.pack("<Q", len(header)) + header


def without_newer_torch_entries(path) -> Path:
    """Rewrite a torch zip without the ``.format_version``/``.storage_alignment`` records
    recent torch versions add: the file as torch 2.1 (A1111 v1.10's) or 1.x writes it,
    which A1111's safe loader accepts (its name check predates those records)."""
    import io
    import zipfile

    source = zipfile.ZipFile(str(path))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            if info.filename.split("/", 1)[-1] not in (".format_version", ".storage_alignment"):
                target.writestr(info, source.read(info))
    source.close()
    Path(path).write_bytes(out.getvalue())
    return Path(path)
