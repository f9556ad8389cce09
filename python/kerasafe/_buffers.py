"""Buffers that file values are read into: aligned so that a TensorFlow variable being loaded
can take one over instead of copying it (see ``_keras_state.filled_from_file``)."""

from __future__ import annotations

import ctypes
import mmap
import sys
from typing import Any

import numpy as np

ALIGNMENT = 64
"""Byte alignment of the buffers: TensorFlow's (its allocator's, and what it checks before
taking over a buffer it did not allocate)."""


class OwnedValue(np.ndarray):
    """A value just read from a file into a buffer of its own, aligned to :data:`ALIGNMENT`,
    that nothing else refers to: a TensorFlow variable being loaded may take the buffer over
    instead of copying it."""


_MADV_NOHUGEPAGE = 15  # Linux
_SMALL_PAGES_FROM = 4 << 20  # numpy asks for huge pages from here up
_madvise: Any = None


def _small_pages(raw: np.ndarray) -> None:
    """Ask Linux for 4 KiB pages under ``raw`` (untouched yet), undoing numpy's huge-page
    advice. Measured on a 2-core VM, reading a 1.16 GB model's values into fresh buffers: 0.46-0.51 s
    with 4 KiB pages every time; 0.15 s with huge pages when the kernel had them at hand, 1-2 s
    when it did not, as on the first load in a process. TensorFlow's own buffers use 4 KiB pages."""
    global _madvise
    if _madvise is None:
        libc = ctypes.CDLL(None) if sys.platform.startswith("linux") else None  # the process links libc
        _madvise = getattr(libc, "madvise", False)
        if _madvise:
            _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if not _madvise:
        return
    page = mmap.PAGESIZE
    start = -(-raw.ctypes.data // page) * page
    end = (raw.ctypes.data + raw.nbytes) // page * page
    if end > start:
        _madvise(start, end - start, _MADV_NOHUGEPAGE)  # advice only: a failure changes nothing


def aligned_empty(nbytes: int) -> np.ndarray:
    """``nbytes`` uninitialized bytes starting at a multiple of :data:`ALIGNMENT`."""
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)  # fresh pages: touched once, by the read
    if raw.nbytes >= _SMALL_PAGES_FROM:
        _small_pages(raw)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + nbytes]


def owned(shape: Any, dtype: np.dtype) -> OwnedValue:
    """An uninitialized :class:`OwnedValue` of ``shape`` and ``dtype``, for a reader to fill."""
    shape = tuple(int(d) for d in shape)
    count = int(np.prod(shape, dtype=np.int64))
    return aligned_empty(count * dtype.itemsize).view(dtype).reshape(shape).view(OwnedValue)
