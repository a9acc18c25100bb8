"""The two layouts torch.save writes, read with the restricted unpickler (``pickles``):
the zip of torch >= 1.6 (``<dir>/data.pkl`` + ``<dir>/data/<key>``) and the legacy stream
of five pickles followed by the raw storages (what A1111's safe.py:98-104 checks with five
loads). Tensor bytes are read only for the zero test, within a budget.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
import zlib

import numpy as np

from . import pickles, sniff
from .pickles import ArrayTensor, unpickle
from .readers import ZeroTestBudget
from .report import UnreadableFile

MAX_ZIP_ENTRIES = 200_000
MAX_ZIP_DIRECTORY_BYTES = 32 * 1024 * 1024
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER

# The member names A1111's check accepts (safe.py:68, its regex as written).
_A1111_ZIP_NAMES = re.compile(r"^([^/]+)/((data/\d+)|version|byteorder|.data/serialization_id|(data\.pkl))$")


class _BoundedStream(io.RawIOBase):
    """A read-only view of a file that fails once the pickles have read ``budget`` bytes."""

    def __init__(self, fh, budget: int):
        self._fh, self.remaining = fh, budget

    def readable(self):
        return True

    def _take(self, size: int) -> int:
        if size < 0 or size > self.remaining:
            size = self.remaining + 1
        return size

    def _count(self, data: bytes) -> bytes:
        self.remaining -= len(data)
        if self.remaining < 0:
            raise UnreadableFile(f"the pickle is larger than the {pickles.MAX_PICKLE_STREAM_BYTES} byte limit for LoRA and embedding files")
        return data

    def read(self, size=-1):
        return self._count(self._fh.read(self._take(size)))

    def readline(self, size=-1):
        return self._count(self._fh.readline(self._take(size)))

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class TorchFile:
    """One torch file: ``root`` is its unpickled content (with stand-ins). Tensor bytes
    are read on demand for the zero test."""

    def __init__(self, root, fmt: str, storages: dict, reader, a1111_refusal: str | None = None, globals_used=()):
        self.root, self.format, self._storages, self._reader = root, fmt, storages, reader
        self.a1111_refusal = a1111_refusal  # why A1111's safe loader would refuse the file
        # a global torch >= 2.6's default torch.load(weights_only=True) refuses, if any
        self.needs_full_unpickler = min(set(globals_used) - pickles.WEIGHTS_ONLY_GLOBALS, default=None)
        self.budget = ZeroTestBudget()

    def is_all_zero(self, tensor) -> bool:
        if isinstance(tensor, ArrayTensor):
            return not np.asarray(tensor.array).any()
        item = tensor.storage.stype.item
        start = (tensor.storage.offset + tensor.offset) * item[0]
        size = tensor.span() * item[0]
        stream, owned = self._reader(tensor.storage.key, start, size)
        try:
            return self.budget.all_zero(stream, size, item, tensor.storage.key)
        finally:
            if owned:
                stream.close()


def _zip_directory_ok(fh, file_size: int) -> None:
    """Entry count and directory size from the end record, before zipfile builds them."""
    tail_size = min(file_size, 65536 + 22)
    fh.seek(file_size - tail_size)
    tail = fh.read(tail_size)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        raise UnreadableFile("a truncated zip (the end of the archive is missing: an interrupted download?)")
    _sig, _d1, _d2, _n1, entries, directory_size, _offset, _comment = struct.unpack("<4s4H2LH", tail[pos : pos + 22])
    if entries == 0xFFFF or directory_size == 0xFFFFFFFF:
        return  # zip64 (a file over 4 GB: a checkpoint); counted once zipfile has read it
    if entries > MAX_ZIP_ENTRIES or directory_size > MAX_ZIP_DIRECTORY_BYTES:
        raise UnreadableFile(f"a zip with {entries} entries ({directory_size} directory bytes): far more than a torch file of a LoRA")


def _open_zip(fh, path: str, file_size: int) -> TorchFile:
    _zip_directory_ok(fh, file_size)
    try:
        archive = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UnreadableFile(f"a damaged zip ({exc})") from None
    names = archive.namelist()
    if len(names) > MAX_ZIP_ENTRIES:
        raise UnreadableFile(f"a zip with {len(names)} entries: far more than a torch file of a LoRA")
    data_pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(data_pickles) != 1:
        found = "no" if not data_pickles else "several"
        raise UnreadableFile(f"a zip archive with {found} data.pkl, not a torch file")
    prefix = data_pickles[0][: -len("data.pkl")]
    info = archive.getinfo(data_pickles[0])
    if info.file_size > pickles.MAX_PICKLE_STREAM_BYTES:
        raise UnreadableFile(f"the pickle is larger than the {pickles.MAX_PICKLE_STREAM_BYTES} byte limit for LoRA and embedding files")
    storages: dict = {}
    globals_used: set = set()
    try:
        with archive.open(info) as member:
            root = unpickle(_BoundedStream(member, pickles.MAX_PICKLE_STREAM_BYTES), storages, globals_used=globals_used)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise UnreadableFile(f"a damaged zip ({exc})") from None

    def reader(key: str, start: int, size: int):
        name = f"{prefix}data/{key}"
        try:
            member = archive.open(name)
        except KeyError:
            raise UnreadableFile(f"the torch file lacks the data of storage {key} (a damaged file)") from None
        member.seek(start)
        return member, True

    unexpected = next((n for n in names if not _A1111_ZIP_NAMES.match(n)), None)
    refusal = None
    if unexpected is not None:
        refusal = (f"its safe loader refuses files holding {unexpected!r}, which newer torch versions write "
                   "(safe.py:68 does not expect it); re-save the file as .safetensors")
    return TorchFile(root, "zip", storages, reader, refusal, globals_used)


def _open_legacy(fh, path: str, file_size: int) -> TorchFile:
    stream = _BoundedStream(fh, pickles.MAX_PICKLE_STREAM_BYTES)
    storages: dict = {}
    magic = unpickle(stream, storages)
    if magic != LEGACY_MAGIC:
        raise UnreadableFile("a plain Python pickle, not a file written by torch.save: the WebUI cannot load it")
    _protocol = unpickle(stream, storages)
    sys_info = unpickle(stream, storages)
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise UnreadableFile("a big-endian torch file; not inspected")
    module_classes: list[str] = []
    globals_used: set = set()
    root = unpickle(stream, storages, module_classes, globals_used)
    keys = unpickle(stream, storages)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise UnreadableFile("a damaged torch file (its storage list is not a list of names)")
    # After the pickles come the storages in ``keys`` order: an 8-byte element count, then
    # the elements (torch/serialization.py _legacy_load, _set_from_file).
    position = fh.tell()
    offsets = {}
    for key in keys:
        ref = storages.get(key)
        if ref is None:
            break  # a storage nobody refers to: its size is unknown, so are the ones after it
        offsets[key] = position + 8
        position += 8 + ref.numel * ref.stype.item[0]
    if position > file_size:
        raise UnreadableFile(f"truncated: the storages need {position} bytes, the file has {file_size} (an interrupted download?)")

    def reader(key: str, start: int, size: int):
        if key not in offsets:
            raise UnreadableFile(f"cannot locate storage {key} in the legacy torch file")
        fh.seek(offsets[key] + start)
        return fh, False

    refusal = None
    if module_classes:
        refusal = (f"its safe loader refuses old (non-zip) torch files that store a class ({module_classes[0]}) the way "
                   "this one does (safe.py:27 takes storages only); re-save the file with a current torch or as .safetensors")
    return TorchFile(root, "legacy", storages, reader, refusal, globals_used)


def open_torch_file(path: str) -> tuple[TorchFile, object]:
    """(TorchFile, open file handle to close) for ``path``; UnreadableFile with what the
    file really is when it is not a torch file."""
    fh = open(path, "rb")  # noqa: SIM115 - the caller closes it (tensor bytes are read later)
    try:
        file_size = os.fstat(fh.fileno()).st_size
        return _open_stream(fh, path, file_size), fh
    except BaseException:
        fh.close()
        raise


def _open_stream(fh, path: str, file_size: int) -> TorchFile:
    if file_size == 0:
        raise UnreadableFile("an empty file (0 bytes)")
    head = fh.read(sniff.HEAD_BYTES)
    fh.seek(0)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _open_zip(fh, path, file_size)
    if head[:1] == b"\x80":
        return _open_legacy(fh, path, file_size)
    if head.startswith(b"\x1f\x8b") or head[257:262] == b"ustar":
        raise UnreadableFile("a tar or gzip archive (torch's pre-1.0 format or a packed download): not inspected")
    raise UnreadableFile(sniff.not_what_it_claims(path, head, file_size) or sniff.unknown_bytes(path))


def load_torch_bytes(data: bytes) -> TorchFile:
    """A torch file held in memory (e.g. inside a PNG chunk)."""
    return _open_stream(io.BytesIO(data), "embedded.pt", len(data))
