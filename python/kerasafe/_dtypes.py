"""numpy dtypes for the dtype names the core uses (bfloat16 and float8 through ml_dtypes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidArgumentError

_EXTENDED = ("bfloat16", "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz")


def to_numpy(name: str) -> np.dtype[Any]:
    """The numpy dtype for a core dtype name; strings become object arrays of ``bytes``."""
    if name == "string":
        return np.dtype(object)
    if name in _EXTENDED:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    try:
        return np.dtype(name)
    except TypeError:
        raise InvalidArgumentError(f"kerasafe cannot hold dtype {name!r} in numpy") from None


def name_of(dtype: np.dtype[Any]) -> str:
    """The core dtype name for a numpy dtype."""
    if dtype.kind in "OSU":
        return "string"
    return dtype.name
