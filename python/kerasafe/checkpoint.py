"""TensorFlow checkpoints (``PREFIX.index`` + ``PREFIX.data-*``) read and written without TensorFlow.

>>> import numpy as np, kerasafe.checkpoint as ckpt
>>> ckpt.write("/tmp/demo/ckpt", {"w": np.ones((2, 3), "float32")})
>>> ckpt.read("/tmp/demo/ckpt")["w"].shape
(2, 3)
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _artifact_writes, _buffers, _core, _log, _progress, _remote
from ._dtypes import name_of, to_numpy
from .errors import ArtifactNotFoundError, FormatError, InvalidArgumentError

__all__ = ["write", "read", "list_variables", "OBJECT_GRAPH_KEY"]

PathLike = Union[str, "os.PathLike[str]"]
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def write_values(prefix: str, values: list[tuple[str, str, list[int], Any]]) -> None:
    """Write ``as_values`` tuples with the core's bundle writer (progress and artifact hashing
    as this thread's scope says)."""
    _core.checkpoint_write(prefix, values, progress=_progress.current(), for_artifact=_artifact_writes.active())


def _as_bytes(name: str, item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    raise InvalidArgumentError(f"tensor {name!r}: string tensors hold bytes or str, not {type(item).__name__}")


def as_values(name: str, value: Any) -> tuple[str, str, list[int], Any]:
    arr = np.asarray(value)
    if arr.dtype.kind in "SU" and not isinstance(value, np.ndarray):
        # numpy's fixed-width strings drop trailing NULs (a serialized proto can end in one):
        # keep the bytes and str objects as given.
        arr = np.asarray(value, dtype=object)
    shape = list(arr.shape)
    if arr.dtype.kind in "OSU":
        items = [_as_bytes(name, x) for x in arr.reshape(-1).tolist()]
        return (name, "string", shape, items)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    # A flat uint8 view of C-ordered data: the core reads it in place (copies only when the
    # caller's array was not C-contiguous).
    flat = np.asarray(arr, order="C").reshape(-1).view(np.uint8)
    return (name, name_of(arr.dtype), shape, flat)


def _nbytes(values: tuple[str, str, list[int], Any]) -> int:
    data = values[3]
    return int(data.nbytes) if isinstance(data, np.ndarray) else sum(len(b) for b in data)


def write(
    prefix: PathLike, tensors: Mapping[str, Any], *, progress: bool | None = None, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Write ``tensors`` (name → array-like) as a single-shard TF checkpoint at ``prefix``.

    Files are written under temporary names and renamed, so readers never see half a checkpoint.
    String arrays (``bytes``/``str`` objects) are stored as ``DT_STRING``. ``prefix`` may be an
    ``s3://``, ``gs://`` or ``az://`` URL (``storage_options`` as in :func:`kerasafe.save_artifact`).

    ``progress``: draw a progress bar on stderr (True), never (False), or (None) as
    ``KERASAFE_PROGRESS`` says, else only for 1 GiB or more when stderr is a terminal.
    """
    if _remote.is_remote(prefix):
        with _remote.writing_prefix(str(prefix), storage_options) as local:
            write(local, tensors, progress=progress)
        return
    values = [as_values(str(k), v) for k, v in tensors.items()]
    estimate = lambda: sum(_nbytes(v) for v in values)  # noqa: E731
    with _progress.task(progress, _progress.describe("writing", prefix), estimate):
        write_values(os.fspath(prefix), values)


def _reader(prefix: PathLike) -> Any:
    return _core.CheckpointReader(os.fspath(prefix))


def read(
    prefix: PathLike, names: Iterable[str] | None = None, *, progress: bool | None = None, storage_options: Mapping[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """Read all tensors of a checkpoint, or just ``names``; every tensor's CRC32C is verified.

    String tensors come back as object arrays of ``bytes`` (the object graph under
    ``_CHECKPOINTABLE_OBJECT_GRAPH`` is a scalar one). ``progress`` as in :func:`write`.
    ``prefix`` may be an object-storage URL.
    """
    if _remote.is_remote(prefix):
        return _read_remote(str(prefix), names, progress, storage_options)
    reader = _reader(prefix)
    with _progress.task(progress, _progress.describe("reading", prefix), lambda: _data_bytes(prefix) or 0):
        return read_from(reader, prefix, names)


def _read_remote(url: str, names: Iterable[str] | None, progress: bool | None, storage_options: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """Ranged GETs straight into the arrays (no temporary file); partitioned tensors, which the
    ranged reader does not assemble, go through one downloaded copy instead."""
    reader = _remote.native().RemoteCheckpointReader(url, _remote.options(storage_options))
    data_bytes = reader.data_bytes()
    try:
        with _progress.task(progress, _progress.describe("reading", url), lambda: data_bytes):
            return read_from(reader, url, names, data_bytes=data_bytes)
    except InvalidArgumentError as exc:
        if "partitioned" not in str(exc):
            raise
    with _remote.reading_prefix(url, storage_options) as local:
        return read(local, names, progress=progress)


# Buffers up to this size are allocated without looking at the data files (the core then reports
# a truncated or missing file precisely); larger ones must fit in the data files.
_TRUST_BYTES = 64 << 20


def _data_bytes(prefix: PathLike) -> int | None:
    """Total size of ``PREFIX.data-*-of-*`` (None without any): no tensor holds more bytes."""
    base = Path(os.fspath(prefix))
    total = None
    for p in base.parent.glob(f"{glob.escape(base.name)}.data-*-of-*"):
        try:
            total = (total or 0) + p.stat().st_size
        except OSError:
            pass
    return total


def read_from(reader: Any, prefix: PathLike, names: Iterable[str] | None = None, *, data_bytes: int | None = None, owned: bool = False) -> dict[str, np.ndarray]:
    """:func:`read` on an opened ``_core.CheckpointReader`` (or ``RemoteCheckpointReader``, with
    ``data_bytes`` the size of its data objects); with ``owned``, numeric values come in
    ``_buffers.OwnedValue`` buffers, for a model being loaded to take over."""
    entries = {e[0]: e for e in reader.entries()}
    wanted = list(entries) if names is None else list(names)
    if data_bytes is None:
        data_bytes = _data_bytes(prefix)
    out: dict[str, np.ndarray] = {}
    fixed_names: list[str] = []
    buffers: list[np.ndarray] = []
    for name in wanted:
        entry = entries.get(name)
        if entry is None:
            raise FormatError(f"{os.fspath(prefix)}.index: no tensor named {name!r} in the checkpoint")
        _, shape, dtype, size = entry
        if size > max(data_bytes or 0, _TRUST_BYTES):
            # Before allocating: a hostile index can declare terabytes. The core checks every
            # tensor against its data file, but only once the buffer exists.
            if data_bytes is None:
                raise ArtifactNotFoundError(f"{os.fspath(prefix)}.data-*: the checkpoint has no data file for tensor {name!r}")
            raise FormatError(
                f"{os.fspath(prefix)}.index: tensor {name!r} declares {size} bytes but the checkpoint's data files hold {data_bytes} (truncated?)"
            )
        if dtype == "string":
            items = reader.read_strings(name, progress=_progress.current())
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
            out[name] = arr.reshape(shape)
            continue
        try:
            np_dtype = to_numpy(dtype)
        except Exception:
            if names is None:
                _log.logger().warning("skipping %r in %s: dtype %s has no numpy equivalent", name, prefix, dtype)
                continue
            raise FormatError(f"{os.fspath(prefix)}.index: tensor {name!r} has dtype {dtype}, which numpy cannot hold") from None
        arr = _buffers.owned(shape, np_dtype) if owned else np.empty(shape, dtype=np_dtype)
        out[name] = arr
        fixed_names.append(name)
        buffers.append(arr.reshape(-1).view(np.uint8))
    reader.read_into(fixed_names, buffers, progress=_progress.current())  # one call: parallel reads without the GIL
    return {name: out[name] for name in wanted if name in out}


def list_variables(prefix: PathLike, *, storage_options: Mapping[str, Any] | None = None) -> list[tuple[str, tuple[int, ...], str]]:
    """``(name, shape, dtype)`` of every tensor, from the ``.index`` file alone."""
    if _remote.is_remote(prefix):
        reader = _remote.native().RemoteCheckpointReader(str(prefix), _remote.options(storage_options))
        return [(name, tuple(shape), dtype) for name, shape, dtype, _ in reader.entries()]
    return [(name, tuple(shape), dtype) for name, shape, dtype, _ in _reader(prefix).entries()]
