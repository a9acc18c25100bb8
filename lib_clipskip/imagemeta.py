"""The metadata an image file carries, read from its headers only, bounded, executing nothing.

- PNG: ``tEXt`` / ``zTXt`` / ``iTXt`` chunks by keyword (A1111 ``parameters``, ComfyUI ``prompt``
  and ``workflow``, InvokeAI ``invokeai_metadata``, NovelAI ``Software``/``Source``/``Comment``,
  Fooocus ``fooocus_scheme``) and an ``eXIf`` chunk; pixel data (``IDAT``) is skipped by seeking.
- JPEG: the ``APP1`` Exif segment and ``COM``; reading stops at the first scan (``SOS``).
- WebP: the RIFF ``EXIF`` chunk.
- EXIF: ``UserComment`` (piexif's 8-byte ``UNICODE\\0`` prefix then UTF-16, or ``ASCII\\0\\0\\0``, or
  bare text as Pillow writes it for Fooocus), ``Software``, ``Make``/``Model`` (ComfyUI's
  ``workflow:``/``prompt:``), ``MakerNote``, ``ImageDescription``, from IFD0 and the Exif IFD.

Every chunk is capped at ``MAX_CHUNK`` bytes (compressed text inflates to at most that), one file
at ``MAX_TOTAL`` bytes of metadata and ``MAX_CHUNKS`` chunks or segments.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

MAX_CHUNK = 8 * 1024 * 1024  # ComfyUI's workflow JSON runs to a few MB
MAX_TOTAL = 32 * 1024 * 1024
MAX_CHUNKS = 4096
MAX_IFD_ENTRIES = 512

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt", b"eXIf")
_EXIF_TAGS = {0x010E: "ImageDescription", 0x010F: "Make", 0x0110: "Model", 0x0131: "Software",
              0x9286: "UserComment", 0x927C: "MakerNote"}
_EXIF_IFD_POINTER = 0x8769
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


@dataclass
class ImageMeta:
    format: str = "unknown"  # "png", "jpeg", "webp" or "unknown"
    text: dict[str, str] = field(default_factory=dict)  # PNG text chunks (the first of each keyword)
    exif: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was skipped or could not be read


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_TOTAL
        self.chunks = 0

    def take(self, size: int) -> bool:
        self.chunks += 1
        if size > self.left or self.chunks > MAX_CHUNKS:
            return False
        self.left -= size
        return True


def sniff(head: bytes) -> str:
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return "unknown"


def read(path: str | os.PathLike) -> ImageMeta:
    """The metadata of the image at ``path``; never raises for what is in the file."""
    with open(path, "rb") as handle:
        head = handle.read(16)
        meta = ImageMeta(sniff(head))
        handle.seek(0)
        try:
            if meta.format == "png":
                _png(handle, meta)
            elif meta.format == "jpeg":
                _jpeg(handle, meta)
            elif meta.format == "webp":
                _webp(handle, meta)
        except (OSError, ValueError, struct.error, zlib.error) as error:
            meta.notes.append(f"the {meta.format.upper()} metadata ends early ({type(error).__name__}): read what came before")
    return meta


def _inflate(data: bytes) -> bytes | None:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_CHUNK + 1)
    return None if len(out) > MAX_CHUNK or inflater.unconsumed_tail else out


def _size(handle: BinaryIO) -> int:
    return os.fstat(handle.fileno()).st_size


def _png(handle: BinaryIO, meta: ImageMeta) -> None:
    handle.seek(len(PNG_SIGNATURE))
    budget, size = _Budget(), _size(handle)
    while True:
        header = handle.read(8)
        if len(header) < 8:
            return
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            return
        if not kind.isalpha() or handle.tell() + length + 4 > size:
            raise ValueError("not a PNG chunk, or one longer than the file")
        if kind not in _TEXT_CHUNKS:
            if budget.take(0) is False:
                meta.notes.append(f"more than {MAX_CHUNKS} chunks: the rest is not read")
                return
            handle.seek(length + 4, os.SEEK_CUR)  # pixel data and the CRC are never read
            continue
        if length > MAX_CHUNK or not budget.take(length):
            meta.notes.append(f"a {kind.decode('latin-1')} chunk of {length} bytes is past the limit: skipped")
            handle.seek(length + 4, os.SEEK_CUR)
            continue
        body = handle.read(length)
        handle.seek(4, os.SEEK_CUR)
        if len(body) < length:
            raise ValueError("truncated chunk")
        if kind == b"eXIf":
            _tiff(body, meta)
            continue
        keyword, text = _png_text(kind, body, meta)
        if keyword and text is not None and budget.take(len(text) if kind != b"tEXt" else 0):
            meta.text.setdefault(keyword, text)


def _png_text(kind: bytes, body: bytes, meta: ImageMeta) -> tuple[str, str | None]:
    keyword, _, rest = body.partition(b"\0")
    name = keyword.decode("latin-1")[:79]
    if kind == b"tEXt":
        return name, rest.decode("latin-1")
    if kind == b"zTXt":
        raw = _inflate(rest[1:]) if rest[:1] == b"\0" else None
        if raw is None:
            meta.notes.append(f"the compressed {name!r} chunk is not readable within {MAX_CHUNK} bytes: skipped")
        return name, None if raw is None else raw.decode("latin-1")
    compressed, method = rest[:1] == b"\x01", rest[1:2]
    _lang, _, rest = rest[2:].partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        raw = _inflate(text) if method == b"\0" else None
        if raw is None:
            meta.notes.append(f"the compressed {name!r} chunk is not readable within {MAX_CHUNK} bytes: skipped")
            return name, None
        text = raw
    return name, text.decode("utf-8", errors="replace")


def _jpeg(handle: BinaryIO, meta: ImageMeta) -> None:
    handle.seek(2)
    budget = _Budget()
    while True:
        byte = handle.read(1)
        if not byte:
            return
        if byte != b"\xff":
            raise ValueError("not a marker")
        marker = handle.read(1)
        while marker == b"\xff":  # fill bytes
            marker = handle.read(1)
        if not marker or marker in (b"\xda", b"\xd9"):  # start of scan / end of image: no more headers
            return
        if marker[0] in range(0xD0, 0xD8) or marker == b"\x01":
            continue
        size = struct.unpack(">H", handle.read(2))[0] - 2
        if size < 0 or not budget.take(size if marker in (b"\xe1", b"\xfe") else 0):
            meta.notes.append("past the metadata limit: the rest is not read")
            return
        if marker == b"\xe1":
            data = handle.read(size)
            if data.startswith(b"Exif\0\0"):
                _tiff(data[6:], meta)
        elif marker == b"\xfe":
            meta.exif.setdefault("Comment", handle.read(size).decode("utf-8", errors="replace"))
        else:
            handle.seek(size, os.SEEK_CUR)


def _webp(handle: BinaryIO, meta: ImageMeta) -> None:
    handle.seek(12)
    budget = _Budget()
    while True:
        header = handle.read(8)
        if len(header) < 8:
            return
        kind, size = header[:4], struct.unpack("<I", header[4:])[0]
        padded = size + (size & 1)
        if kind != b"EXIF":
            if not budget.take(0):
                return
            handle.seek(padded, os.SEEK_CUR)
            continue
        if size > MAX_CHUNK or not budget.take(size):
            meta.notes.append(f"an EXIF chunk of {size} bytes is past the limit: skipped")
            handle.seek(padded, os.SEEK_CUR)
            continue
        data = handle.read(size)
        handle.seek(padded - size, os.SEEK_CUR)
        _tiff(data[6:] if data.startswith(b"Exif\0\0") else data, meta)


def _tiff(data: bytes, meta: ImageMeta) -> None:
    """IFD0 and the Exif IFD of a TIFF structure (EXIF), bounds-checked."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8:
        meta.notes.append("an EXIF block that is not TIFF: skipped")
        return
    offsets, seen = [struct.unpack(order + "I", data[4:8])[0]], set()
    while offsets:
        offset = offsets.pop()
        if offset in seen or offset + 2 > len(data):
            continue
        seen.add(offset)
        count = min(struct.unpack(order + "H", data[offset:offset + 2])[0], MAX_IFD_ENTRIES)
        for index in range(count):
            at = offset + 2 + 12 * index
            if at + 12 > len(data):
                break
            tag, kind, number = struct.unpack(order + "HHI", data[at:at + 8])
            value = _ifd_value(data, order, kind, number, at + 8)
            if tag == _EXIF_IFD_POINTER and value is not None and len(value) >= 4:
                offsets.append(struct.unpack(order + "I", value[:4])[0])
            elif tag in _EXIF_TAGS and value is not None:
                name = _EXIF_TAGS[tag]
                text = user_comment(value) if name == "UserComment" else _exif_text(value)
                meta.exif.setdefault(name, text)


def _ifd_value(data: bytes, order: str, kind: int, number: int, at: int) -> bytes | None:
    size = _TYPE_SIZES.get(kind, 0) * number
    if size <= 4:
        return data[at:at + size]
    start = struct.unpack(order + "I", data[at:at + 4])[0]
    if size > MAX_CHUNK or start + size > len(data):
        return None
    return data[start:start + size]


def _exif_text(value: bytes) -> str:
    return value.rstrip(b"\0").decode("utf-8", errors="replace")


def user_comment(value: bytes) -> str:
    """EXIF UserComment: an 8-byte character-code prefix, then the text (EXIF 2.3 §4.6.5)."""
    prefix, body = value[:8], value[8:]
    if prefix == b"UNICODE\0":
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body.decode("utf-16", errors="replace").rstrip("\0")
        # piexif writes big-endian (A1111); a little-endian writer leaves the zero bytes at odd offsets
        even_zeros = body[0::2].count(0)
        odd_zeros = body[1::2].count(0)
        return body.decode("utf-16-le" if odd_zeros > even_zeros else "utf-16-be", errors="replace").rstrip("\0")
    if prefix == b"ASCII\0\0\0":
        return body.decode("latin-1").rstrip("\0")
    if prefix == b"JIS\0\0\0\0\0":
        return body.decode("shift_jis", errors="replace").rstrip("\0")
    if prefix == b"\0" * 8:
        return body.decode("utf-8", errors="replace").rstrip("\0")
    return _exif_text(value)  # no prefix: text as Pillow writes a str (Fooocus)
