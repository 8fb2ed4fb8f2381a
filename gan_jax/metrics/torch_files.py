"""Reads the tensors of PyTorch weight files with numpy alone: no torch at run time.

Three layouts are understood:

- a zip archive written by `torch.save` (PyTorch >= 1.6): `<root>/data.pkl` plus one file per
  storage under `<root>/data/`;
- a TorchScript archive (`torch.jit.save`): the same zip layout, whose pickle holds the
  module tree (`__torch__.*` objects) instead of a plain state dict;
- the legacy `torch.save` stream (PyTorch < 1.6): pickles followed by raw storages.

`read_tensors(path)` flattens any of them to `{"a.b.weight": np.ndarray}`.
"""

from __future__ import annotations

import collections
import io
import pathlib
import pickle
import struct
import zipfile
from typing import Any

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class WeightsFormatError(ValueError):
    """A file that is not a PyTorch weights file this reader understands."""


class _StorageType:
    def __init__(self, name: str):
        if name not in _STORAGE_DTYPES:
            raise WeightsFormatError(f"unsupported tensor storage type torch.{name}")
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Module:
    """Stands in for a pickled TorchScript module: keeps its attributes, runs nothing."""

    def __init__(self, *args, **kwargs):
        self.state: dict[str, Any] = {}

    def __setstate__(self, state):
        self.state = dict(state) if isinstance(state, dict) else {"state": state}


class _Tensor:
    """A tensor view of a storage, materialised once every storage has been read."""

    def __init__(self, storage, offset, size, stride, *unused):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        itemsize = self.storage.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(self.storage[self.offset:], shape=self.size,
                                               strides=tuple(s * itemsize for s in self.stride))
        return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


def _build_list(values):
    return list(values)


class _Unpickler(pickle.Unpickler):
    """Maps torch's reconstruction functions to numpy; refuses every other global."""

    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _Tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch.jit._pickle" and name.startswith("build_"):
            return _build_list
        if module.startswith("__torch__"):
            return _Module
        raise WeightsFormatError(f"unexpected object {module}.{name} in a weights file")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise WeightsFormatError(f"unexpected persistent id {pid!r}")
        return self._load_storage(str(key), storage_type.dtype, int(numel))


def _flatten(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(obj, _Module):
        obj = obj.state
    if isinstance(obj, _Tensor):
        out[prefix] = obj.numpy()
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)


def _read_zip(path: pathlib.Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pickles:
            raise WeightsFormatError(f"{path} is a zip file without a torch data.pkl")
        root = pickles[0].split("/")[0]

        def load_storage(key, dtype, numel):
            raw = archive.read(f"{root}/data/{key}")
            return np.frombuffer(raw, dtype=dtype, count=numel)

        return _Unpickler(io.BytesIO(archive.read(pickles[0])), load_storage).load()


def _read_legacy(path: pathlib.Path) -> Any:
    with open(path, "rb") as f:
        try:
            magic = pickle.load(f)
        except Exception as e:
            raise WeightsFormatError(f"{path} is not a PyTorch weights file ({e})") from None
        if magic != _LEGACY_MAGIC:
            raise WeightsFormatError(f"{path} is not a PyTorch weights file (bad magic number)")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        wanted: dict[str, tuple[np.dtype, np.ndarray]] = {}

        def load_storage(key, dtype, numel):
            if key not in wanted:
                wanted[key] = (dtype, np.empty(numel, dtype))
            return wanted[key][1]

        obj = _Unpickler(f, load_storage).load()
        keys = pickle.load(f)
        # Storages follow in `keys` order, each as an int64 element count and its raw bytes.
        for key in keys:
            dtype, buffer = wanted[str(key)]
            (count,) = struct.unpack("<q", f.read(8))
            data = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype, count=count)
            buffer[:count] = data
    return obj


def read_tensors(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """All tensors of a PyTorch weights file, by dotted name (TorchScript module paths included)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    obj = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    out: dict[str, np.ndarray] = {}
    _flatten(obj, "", out)
    if not out:
        raise WeightsFormatError(f"{path} holds no tensors")
    return out
