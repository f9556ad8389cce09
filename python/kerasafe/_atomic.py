"""Files and directories written by someone else's code (TensorFlow's SavedModel writer, tf-keras's
savers) under a temporary sibling name, then renamed into place: a reader sees the old one or the
finished new one, never half of one. The Rust core does the same for the files it writes itself."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import _core


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def replace_dir(new: Path, final: Path) -> None:
    """Move a finished directory into place. Whatever is at ``final`` (an old directory, a file)
    is swapped with it in one step where the system can (Linux ``renameat2``), so a reader finds
    the old or the new one there at every moment, and then removed; elsewhere it is renamed away
    first, which leaves a moment with nothing at the path."""
    if os.path.lexists(final):
        try:
            if _core.exchange_paths(new, final):
                _remove(new)  # now the old one
                return
        except FileNotFoundError:  # it went away meanwhile
            os.rename(new, final)
            return
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
        os.rename(new, final)
        _remove(old)
    else:
        os.rename(new, final)


@contextmanager
def in_temp_sibling(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A temporary name beside ``path`` (ending in ``suffix``, for writers that choose a format by
    the name) to write a file or a directory to; renamed onto ``path`` when the block ends, removed
    when it raises."""
    final = Path(path)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{threading.get_ident()}{suffix}")
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir():
            replace_dir(tmp, final)
        else:
            os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise
