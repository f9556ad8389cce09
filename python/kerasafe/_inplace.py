"""Reading values from a file straight into the buffers of a model's TensorFlow variables.

``load_weights`` into a model that already holds values can fill each variable's own buffer
instead of handing it a new one: memory the process has already touched, and no extra memory.
On a 2-core VM, alternating the two ways in one process: a 386 MB TF checkpoint loaded in
0.09-0.13 s this way against 0.30-1.09 s into new buffers, a 1.16 GB ``.weights.h5`` in
0.27-0.35 s against 1.09-3.64 s (fresh memory costs page faults, see ``_buffers``).

TensorFlow has no API for writing a variable in place, so the buffer is reached through DLPack
(which hands it out read-only) and written only when nothing but the variable holds it: a tensor
read from the variable and kept (``tf.identity(v)``, ``keras.ops.copy(v)``) shares the buffer
and must keep its value. How many hold a buffer is read from TensorFlow's DLPack context
(``tensorflow/c/eager/dlpack.cc``: the context holds a ``TensorReference``, whose ``TensorBuffer``
is reference-counted). A probe at first use checks that layout, that holding a read raises the
count, and that a write through the pointer reaches the variable; on any surprise, and for any
variable that is not an eager CPU resource variable, callers get None and fall back to new
buffers.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any

import numpy as np

MIN_BYTES = 64 << 10
"""Smaller values are not worth the DLPack round trip; they take the usual path."""

# Offsets on a 64-bit little-endian build (checked by the probe, and per variable below):
_MANAGER_CTX = 48  # DLManagedTensor: DLTensor (48 bytes), then manager_ctx
_CTX_TO_TENSOR = 56  # TfDlManagedContext: TensorReference (8), two std::vectors (48), DLManagedTensor
_BUFFER_REFS = 8  # TensorBuffer: vtable pointer, then its reference count...
_BUFFER_DATA = 16  # ...then the data pointer

_lock = threading.Lock()
_sole_holders: int | None = None  # the count when only the variable and our read hold a buffer
_probed = False


class Storage:
    """A writable view of one variable's buffer (``view``, flat uint8), valid while held."""

    __slots__ = ("view", "_tensor")

    def __init__(self, view: np.ndarray, tensor: Any) -> None:
        self.view, self._tensor = view, tensor  # the read tensor keeps the buffer alive


# A prototype of our own: setting argtypes on ctypes.pythonapi's shared function object would
# change it for every other user in the process.
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(("PyCapsule_GetPointer", ctypes.pythonapi))


def _holders(tf: Any, tensor: Any) -> tuple[int, int] | None:
    """(data pointer, holder count) of an eager tensor's buffer, or None if TensorFlow's DLPack
    context is not laid out as expected."""
    capsule = tf.experimental.dlpack.to_dlpack(tensor)
    managed = _capsule_pointer(capsule, b"dltensor")
    data = ctypes.c_void_p.from_address(managed).value
    context = ctypes.c_void_p.from_address(managed + _MANAGER_CTX).value
    if not data or not context or context + _CTX_TO_TENSOR != managed:
        return None
    buffer = ctypes.c_void_p.from_address(context).value
    if not buffer or ctypes.c_void_p.from_address(buffer + _BUFFER_DATA).value != data:
        return None
    return data, ctypes.c_int64.from_address(buffer + _BUFFER_REFS).value


def _writable(data: int, nbytes: int) -> np.ndarray:
    return np.frombuffer((ctypes.c_char * nbytes).from_address(data), np.uint8)


def _probe(tf: Any) -> int | None:
    """The holder count of a buffer only a variable and our read hold, if writing through it
    behaves as this module assumes; else None."""
    if sys.byteorder != "little" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    variable = tf.Variable(tf.zeros([MIN_BYTES // 4], tf.float32))
    read = variable.value()
    alone = _holders(tf, read)
    if alone is None:
        return None
    kept = tf.identity(variable)
    shared = _holders(tf, read)
    del kept
    if shared is None or shared[0] != alone[0] or shared[1] <= alone[1] or _holders(tf, read) != alone:
        return None
    _writable(alone[0], MIN_BYTES)[:] = 1
    del read
    if not np.all(variable.numpy().view(np.uint8) == 1):
        return None
    return alone[1]


def _sole_holder_count(tf: Any) -> int | None:
    global _sole_holders, _probed
    with _lock:
        if not _probed:
            try:
                _sole_holders = _probe(tf)
            except Exception:  # any surprise: never write in place in this process
                _sole_holders = None
            _probed = True
        return _sole_holders


def storage(variable: Any, dtype: np.dtype, shape: tuple[int, ...]) -> Storage | None:
    """The buffer of ``variable`` (a Keras 3 or tf-keras variable on TensorFlow) to be filled
    with a value of ``dtype`` and ``shape``, or None where that is not safe or not worth it."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    from tensorflow.python.ops.resource_variable_ops import BaseResourceVariable

    inner = variable if isinstance(variable, tf.Variable) else getattr(variable, "_value", None)
    # Plain variables and those created inside a tf.function (an optimizer's slots); distributed
    # and auto-cast variables are not ResourceVariables, and symbolic code has no buffers.
    if not isinstance(inner, BaseResourceVariable) or not tf.executing_eagerly():
        return None
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if nbytes < MIN_BYTES or np.dtype(inner.dtype.as_numpy_dtype) != dtype or tuple(inner.shape) != tuple(shape):
        return None
    if not inner.device.endswith("CPU:0") or dtype.kind not in "fiuc":
        return None
    sole = _sole_holder_count(tf)
    if sole is None:
        return None
    try:
        read = inner.value()
        found = _holders(tf, read)
    except Exception:
        return None
    # Another holder (a kept read) means the buffer is shared: writing it would change that
    # tensor too. A variable in copy-on-read mode (after a sparse update) hands out copies,
    # which nothing else holds: the count is then below ``sole``.
    if found is None or found[1] != sole:
        return None
    return Storage(_writable(found[0], nbytes), read)
