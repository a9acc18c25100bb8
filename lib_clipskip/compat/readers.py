"""Safe, bounded readers: safetensors headers and raw tensor bytes, pickles through
``torch.load(weights_only=True)`` only, and the ``sd-ti-embedding`` chunk of PNG files.

Nothing here executes code from a file, and every read has a size limit.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
import re
import struct
import warnings
import zlib
from operator import itemgetter

import numpy as np

from .report import UnreadableFile

MAX_HEADER_BYTES = 100 * 1024 * 1024
# Pickled LoRAs/TIs are loaded whole; bigger files are most likely full checkpoints.
MAX_PICKLE_BYTES = 512 * 1024 * 1024
MAX_PNG_BYTES = 64 * 1024 * 1024
MAX_TI_PAYLOAD_BYTES = 32 * 1024 * 1024
# Raw tensor bytes read per file for zero tests; past it, inference gives up.
ZERO_TEST_BYTE_BUDGET = 64 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024  # a multiple of every item size

# dtype -> (item size, mask that drops the float sign bit so -0.0 counts as zero)
_DTYPES = {
    "F64": (8, 0x7FFF_FFFF_FFFF_FFFF),
    "F32": (4, 0x7FFF_FFFF),
    "F16": (2, 0x7FFF),
    "BF16": (2, 0x7FFF),
    "F8_E4M3": (1, 0x7F),
    "F8_E5M2": (1, 0x7F),
    "I64": (8, None),
    "I32": (4, None),
    "I16": (2, None),
    "I8": (1, None),
    "U64": (8, None),
    "U32": (4, None),
    "U16": (2, None),
    "U8": (1, None),
    "BOOL": (1, None),
}
_UINT_BY_SIZE = {
    1: np.dtype("<u1"),
    2: np.dtype("<u2"),
    4: np.dtype("<u4"),
    8: np.dtype("<u8"),
}


class ZeroTestBudgetExceeded(Exception):
    pass


class SafetensorsFile:
    """An open safetensors file: validated header plus on-demand raw tensor reads.

    Use as a context manager; only the header is read up front."""

    def __init__(self, path: str):
        self.path = path
        # A 64 KiB buffer: the few tensors the zero test reads sit next to
        # each other (same layer, sorted names), so one read often serves
        # several of them.
        self._fh = open(path, "rb", buffering=_CHUNK_BYTES)  # noqa: SIM115 - closed in close()
        try:
            self._read_header()
        except BaseException:
            self._fh.close()
            raise
        self.zero_test_bytes = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._fh.close()

    def _read_header(self):
        self.file_size = os.fstat(self._fh.fileno()).st_size
        if self.file_size == 0:
            raise UnreadableFile("empty file")
        prefix = self._read_exact(8)
        if len(prefix) < 8:
            raise UnreadableFile("truncated: shorter than the 8-byte safetensors header length")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > MAX_HEADER_BYTES:
            raise UnreadableFile(f"safetensors header length {header_len} exceeds the {MAX_HEADER_BYTES} byte limit")
        if 8 + header_len > self.file_size:
            raise UnreadableFile(f"truncated: header length {header_len} runs past the end of the file ({self.file_size} bytes)")
        raw = self._read_exact(header_len)
        if len(raw) != header_len:
            raise UnreadableFile("truncated: the file ended inside the header")
        try:
            header = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UnreadableFile(f"safetensors header is not valid JSON: {exc}") from None
        if not isinstance(header, dict):
            raise UnreadableFile("safetensors header is not a JSON object")
        metadata = header.pop("__metadata__", None)
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            raise UnreadableFile("safetensors __metadata__ is not a JSON object")
        if not set(map(type, metadata.values())) <= {str}:
            metadata = {k: v if isinstance(v, str) else str(v) for k, v in metadata.items()}
        self.metadata = metadata
        self.data_start = 8 + header_len
        data_len = self.file_size - self.data_start
        # One pass over the entries: only the end offsets are checked for
        # every tensor here; shapes and dtypes are validated when a tensor is
        # actually used (tensor_info).
        try:
            max_end = max(
                map(itemgetter(1), map(itemgetter("data_offsets"), header.values())),
                default=0,
            )
        except (TypeError, KeyError, IndexError):
            raise UnreadableFile("safetensors header has a malformed tensor entry") from None
        if not isinstance(max_end, int):
            raise UnreadableFile("safetensors header has a non-integer data offset")
        if max_end > data_len:
            raise UnreadableFile(
                f"truncated or corrupt: tensor data offsets reach byte {max_end} but only {data_len} data bytes follow the header"
            )
        self.tensors: dict = header

    def _read_exact(self, size: int) -> bytes:
        """Up to ``size`` bytes; loops because an unbuffered read may return fewer."""
        data = self._fh.read(size)
        while len(data) < size:
            more = self._fh.read(size - len(data))
            if not more:
                break
            data += more
        return data

    def keys(self):
        return self.tensors.keys()

    def tensor_info(self, name: str) -> tuple[str, tuple[int, ...], int, int]:
        """(dtype, shape, begin, end) of a tensor, validated."""
        info = self.tensors[name]
        try:
            dtype = info["dtype"]
            shape = tuple(info["shape"])
            begin, end = info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise UnreadableFile(f"malformed header entry for tensor {name!r}") from None
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise UnreadableFile(f"tensor {name!r} has unsupported dtype {dtype!r}")
        if not set(map(type, shape)) <= {int} or min(shape, default=0) < 0:
            raise UnreadableFile(f"tensor {name!r} has an invalid shape {list(shape)}")
        if not (type(begin) is int and type(end) is int and 0 <= begin <= end):
            raise UnreadableFile(f"tensor {name!r} has invalid data offsets")
        if math.prod(shape) * _DTYPES[dtype][0] != end - begin:
            raise UnreadableFile(f"tensor {name!r}: shape and dtype do not match its byte size")
        return dtype, shape, begin, end

    def shape(self, name: str) -> tuple[int, ...] | None:
        if name not in self.tensors:
            return None
        return self.tensor_info(name)[1]

    def is_all_zero(self, name: str) -> bool:
        """True when every element is exactly zero (either sign), reading raw bytes in
        chunks and stopping at the first non-zero chunk."""
        dtype, _shape, begin, end = self.tensor_info(name)
        item_size, mask = _DTYPES[dtype]
        uint = _UINT_BY_SIZE[item_size]
        self._fh.seek(self.data_start + begin)
        remaining = end - begin
        while remaining:
            want = min(remaining, _CHUNK_BYTES)
            if self.zero_test_bytes + want > ZERO_TEST_BYTE_BUDGET:
                raise ZeroTestBudgetExceeded
            chunk = self._read_exact(want)
            if len(chunk) != want:
                raise UnreadableFile(f"truncated while reading tensor {name!r}")
            self.zero_test_bytes += want
            # Fast paths in C before numpy: an element is zero iff all its
            # bytes are 0x00, except that a float's top byte may be 0x80
            # (-0.0).
            if mask is None:
                if chunk.strip(b"\0"):
                    return False
                remaining -= want
                continue
            if chunk.translate(None, b"\x00\x80"):
                return False  # some byte is neither 0x00 nor 0x80: a non-zero element
            if 0x80 not in chunk:
                remaining -= want
                continue
            values = np.frombuffer(chunk, dtype=uint)
            if mask is not None:
                values = values & uint.type(mask)
            if values.any():
                return False
            remaining -= want
        return True


class InMemoryTensors:
    """The same interface as SafetensorsFile over an already-loaded dict of tensors."""

    def __init__(self, tensors: dict, metadata: dict | None = None):
        self.tensors = tensors
        self.metadata = metadata or {}

    def keys(self):
        return self.tensors.keys()

    def shape(self, name: str) -> tuple[int, ...] | None:
        value = self.tensors.get(name)
        shape = getattr(value, "shape", None)
        return tuple(int(d) for d in shape) if shape is not None else None

    def is_all_zero(self, name: str) -> bool:
        value = self.tensors[name]
        if hasattr(value, "count_nonzero"):  # torch.Tensor; -0.0 counts as zero
            return int(value.count_nonzero()) == 0
        return not np.asarray(value).any()


def _import_torch():
    try:
        import torch
    except ImportError:
        raise UnreadableFile("torch is not installed") from None
    return torch


_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported (?:global|operand)[^\n]*?([\w.]+\.[\w]+)")


def _describe_load_error(exc: BaseException) -> str:
    text = str(exc)
    if "weights_only" in text.lower().replace(" ", "_") or type(exc).__name__ == "UnpicklingError":
        culprit = _UNSUPPORTED_GLOBAL.search(text)
        what = f" ({culprit.group(1)})" if culprit else ""
        return f"refused: the pickle asks to run code or build objects other than tensors{what}; it was not loaded"
    first_line = (text.strip().splitlines() or [""])[0][:200]
    return f"cannot load: {type(exc).__name__}: {first_line}"


def torch_load_safely(source) -> object:
    """torch.load restricted to tensors and plain containers; any failure is
    UnreadableFile.

    ``source`` is a path or a bytes-like object."""
    torch = _import_torch()
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols; not our news
            return torch.load(stream, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader error is a property of the file, not a crash
        raise UnreadableFile(_describe_load_error(exc)) from None


def load_pickled_file(path: str, size: int) -> object:
    if size == 0:
        raise UnreadableFile("empty file")
    if size > MAX_PICKLE_BYTES:
        raise UnreadableFile(f"{size} bytes is more than the {MAX_PICKLE_BYTES} byte limit for pickled files (probably a full checkpoint)")
    return torch_load_safely(path)


# ---------------------------------------------------------------------------- PNG

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TI_CHUNK_KEYWORD = b"sd-ti-embedding"


def _inflate_bounded(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise UnreadableFile(f"corrupt compressed text chunk: {exc}") from None
    if len(out) > limit:
        raise UnreadableFile(f"embedding text chunk inflates past {limit} bytes")
    return out


def find_png_ti_text(path: str) -> bytes | None:
    """The text of the 'sd-ti-embedding' tEXt/zTXt/iTXt chunk, or None when there is
    none."""
    size = os.path.getsize(path)
    if size == 0:
        raise UnreadableFile("empty file")
    if size > MAX_PNG_BYTES:
        raise UnreadableFile(f"PNG larger than {MAX_PNG_BYTES} bytes")
    with open(path, "rb") as fh:
        data = fh.read(MAX_PNG_BYTES)
    if not data.startswith(PNG_SIGNATURE):
        raise UnreadableFile("not a PNG file")
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body_start = pos + 8
        body_end = body_start + length
        if body_end + 4 > len(data):
            raise UnreadableFile("truncated PNG chunk")
        body = data[body_start:body_end]
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, sep, rest = body.partition(b"\0")
            if sep and keyword == TI_CHUNK_KEYWORD:
                if ctype == b"tEXt":
                    return rest
                if ctype == b"zTXt":
                    return _inflate_bounded(rest[1:], MAX_TI_PAYLOAD_BYTES)
                # iTXt: compression flag, method, language\0, translated keyword\0, text
                if len(rest) < 2:
                    raise UnreadableFile("malformed iTXt chunk")
                compressed = rest[0] == 1
                _lang, _, after_lang = rest[2:].partition(b"\0")
                _tkw, _, text = after_lang.partition(b"\0")
                return _inflate_bounded(text, MAX_TI_PAYLOAD_BYTES) if compressed else text
        if ctype == b"IEND":
            return None
        pos = body_end + 4
    raise UnreadableFile("truncated PNG: no IEND chunk")


def _tensor_from_json(obj):
    if "TORCHTENSOR" in obj:
        try:
            return np.asarray(obj["TORCHTENSOR"], dtype=np.float32)
        except (TypeError, ValueError):
            raise UnreadableFile("malformed TORCHTENSOR value in embedding") from None
    return obj


def decode_png_ti_payload(text: bytes) -> object:
    """Decode the chunk text: base64 of JSON (A1111) or of a torch zip (loaded
    weights_only)."""
    if len(text) > MAX_TI_PAYLOAD_BYTES:
        raise UnreadableFile(f"embedding text chunk larger than {MAX_TI_PAYLOAD_BYTES} bytes")
    try:
        raw = base64.b64decode(text.strip(), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise UnreadableFile(f"sd-ti-embedding chunk is not base64: {exc}") from None
    if raw.startswith(b"PK"):
        return torch_load_safely(raw)
    try:
        return json.loads(raw, object_hook=_tensor_from_json)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UnreadableFile(f"sd-ti-embedding chunk is not valid JSON: {exc}") from None
