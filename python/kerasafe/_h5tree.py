"""An in-memory HDF5 tree that the Rust core writes and reads.

Keras's own legacy-HDF5 helpers are written against h5py groups (``attrs``, ``create_group``,
``create_dataset``); :class:`Group` offers that much, so Keras's code fills our tree and the
Rust core does the file I/O. Attribute values follow h5py's mapping of Python values.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _artifact_writes, _core, _progress
from ._buffers import owned
from ._dtypes import name_of, to_numpy


class _InFile:
    """Where a deferred dataset's values are: ``nbytes`` bytes at ``offset`` of an open file."""

    __slots__ = ("ranges", "offset", "nbytes", "progress")

    def __init__(self, ranges: Any, offset: int, nbytes: int, progress: Any) -> None:
        self.ranges, self.offset, self.nbytes, self.progress = ranges, offset, nbytes, progress

    def read(self, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        value = owned(shape, dtype)
        self.ranges.read_into(self.offset, value.reshape(-1).view(np.uint8), progress=self.progress)
        return value


class Dataset:
    """A dataset: a numpy array plus attributes. Supports ``ds[...] = value`` like h5py.

    A dataset read with its values deferred holds where they are in the file instead, and
    reads them each time they are asked for (a loader asks once, assigns, and lets go), so a
    load holds one value at a time rather than the whole file."""

    def __init__(self, data: np.ndarray | None = None, attrs: dict[str, Any] | None = None, shape: tuple[int, ...] = (), dtype: Any = None, in_file: _InFile | None = None) -> None:
        self.attrs: dict[str, Any] = dict(attrs or {})
        self._data = data
        self._in_file = in_file
        self.shape = tuple(data.shape) if data is not None else tuple(shape)
        self.dtype = data.dtype if data is not None else np.dtype(dtype)

    def __setitem__(self, key: Any, value: Any) -> None:
        value = np.asarray(value)
        if value.shape != self.shape:
            raise ValueError(f"dataset of shape {self.shape} cannot hold a value of shape {value.shape}")
        self._data = value if value.dtype == self.dtype else value.astype(self.dtype)
        self._in_file = None

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.value[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.value if dtype is None else self.value.astype(dtype)

    def take(self) -> np.ndarray:
        """The value, which this dataset then lets go of (a loader assigns each value once; the
        model's variables hold the copy, so the file's arrays need not all live until the end)."""
        value = self.value
        self._data, self._in_file, self._taken = None, None, True
        return value

    @property
    def value(self) -> np.ndarray:
        data = self._data
        if data is None and self._in_file is not None:
            data = self._in_file.read(self.dtype, self.shape)  # not kept: see the class docs
        if data is None:
            raise ValueError("dataset value already handed to a variable" if getattr(self, "_taken", False) else "dataset has no value")
        if self.attrs.get("dtype") == "bfloat16" and data.dtype != to_numpy("bfloat16"):
            return data.view(to_numpy("bfloat16"))
        return data


def _path_parts(path: Any) -> list[str]:
    # h5py accepts bytes names too (Keras passes utf-8 encoded weight names).
    text = path.decode("utf-8") if isinstance(path, (bytes, np.bytes_)) else str(path)
    return [p for p in text.split("/") if p]


class Group:
    """A group: attributes and named children (groups or datasets)."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.children: dict[str, Group | Dataset] = {}

    # h5py-style writing
    def create_group(self, name: str) -> Group:
        parent, leaf = self._parent_for(name)
        if leaf in parent.children:
            raise ValueError(f"group {name!r} exists")
        group = Group()
        parent.children[leaf] = group
        return group

    def require_group(self, name: str) -> Group:
        node = self.get(name)
        if isinstance(node, Group):
            return node
        return self.create_group(name)

    def create_dataset(self, name: str, shape: Any = None, dtype: Any = None, data: Any = None) -> Dataset:
        parent, leaf = self._parent_for(name)
        if data is not None:
            ds = Dataset(np.asarray(data))
        else:
            ds = Dataset(shape=tuple(shape or ()), dtype=dtype)
        parent.children[leaf] = ds
        return ds

    def __setitem__(self, name: str, value: Any) -> None:
        self.create_dataset(name, data=value)

    def _parent_for(self, path: str) -> tuple[Group, str]:
        parts = _path_parts(path)
        node = self
        for part in parts[:-1]:
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = Group()
            if not isinstance(child, Group):
                raise ValueError(f"{part!r} is a dataset, not a group")
            node = child
        return node, parts[-1]

    # h5py-style reading
    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self
        for part in _path_parts(path):
            if not isinstance(node, Group) or part not in node.children:
                return default
            node = node.children[part]
        return node

    def __getitem__(self, path: str) -> Any:
        node = self.get(path)
        if node is None:
            raise KeyError(path)
        return node

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, bytes)) and self.get(path) is not None

    def keys(self) -> list[str]:
        return list(self.children)

    def __iter__(self) -> Iterator[str]:
        return iter(self.children)

    def __len__(self) -> int:
        return len(self.children)


# -- conversion to and from the core's representation ----------------------------------------------


def _attr_to_core(name: str, value: Any) -> tuple[str, Any]:
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return ("bool", bool(value))
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, (bytes, np.bytes_)):
        return ("bytes", bytes(value))
    if isinstance(value, (int, np.integer)):
        return ("int", int(value))
    if isinstance(value, (float, np.floating)):
        return ("float", float(value))
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            return ("fixed_bytes_list", [bytes(x) for x in value.reshape(-1)])
        if value.dtype.kind in "U":
            return ("str_list", [str(x) for x in value.reshape(-1)])
        if value.dtype.kind == "O":
            value = value.reshape(-1).tolist()
        elif value.dtype.kind in "iu":
            return ("ints", [int(x) for x in value.reshape(-1)])
        elif value.dtype.kind == "f":
            return ("floats", [float(x) for x in value.reshape(-1)])
        elif value.dtype.kind == "b":
            return ("ints", [int(x) for x in value.reshape(-1)])
    if isinstance(value, (list, tuple)):
        if not value:
            return ("floats", [])  # what h5py stores for an empty list
        if all(isinstance(x, (bytes, np.bytes_)) for x in value):
            return ("bytes_list", [bytes(x) for x in value])
        if all(isinstance(x, str) for x in value):
            return ("str_list", list(value))
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in value):
            return ("ints", [int(x) for x in value])
        if all(isinstance(x, (int, float, np.number)) for x in value):
            return ("floats", [float(x) for x in value])
    raise TypeError(f"attribute {name!r}: kerasafe cannot store a {type(value).__name__} in HDF5")


def _attr_from_core(kind: str, value: Any) -> Any:
    if kind == "fixed_bytes_list":
        width = max((len(v) for v in value), default=1) or 1
        return np.array(value, dtype=f"S{width}")
    if kind in ("bytes_list", "str_list"):
        return np.array(value, dtype=object)
    if kind in ("ints",):
        return np.array(value, dtype=np.int64)
    if kind == "floats":
        return np.array(value, dtype=np.float64)
    return value


def _to_core(node: Group | Dataset) -> Any:
    attrs = [(k, _attr_to_core(k, v)) for k, v in node.attrs.items()]
    if isinstance(node, Group):
        return ("group", attrs, [(name, _to_core(child)) for name, child in node.children.items()])
    value = node.value if node._data is not None or node._in_file is not None else np.zeros(node.shape, node.dtype)
    if value.dtype.kind in "OSU":
        items = [x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in value.reshape(-1).tolist()]
        return ("dataset", attrs, "string", list(value.shape), items)
    value = np.asarray(value, order="C")
    if value.dtype.byteorder == ">":
        value = value.astype(value.dtype.newbyteorder("<"))
    return ("dataset", attrs, name_of(value.dtype), list(value.shape), value.reshape(-1).view(np.uint8))


def _from_core(raw: Any, ranges: Any = None, progress: Any = None) -> Group | Dataset:
    """The tree the core returned; datasets whose values it deferred (their data is an offset)
    read them through ``ranges`` (a ``_core.FileRanges`` on the same file), counted to
    ``progress``."""
    kind = raw[0]
    attrs = {name: _attr_from_core(k, v) for name, (k, v) in raw[1]}
    if kind == "group":
        group = Group(attrs)
        for name, child in raw[2]:
            group.children[name] = _from_core(child, ranges, progress)
        return group
    _, _, dtype, shape, payload = raw
    if dtype == "string":
        arr = np.empty(len(payload), dtype=object)
        arr[:] = payload
        return Dataset(arr.reshape(shape), attrs)
    if isinstance(payload, int):
        if ranges is None:
            raise ValueError("a deferred dataset needs the file it was deferred to")
        np_dtype = to_numpy(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
        return Dataset(attrs=attrs, shape=tuple(shape), dtype=np_dtype, in_file=_InFile(ranges, payload, nbytes, progress))
    data = np.frombuffer(payload, dtype=to_numpy(dtype)).reshape(shape) if payload is not None else np.empty(shape, to_numpy(dtype))
    return Dataset(data, attrs)


def write(path: str | os.PathLike[str], root: Group) -> None:
    """Write ``root`` as an HDF5 file (temp file + rename, done by the core)."""
    _core.h5_write(os.fspath(path), _to_core(root), progress=_progress.current(), for_artifact=_artifact_writes.active())


def ranges_of(path: str | os.PathLike[str] | _core.MemoryFile) -> Any:
    """A ``_core.FileRanges`` over the file (or fetched bytes) whose deferred values a tree read
    from it points at; opened before the tree is read, so both see the same file."""
    return _core.FileRanges(path if isinstance(path, _core.MemoryFile) else os.fspath(path))


def read(path: str | os.PathLike[str] | _core.MemoryFile, *, values: bool = True, deferred: bool = False) -> Group:
    """Read a whole HDF5 file, on disk or fetched into memory (or, with ``values=False``,
    everything but dataset values). With ``deferred``, large values stay in the file (kept
    open) until a dataset's value is asked for."""
    progress = _progress.current()
    if deferred and values:
        ranges = ranges_of(path)
        group = _from_core(_core.h5_read(path, values, progress=progress, deferred=True), ranges, progress)
    else:
        group = _from_core(_core.h5_read(path, values, progress=progress))
    assert isinstance(group, Group)
    return group


def indexed_values(group: Any) -> list[Any] | None:
    """The values of ``group``'s ``vars/0…N`` datasets in index order (how Keras stores a
    trackable's variables); None when they are missing, empty or not all datasets."""
    stored = group.children.get("vars") if isinstance(group, Group) else None
    if not isinstance(stored, Group) or not stored.children:
        return None
    nodes = [stored.children.get(str(i)) for i in range(len(stored.children))]
    if not all(isinstance(n, Dataset) for n in nodes):
        return None
    return [n.value for n in nodes]


def value_of(value: Any) -> Any:
    """``value`` itself, or a :class:`Dataset`'s value, which the dataset then lets go of."""
    return value.take() if isinstance(value, Dataset) else value
