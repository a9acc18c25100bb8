"""Torch pickles (.pt / .pth / .ckpt / .bin) read without running them and without torch.

The restricted unpickler allows exactly the globals AUTOMATIC1111's safe loader allows
(modules/safe.py:34-64 at v1.10.1, 82a973c: ``RestrictedUnpickler.find_class``) and
refuses every other one with the name it asked for. Allowed torch globals are replaced by
inert stand-ins that record shapes and where the bytes are, so nothing of torch runs and
no tensor data is loaded: ``ParameterDict`` keeps its state (the vectors are read through
``_parameters``, as the host's create_embedding_from_data does), ``_rebuild_tensor_v2``
becomes a ``TensorRef``. Both layouts torch writes are read: the zip of torch >= 1.6
and the legacy stream (``torchfile``).
"""

from __future__ import annotations

import collections
import math
import pickle

import numpy as np

from . import sniff
from .report import UnreadableFile

# The pickle part (data.pkl, or the legacy header pickles) of a LoRA is ~150 bytes per
# tensor; 8 MiB is 50,000 tensors. It bounds what the unpickler can build (~30x).
MAX_PICKLE_STREAM_BYTES = 8 * 1024 * 1024

# Storage classes the host allows (safe.py:44) -> (item size, float sign mask for -0.0)
_STORAGE_ITEMS = {
    "FloatStorage": (4, 0x7FFF_FFFF),
    "HalfStorage": (2, 0x7FFF),
    "BFloat16Storage": (2, 0x7FFF),
    "DoubleStorage": (8, 0x7FFF_FFFF_FFFF_FFFF),
    "IntStorage": (4, None),
    "LongStorage": (8, None),
    "ByteStorage": (1, None),
}


class StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends (and ``torch.float32``)."""

    __slots__ = ("item", "name")

    def __init__(self, name: str):
        self.name = name
        self.item = _STORAGE_ITEMS.get(name, (4, 0x7FFF_FFFF))

    def __repr__(self):
        return f"torch.{self.name}"


class StorageRef:
    """A storage the pickle refers to: its key, type and element offset into the stored
    bytes (legacy views share a root storage)."""

    __slots__ = ("key", "numel", "offset", "stype")

    def __init__(self, stype: StorageType, key: str, numel: int, offset: int = 0):
        self.stype, self.key, self.numel, self.offset = stype, key, numel, offset


class TensorRef:
    """What ``_rebuild_tensor_v2`` would have built: only its shape and where it lives."""

    __slots__ = ("offset", "shape", "storage", "stride")

    def __init__(self, storage: StorageRef, offset: int, shape: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def span(self) -> int:
        """Elements from the first to one past the last one the tensor uses."""
        if 0 in self.shape:
            return 0
        return 1 + sum((size - 1) * step for size, step in zip(self.shape, self.stride))


class ArrayTensor:
    """A tensor rebuilt from a numpy array (``_rebuild_device_tensor_from_numpy``)."""

    __slots__ = ("array", "shape")

    def __init__(self, array):
        self.array = array
        self.shape = tuple(array.shape)


class ParameterDictStub:
    """``torch.nn.ParameterDict`` without torch: unpickling only stores its state dict."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}

    @property
    def _parameters(self):
        # what the host reads: getattr(param_dict, '_parameters', param_dict)
        return self.state.get("_parameters", {})


class InertObject(ParameterDictStub):
    """pytorch_lightning's ModelCheckpoint, which the host allows (importing the package
    to do so); here an object that keeps its state and nothing else."""


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, StorageRef):
        raise UnreadableFile("malformed tensor in the pickle (its storage is not a storage)")
    if not (type(storage_offset) is int and storage_offset >= 0 and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and all(type(v) is int and v >= 0 for v in size + stride)):
        raise UnreadableFile("malformed tensor in the pickle (bad offset, shape or stride)")
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, (TensorRef, ArrayTensor)):
        raise UnreadableFile("malformed parameter in the pickle (not a tensor)")
    return data


def _rebuild_device_tensor_from_numpy(data, dtype, device, requires_grad=False):
    if not isinstance(data, np.ndarray):
        raise UnreadableFile("malformed tensor in the pickle (not a numpy array)")
    return ArrayTensor(data)


def _bounded_array_size(shape, dtype) -> None:
    try:
        count = math.prod(int(n) for n in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        itemsize = np.dtype(dtype).itemsize
    except (TypeError, ValueError, OverflowError):
        raise UnreadableFile("malformed numpy array in the pickle") from None
    if count < 0 or count * itemsize > MAX_PICKLE_STREAM_BYTES:
        raise UnreadableFile("the pickle asks for a numpy array larger than the pickle itself; not built")


class _NumpyArrayType:
    """``numpy.ndarray`` as the pickle may use it: the subtype handed to ``_reconstruct``,
    or called to allocate an array (bounded)."""

    def __call__(self, shape, dtype=float, *args, **kwargs):
        _bounded_array_size(shape, dtype)
        return np.ndarray(shape, dtype, *args, **kwargs)


_NDARRAY = _NumpyArrayType()


def _numpy_core(name: str):
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
    return getattr(core.multiarray, name)


def _reconstruct(subtype, shape, dtype):
    if subtype is not _NDARRAY:
        raise UnreadableFile("malformed numpy array in the pickle")
    _bounded_array_size(shape, dtype)
    return _numpy_core("_reconstruct")(np.ndarray, shape, dtype)


def _codecs_encode(*args):
    import _codecs

    return _codecs.encode(*args)  # safe.py:17-19 allows exactly this


def _numpy_scalar(*args):
    return _numpy_core("scalar")(*args)


# (module, name) -> stand-in; the host's list, safe.py:40-61
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_device_tensor_from_numpy"): _rebuild_device_tensor_from_numpy,
    **{("torch", name): StorageType(name) for name in (*_STORAGE_ITEMS, "float32")},
    ("torch.nn.modules.container", "ParameterDict"): ParameterDictStub,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): _NDARRAY,
    ("_codecs", "encode"): _codecs_encode,
    ("pytorch_lightning.callbacks", "model_checkpoint"): InertObject,
    ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"): InertObject,
    ("__builtin__", "set"): set,
}


# What torch.load(weights_only=True) -- the default since torch 2.6 -- accepts of the list
# above (torch/_weights_only_unpickler.py); the rest (nn.ParameterDict, numpy scalars,
# ...) a WebUI running torch >= 2.6 refuses unless it asks for the full unpickler.
WEIGHTS_ONLY_GLOBALS = frozenset({
    "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    *(f"torch.{name}" for name in (*_STORAGE_ITEMS, "float32")), "__builtin__.set",
})


class Refused(UnreadableFile):
    pass


class RestrictedUnpickler(pickle.Unpickler):
    """find_class answers only from _ALLOWED; persistent ids become StorageRefs."""

    def __init__(self, stream, storages: dict):
        super().__init__(stream)
        self._storages = storages  # key -> StorageRef, shared by all loads of one file
        self.module_classes: list[str] = []  # classes sent as legacy ('module', ...) ids
        self.globals_used: set[str] = set()

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            if module.split(".")[0] in ("torch", "numpy", "collections"):
                what = "a type the WebUI's safe loader does not allow either"
            else:
                what = "code, not data: the WebUI's safe loader refuses it too"
            raise Refused(f"refused: the pickle asks for {module}.{name}, {what}; nothing in the file was run")
        self.globals_used.add(f"{module}.{name}")
        return found

    def persistent_load(self, pid):
        # Legacy saves send nn.Module classes as ('module', class, source file, source).
        # The host's persistent_load asserts 'storage' (safe.py:27), so A1111 refuses
        # such files; Forge's plain torch.load reads them. The class itself still came
        # through find_class.
        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module" and pid[1] in (ParameterDictStub, InertObject):
            self.module_classes.append("torch.nn.ParameterDict" if pid[1] is ParameterDictStub else "ModelCheckpoint")
            return pid[1]
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], StorageType) and isinstance(pid[2], str) and type(pid[4]) is int):
            raise UnreadableFile("malformed storage reference in the pickle")
        stype, key, numel = pid[1], pid[2], pid[4]
        root = self._storages.setdefault(key, StorageRef(stype, key, numel))
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        try:
            _view_key, offset, view_size = view
        except (TypeError, ValueError):
            raise UnreadableFile("malformed storage view in the pickle") from None
        if not (type(offset) is int and type(view_size) is int and offset >= 0):
            raise UnreadableFile("malformed storage view in the pickle")
        return StorageRef(stype, key, view_size, offset)


def unpickle(stream, storages: dict, module_classes: list | None = None, globals_used: set | None = None):
    unpickler = RestrictedUnpickler(stream, storages)
    try:
        result = unpickler.load()
        if module_classes is not None:
            module_classes += unpickler.module_classes
        if globals_used is not None:
            globals_used |= unpickler.globals_used
        return result
    except UnreadableFile:
        raise
    except RecursionError:
        raise UnreadableFile("a damaged torch file: its pickled data nests too deeply") from None
    except MemoryError:
        raise UnreadableFile("the pickle needs more memory than a LoRA or embedding could") from None
    except Exception as exc:  # EOF, bad opcodes, a stand-in called with wrong arguments
        raise UnreadableFile(f"a damaged torch file: its pickled data is broken ({sniff.plain_reason(exc)}; "
                             "an interrupted or corrupted download?)") from None
