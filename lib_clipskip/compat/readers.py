"""Safe, bounded reading of safetensors files: the JSON header (with caps on what it may
hold) and raw tensor bytes for the zero test. Pickles are read by ``pickles``, images by
``images``.

Nothing here executes code from a file, and every read has a size limit.
"""

from __future__ import annotations

import json
import math
import os
import struct
from operator import itemgetter

import numpy as np

from . import sniff
from .report import UnreadableFile

# The safetensors library's own limit (safetensors/src/tensor.rs MAX_HEADER_SIZE).
MAX_HEADER_BYTES = 100_000_000
# What a header may hold, counted on the raw bytes *before* json.loads builds anything:
# a LoRA has a few thousand tensors, a full SDXL checkpoint 2,500; 200,000 is far beyond.
MAX_TENSORS = 200_000
# Commas and brackets bound the number of JSON values (strings may hold some, so this
# over-counts, never under-counts). 4 million small values cost at most ~300 MB once
# parsed; a 100 MB header of "{},{},..." (33 million empty objects) would cost 2.5 GB.
MAX_JSON_ITEMS = 4_000_000
MAX_METADATA_ENTRIES = 100_000
# Raw tensor bytes read per file for zero tests; past it, inference gives up.
ZERO_TEST_BYTE_BUDGET = 64 * 1024 * 1024
CHUNK_BYTES = 64 * 1024  # a multiple of every item size

# dtype -> (item size, mask that drops the float sign bit so -0.0 counts as zero)
DTYPES = {
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
        self._fh = open(path, "rb", buffering=CHUNK_BYTES)  # noqa: SIM115 - closed in close()
        try:
            self._read_header()
        except BaseException:
            self._fh.close()
            raise
        self.budget = ZeroTestBudget()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._fh.close()

    def _read_header(self):
        self.file_size = os.fstat(self._fh.fileno()).st_size
        if self.file_size == 0:
            raise UnreadableFile("an empty file (0 bytes)")
        prefix = self._read_exact(8)
        if len(prefix) < 8:
            raise UnreadableFile(self._not_safetensors(prefix) or "truncated: shorter than the 8-byte safetensors header length")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > MAX_HEADER_BYTES or 8 + header_len > self.file_size:
            head = prefix + self._read_exact(sniff.HEAD_BYTES - 8)
            what = self._not_safetensors(head)
            if what:
                raise UnreadableFile(what)
            if header_len > MAX_HEADER_BYTES:
                raise UnreadableFile(f"safetensors header length {header_len} exceeds the {MAX_HEADER_BYTES} byte limit")
            raise UnreadableFile(
                f"truncated: header length {header_len} runs past the end of the file ({self.file_size} bytes)")
        raw = self._read_exact(header_len)
        if len(raw) != header_len:
            raise UnreadableFile("truncated: the file ended inside the header")
        if not raw.startswith(b"{"):
            raise UnreadableFile(self._not_safetensors(prefix + raw[: sniff.HEAD_BYTES])
                                 or "safetensors header is not a JSON object")
        header = parse_header_json(raw)
        del raw
        metadata = header.pop("__metadata__", None)
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            raise UnreadableFile("safetensors __metadata__ is not a JSON object")
        if len(metadata) > MAX_METADATA_ENTRIES:
            raise UnreadableFile(f"safetensors __metadata__ has {len(metadata)} entries, more than the {MAX_METADATA_ENTRIES} limit")
        if not set(map(type, metadata.values())) <= {str}:
            metadata = {k: v if isinstance(v, str) else _metadata_text(v) for k, v in metadata.items()}
        if len(header) > MAX_TENSORS:
            raise UnreadableFile(f"safetensors header lists {len(header)} tensors, more than the {MAX_TENSORS} limit")
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
                f"truncated: the header promises {max_end} bytes of tensor data but only {data_len} follow it "
                "(an interrupted download?)"
            )
        self.tensors: dict = header

    def _not_safetensors(self, head: bytes) -> str | None:
        return sniff.not_what_it_claims(self.path, head, self.file_size)

    def _read_exact(self, size: int) -> bytes:
        return read_exact(self._fh, size)

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
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise UnreadableFile(f"tensor {name!r} has unsupported dtype {dtype!r}")
        if not set(map(type, shape)) <= {int} or min(shape, default=0) < 0:
            raise UnreadableFile(f"tensor {name!r} has an invalid shape {list(shape)}")
        if not (type(begin) is int and type(end) is int and 0 <= begin <= end):
            raise UnreadableFile(f"tensor {name!r} has invalid data offsets")
        if math.prod(shape) * DTYPES[dtype][0] != end - begin:
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
        self._fh.seek(self.data_start + begin)
        return self.budget.all_zero(self._fh, end - begin, DTYPES[dtype], name)


class ZeroTestBudget:
    """Raw bytes one file may spend on zero tests (ZeroTestBudgetExceeded past it)."""

    def __init__(self, limit: int = ZERO_TEST_BYTE_BUDGET):
        self.limit = limit
        self.used = 0

    def all_zero(self, stream, size: int, item: tuple[int, int | None], name: str) -> bool:
        """Read ``size`` bytes from ``stream``; True when all its elements are zero."""
        item_size, mask = item
        uint = _UINT_BY_SIZE[item_size]
        remaining = size
        while remaining:
            want = min(remaining, CHUNK_BYTES)
            if self.used + want > self.limit:
                raise ZeroTestBudgetExceeded
            chunk = read_exact(stream, want)
            if len(chunk) != want:
                raise UnreadableFile(f"truncated while reading tensor {name!r}")
            self.used += want
            if not chunk_is_zero(chunk, uint, mask):
                return False
            remaining -= want
        return True


def chunk_is_zero(chunk: bytes, uint, mask: int | None) -> bool:
    # Fast paths in C before numpy: an element is zero iff all its bytes are 0x00,
    # except that a float's top byte may be 0x80 (-0.0).
    if mask is None:
        return not chunk.strip(b"\0")
    if chunk.translate(None, b"\x00\x80"):
        return False  # some byte is neither 0x00 nor 0x80: a non-zero element
    if 0x80 not in chunk:
        return True
    values = np.frombuffer(chunk, dtype=uint) & uint.type(mask)
    return not values.any()


def read_exact(stream, size: int) -> bytes:
    """Up to ``size`` bytes; loops because a raw or zip stream may return fewer."""
    data = stream.read(size)
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def parse_header_json(raw: bytes) -> dict:
    """json.loads of a safetensors header, refusing before parsing what would take more
    memory than any real header (counted in C on the raw bytes)."""
    # Every item takes a byte, so a header no larger than the item cap needs no count (the
    # common case: counting costs a third of a small header's parse).
    if len(raw) > MAX_JSON_ITEMS:
        tensors = raw.count(b'"data_offsets"')
        if tensors > MAX_TENSORS:
            raise UnreadableFile(f"safetensors header lists about {tensors} tensors, more than the {MAX_TENSORS} limit")
        items = raw.count(b",") + raw.count(b"{") + raw.count(b"[")
        if items > MAX_JSON_ITEMS:
            raise UnreadableFile(
                f"safetensors header holds about {items} JSON items, more than the {MAX_JSON_ITEMS} a LoRA or "
                "embedding could need; not parsed")
    try:
        header = json.loads(raw)
    except RecursionError:
        raise UnreadableFile("safetensors header nests JSON too deeply to be a safetensors header") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadableFile(f"a damaged safetensors file: its header holds {sniff.plain_reason(exc)} "
                             "(an interrupted or corrupted download? download it again)") from None
    if not isinstance(header, dict):
        raise UnreadableFile("safetensors header is not a JSON object")
    return header


def _metadata_text(value) -> str:
    try:
        return json.dumps(value)
    except (RecursionError, ValueError):
        raise UnreadableFile("safetensors __metadata__ nests values too deeply") from None
