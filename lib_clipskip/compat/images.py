"""Textual inversions stored in images, read the two ways the hosts read them.

- a PNG text chunk ``sd-ti-embedding``: base64 of JSON whose tensors are
  ``{"TORCHTENSOR": nested lists}`` (A1111 textual_inversion.py, Embedding training with
  "save images with embedding in PNG chunks");
- data hidden in the image's pixels (image_embedding.py ``insert_image_data_embed``):
  zlib-compressed JSON split into low and high nibbles, each XORed with a fixed random
  sequence and laid out as two bands left and right of the picture, separated from it by
  black columns. This survives conversion to WebP (lossless) where text chunks do not.

An image with neither is a preview, which the hosts skip (so do we). Pixels need Pillow
(every WebUI has it); the text chunk is parsed here, so the CLI reads it with numpy only.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
import threading
import zlib

import numpy as np

from . import sniff
from .report import UnreadableFile

MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024
MAX_TI_PAYLOAD_BYTES = 32 * 1024 * 1024
# Embedding images are the training preview (512-1024 px) plus two data bands.
MAX_IMAGE_PIXELS = 4 * 1024 * 1024
IMAGE_EXTS = (".png", ".webp", ".jxl", ".avif")  # what the hosts' embedding loader tries

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TI_CHUNK_KEYWORD = b"sd-ti-embedding"


def is_preview_name(path: str) -> bool:
    """``name.preview.png``: the hosts' rule (splitext twice, '.PREVIEW')."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.splitext(stem)[1].upper() == ".PREVIEW"


def _inflate_bounded(data: bytes, limit: int, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise UnreadableFile(f"a damaged {what}: {sniff.plain_reason(exc)}") from None
    if len(out) > limit:
        raise UnreadableFile(f"{what} inflates past {limit} bytes")
    return out


def _check_size(path: str) -> int:
    size = os.path.getsize(path)
    if size == 0:
        raise UnreadableFile("an empty file (0 bytes)")
    if size > MAX_IMAGE_FILE_BYTES:
        raise UnreadableFile(f"an image of {size} bytes, larger than the {MAX_IMAGE_FILE_BYTES} byte limit for embedding images")
    return size


def find_png_ti_text(path: str) -> bytes | None:
    """The text of the 'sd-ti-embedding' tEXt/zTXt/iTXt chunk, or None when there is
    none."""
    _check_size(path)
    with open(path, "rb") as fh:
        data = fh.read(MAX_IMAGE_FILE_BYTES)
    if not data.startswith(PNG_SIGNATURE):
        raise UnreadableFile("not a PNG file")
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body_start = pos + 8
        body_end = body_start + length
        if body_end + 4 > len(data):
            raise UnreadableFile("a truncated PNG (it ends inside a chunk)")
        body = data[body_start:body_end]
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, sep, rest = body.partition(b"\0")
            if sep and keyword == TI_CHUNK_KEYWORD:
                if ctype == b"tEXt":
                    return rest
                if ctype == b"zTXt":
                    return _inflate_bounded(rest[1:], MAX_TI_PAYLOAD_BYTES, "compressed embedding text chunk")
                # iTXt: compression flag, method, language\0, translated keyword\0, text
                if len(rest) < 2:
                    raise UnreadableFile("malformed iTXt chunk")
                compressed = rest[0] == 1
                _lang, _, after_lang = rest[2:].partition(b"\0")
                _tkw, _, text = after_lang.partition(b"\0")
                return _inflate_bounded(text, MAX_TI_PAYLOAD_BYTES, "compressed embedding text chunk") if compressed else text
        if ctype == b"IEND":
            return None
        pos = body_end + 4
    raise UnreadableFile("a truncated PNG (no IEND chunk)")


def _tensor_from_json(obj):
    if "TORCHTENSOR" in obj:
        try:
            return np.asarray(obj["TORCHTENSOR"], dtype=np.float32)
        except (TypeError, ValueError):
            raise UnreadableFile("malformed TORCHTENSOR value in embedding") from None
    return obj


def _embedding_json(raw: bytes, where: str) -> object:
    try:
        return json.loads(raw, object_hook=_tensor_from_json)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UnreadableFile(f"a damaged {where}: not valid JSON ({sniff.plain_reason(exc)})") from None


def decode_png_ti_payload(text: bytes) -> object:
    """Decode the chunk text: base64 of JSON (A1111), or of a torch file (read by the
    restricted unpickler, as any .pt)."""
    if len(text) > MAX_TI_PAYLOAD_BYTES:
        raise UnreadableFile(f"embedding text chunk larger than {MAX_TI_PAYLOAD_BYTES} bytes")
    try:
        raw = base64.b64decode(text.strip(), validate=False)
    except (binascii.Error, ValueError):
        raise UnreadableFile("a damaged embedding text chunk (sd-ti-embedding): not base64 text") from None
    if raw.startswith((b"PK", b"\x80")):
        from .torchfile import load_torch_bytes

        return load_torch_bytes(raw).root
    return _embedding_json(raw, "embedding text chunk (sd-ti-embedding)")


# ---------------------------------------------------------------- data hidden in pixels

_LCG_A, _LCG_C, _LCG_MASK = 1664525, 1013904223, 0xFFFFFFFF
_lcg_lock = threading.Lock()
_lcg_cache = {"values": np.zeros(0, np.uint8)}


def _lcg_nibbles(count: int) -> np.ndarray:
    """The hosts' xor sequence: seed = (a*seed + c) mod 2**32 from seed 0, each value
    ``seed % 255``, low nibble only. Built by doubling (x[n+L] = A_L x[n] + C_L), so it
    costs a few numpy passes instead of a Python loop per pixel; cached."""
    with _lcg_lock:
        if len(_lcg_cache["values"]) < count:
            seeds = np.array([_LCG_C], np.uint64)  # the first value: a*0 + c
            while len(seeds) < count:
                # (A_L, C_L) for L = len(seeds): the step applied L times, by squaring
                a_l, c_l, base_a, base_c, n = 1, 0, _LCG_A, _LCG_C, len(seeds)
                while n:
                    if n & 1:
                        a_l, c_l = (base_a * a_l) & _LCG_MASK, (base_a * c_l + base_c) & _LCG_MASK
                    base_a, base_c = (base_a * base_a) & _LCG_MASK, (base_a * base_c + base_c) & _LCG_MASK
                    n >>= 1
                # uint64 arrays wrap modulo 2**64, a multiple of 2**32: the mask gives x mod 2**32
                seeds = np.concatenate([seeds, (seeds * np.uint64(a_l) + np.uint64(c_l)) & np.uint64(_LCG_MASK)])
            _lcg_cache["values"] = ((seeds % np.uint64(255)) & np.uint64(0x0F)).astype(np.uint8)
        return _lcg_cache["values"][:count]


def _unmask(block: np.ndarray) -> np.ndarray:
    return block ^ _lcg_nibbles(block.size).reshape(block.shape)


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise UnreadableFile("Pillow is not installed: embeddings hidden in image pixels cannot be inspected") from None
    return Image


def pixel_embedding(path: str) -> object | None:
    """The JSON hidden in the pixels, or None for an image without any (a preview)."""
    _check_size(path)
    image_module = _pillow()
    try:
        with image_module.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UnreadableFile(f"a {width}x{height} image, larger than embedding images get; not inspected")
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except UnreadableFile:
        raise
    except Exception as exc:  # Pillow raises many types for broken or unsupported images
        raise UnreadableFile(f"cannot decode the image ({type(exc).__name__}: {exc})") from None
    # Crop away black borders: rows/columns without a pixel whose channels are all > 0.
    lit = (pixels > 0).all(axis=2)
    cols, rows = lit.any(axis=0), lit.any(axis=1)
    col_start, col_end = int(cols.argmax()), len(cols) - int(cols[::-1].argmax())
    row_start, row_end = int(rows.argmax()), len(rows) - int(rows[::-1].argmax())
    nibbles = pixels[row_start:row_end, col_start:col_end] & 0x0F
    black = np.flatnonzero(nibbles.sum(axis=(0, 2), dtype=np.int64) == 0)
    if len(black) < 2:
        return None  # no separating black columns: a plain image
    low = _unmask(nibbles[:, : black.min(), :])
    high = _unmask(nibbles[:, black.max() + 1 :, :])
    if low.shape != high.shape:
        raise UnreadableFile("the image's two data bands differ in size: a damaged embedding image")
    packed = ((high << 4) | low).tobytes()
    where = "embedding hidden in the image's pixels"
    return _embedding_json(_inflate_bounded(packed, MAX_TI_PAYLOAD_BYTES, where), where)


def image_embedding(path: str) -> tuple[object | None, str]:
    """(decoded JSON or None, where it came from: "text-chunk" | "pixels" | "none")."""
    if path.lower().endswith(".png"):
        text = find_png_ti_text(path)
        if text is not None:
            return decode_png_ti_payload(text), "text-chunk"
    data = pixel_embedding(path)
    return data, ("pixels" if data is not None else "none")
