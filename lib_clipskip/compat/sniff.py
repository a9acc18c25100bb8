"""What a file really is, from its first bytes, in words a user knows.

Used when a file does not parse as what its extension says: "an HTML page, not a
safetensors file" tells the user what to do (download it again) where "header length
exceeds the limit" does not.
"""

from __future__ import annotations

import binascii
import json
import os
import struct
import zlib

HEAD_BYTES = 512

_EXPECTED = {
    ".safetensors": "safetensors file",
    ".pt": "torch .pt file",
    ".pth": "torch .pth file",
    ".ckpt": "torch .ckpt file",
    ".bin": "torch .bin file",
    ".png": "PNG image",
    ".webp": "WebP image",
    ".jxl": "JPEG XL image",
    ".avif": "AVIF image",
}

_MARKUP = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<?xml")
# (magic prefix, what it is); longest match first where prefixes overlap
_MAGIC = (
    (b"version https://git-lfs.github.com/spec", "a Git LFS pointer (a few lines of text: the model itself was never downloaded)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"GGUF", "a GGUF model (a quantised checkpoint, not a LoRA or embedding)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"%PDF", "a PDF document"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF", "an HDF5 file"),
)


def read_head(path: str, size: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def expected_name(path: str) -> str:
    return _EXPECTED.get(os.path.splitext(path)[1].lower(), "model file")


def _looks_like_safetensors(head: bytes, file_size: int) -> bool:
    if len(head) < 10:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= file_size - 8 and head[8:9] == b"{"


def describe(head: bytes, file_size: int) -> str | None:
    """A phrase like "an HTML page" for the file that starts with ``head``; None when the
    bytes are a format we read (safetensors, zip, pickle) and need a closer look."""
    if file_size == 0:
        return "an empty file (0 bytes)"
    if head[8:9] in (b"{", b"[") or head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x80")):
        return None  # safetensors, zip or pickle: the reader says what is wrong inside
    if not head.strip(b"\0"):
        return "only zero bytes (a download or copy that never wrote its data)"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "an AVIF image"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(_MARKUP):
        return "an HTML page (a download that failed or needed a login)"
    if text[:1] in (b"{", b"[") and _mostly_text(head):
        return "a JSON text file (often an error message from the download site)"
    if _mostly_text(head):
        return "a text file"
    return None


def _mostly_text(head: bytes) -> bool:
    if not head:
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable / len(head) > 0.95


def not_what_it_claims(path: str, head: bytes, file_size: int) -> str | None:
    """'an HTML page (...), not a safetensors file' when the content is recognisably
    something else, e.g. a PNG named .pt, or a safetensors file named .pt."""
    expected = expected_name(path)
    ext = os.path.splitext(path)[1].lower()
    if ext != ".safetensors" and _looks_like_safetensors(head, file_size):
        return (f"a safetensors file with a {ext} name: the WebUI reads {ext} files with torch and "
                "fails on it; rename it to .safetensors")
    what = describe(head, file_size)
    if what is None:
        return None
    if ext in (".png", ".webp", ".jxl", ".avif") and what.endswith(expected):
        return None  # an image where an image is expected: fine
    return f"{what}, not a {expected}"


def plain_reason(exc: BaseException) -> str:
    """What a decoding error means, in words: 'bytes that are not text', not "'utf-8' codec can't
    decode byte 0xff in position 3"."""
    if isinstance(exc, UnicodeDecodeError):
        return "bytes that are not text where text belongs"
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON at byte {exc.pos}"
    if isinstance(exc, zlib.error):
        return "compressed data that does not unpack"
    if isinstance(exc, binascii.Error):
        return "text that is not base64"
    detail = str(exc)[:120]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def unknown_bytes(path: str) -> str:
    return f"unknown binary data, not a {expected_name(path)} (a damaged or partial download?)"
