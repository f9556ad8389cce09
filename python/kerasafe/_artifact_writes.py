"""Which writes are for an artifact being staged: those files are hashed as they are written, and
the artifact's manifest takes that digest rather than reading them back (the core keeps it by
file identity; ``verify_artifact`` always reads)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SCOPE = threading.local()


@contextmanager
def hashing() -> Iterator[None]:
    """Files this thread writes meanwhile (checkpoint bundles, HDF5 files, ``.keras`` archives)
    are hashed while they are written, for the manifest of the artifact being staged."""
    outer = active()
    _SCOPE.active = True
    try:
        yield
    finally:
        _SCOPE.active = outer


def active() -> bool:
    return getattr(_SCOPE, "active", False)
