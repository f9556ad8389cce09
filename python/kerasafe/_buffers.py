"""Buffers that file values are read into: aligned so that a TensorFlow variable being loaded
can take one over instead of copying it (see ``_keras_state.filled_from_file``)."""

from __future__ import annotations

from typing import Any

import numpy as np

ALIGNMENT = 64
"""Byte alignment of the buffers: TensorFlow's (its allocator's, and what it checks before
taking over a buffer it did not allocate)."""


class OwnedValue(np.ndarray):
    """A value just read from a file into a buffer of its own, aligned to :data:`ALIGNMENT`,
    that nothing else refers to: a TensorFlow variable being loaded may take the buffer over
    instead of copying it."""


def aligned_empty(nbytes: int) -> np.ndarray:
    """``nbytes`` uninitialized bytes starting at a multiple of :data:`ALIGNMENT`."""
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)  # fresh pages: touched once, by the read
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + nbytes]


def owned(shape: Any, dtype: np.dtype) -> OwnedValue:
    """An uninitialized :class:`OwnedValue` of ``shape`` and ``dtype``, for a reader to fill."""
    shape = tuple(int(d) for d in shape)
    count = int(np.prod(shape, dtype=np.int64))
    return aligned_empty(count * dtype.itemsize).view(dtype).reshape(shape).view(OwnedValue)
