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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def replace_dir(new: Path, final: Path) -> None:
    """Move a finished directory into place; an old one (or a file of that name) is renamed away
    first, then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
    os.rename(new, final)
    if old is not None:
        _remove(old)  # a directory, or a file the new directory replaces


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
