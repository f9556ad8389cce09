"""Progress bars for large saves and loads.

The Rust core counts the bytes it writes, reads and hashes in a ``_core.ProgressCounter``
(two atomic adds per chunk, with the GIL released); a daemon thread here polls the counter every
:data:`POLL_SECONDS` and redraws one ``\\r`` line on stderr. Python is never called per chunk.

Whether a bar is drawn: an explicit ``progress=True/False`` wins; else ``KERASAFE_PROGRESS``
(``1/true/yes/on`` or ``0/false/no/off``); else only when stderr is a terminal and the job
moves at least :data:`THRESHOLD` bytes.

The public API opens a :func:`task`; the modules that call the core pass :func:`current` as
the ``progress=`` argument. A task opened inside another (``save_artifact`` saves a model)
reports to the outer one's bar.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO, Union

from . import _core, _log

__all__ = ["THRESHOLD", "ENV", "enabled", "task", "current", "format_bytes", "path_bytes", "model_bytes", "describe"]

THRESHOLD = 1 << 30
"""Jobs moving at least this many bytes (1 GiB) get a bar by default when stderr is a terminal."""
ENV = "KERASAFE_PROGRESS"
POLL_SECONDS = 0.1

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Task:
    def __init__(self, counter: Any) -> None:
        self.counter = counter  # None: this job shows no progress (nested calls neither)


_active: ContextVar[Union[_Task, None]] = ContextVar("kerasafe_progress", default=None)


def current() -> Any:
    """The ``_core.ProgressCounter`` of the running task, or None: pass it to the core."""
    t = _active.get()
    return None if t is None else t.counter


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:
        return False


def enabled(progress: bool | None, estimate: int | Callable[[], int], stream: Any = None) -> bool:
    """Whether to draw a bar: ``progress``, else ``KERASAFE_PROGRESS``, else a terminal and
    ``estimate`` (bytes, or a function computing them, called only then) ≥ :data:`THRESHOLD`."""
    if progress is not None:
        return bool(progress)
    env = os.environ.get(ENV, "").strip().lower()
    if env in _TRUE:
        return True
    if env in _FALSE:
        return False
    if env:
        _log.logger().warning("%s=%r is neither on (1/true/yes) nor off (0/false/no); ignored", ENV, os.environ[ENV])
    if not _is_tty(sys.stderr if stream is None else stream):
        return False
    try:
        size = estimate() if callable(estimate) else estimate
    except Exception:  # an estimate is never worth failing a save over
        _log.logger().debug("progress: cannot estimate the size", exc_info=True)
        return False
    return size >= THRESHOLD


def format_bytes(n: float) -> str:
    """``999 B``, ``1.5 kB``, ``12.3 MB``, ``1.07 GB`` (decimal units)."""
    if n < 1000:
        return f"{int(n)} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if n < 100 else f"{n:.0f} {unit}"
    return f"{n:.0f} TB"  # pragma: no cover


def _format_seconds(s: float) -> str:
    s = int(s + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _Bar:
    """Draws ``label  done / total  pct  rate  ETA`` on one line, from a poller thread."""

    def __init__(self, label: str, counter: Any, stream: TextIO) -> None:
        self.label = label
        self.counter = counter
        self.stream = stream
        self.start = time.monotonic()
        self.width = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="kerasafe-progress", daemon=True)

    def line(self, final: bool = False) -> str:
        done, total = self.counter.done, self.counter.total
        total = max(total, done)
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed
        parts = [self.label, f"{format_bytes(done)} / {format_bytes(total)}" if total else format_bytes(done)]
        if total:
            parts.append(f"{100 * done // total:3d}%")
        parts.append(f"{format_bytes(rate)}/s")
        if final:
            parts.append(f"in {_format_seconds(elapsed)}")
        elif total and rate > 0 and done < total:
            parts.append(f"ETA {_format_seconds((total - done) / rate)}")
        return "  ".join(parts)

    def draw(self, final: bool = False) -> None:
        text = self.line(final)
        pad = max(self.width - len(text), 0)
        self.width = len(text)
        try:
            self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            self.stream.flush()
        except Exception:  # a closed or broken stream must not break the save
            self.stop.set()

    def _poll(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            self.draw()

    def __enter__(self) -> _Bar:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()
        self.draw(final=True)


@contextmanager
def task(progress: bool | None, label: str, estimate: int | Callable[[], int]) -> Iterator[Any]:
    """Run a public API call, with a bar on stderr when :func:`enabled` says so. Yields the
    counter (None when off). Inside another task, reports to that task's bar instead."""
    if _active.get() is not None:
        yield current()
        return
    stream = sys.stderr
    on = enabled(progress, estimate, stream)
    counter = _core.ProgressCounter() if on else None
    token = _active.set(_Task(counter))
    try:
        if counter is None:
            yield None
        else:
            with _Bar(label, counter, stream):
                yield counter
    finally:
        _active.reset(token)


# -- size estimates, computed only when the decision needs them ------------------------------------


def path_bytes(path: Union[str, "os.PathLike[str]", _core.MemoryFile]) -> int:
    """Bytes of a file (on disk or fetched into memory), of every file under a directory, or of a
    checkpoint prefix's files."""
    if isinstance(path, _core.MemoryFile):
        return path.size
    p = Path(os.fspath(path))
    if p.is_file():
        return p.stat().st_size
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return sum(f.stat().st_size for f in p.parent.glob(f"{p.name}.*") if f.is_file())


def model_bytes(model: Any) -> int:
    """Bytes of a model's weights and optimizer variables."""
    import numpy as np

    variables = list(getattr(model, "weights", []))
    optimizer = getattr(model, "optimizer", None)
    variables += list(getattr(optimizer, "variables", []) or [])
    total = 0
    for v in variables:
        shape = tuple(int(d) for d in v.shape)
        try:
            itemsize = np.dtype(str(getattr(v.dtype, "name", v.dtype))).itemsize
        except TypeError:
            itemsize = 4  # bfloat16 and friends without ml_dtypes: close enough for a threshold
        total += int(np.prod(shape, dtype=np.int64)) * itemsize
    return total


def describe(verb: str, path: Union[str, "os.PathLike[str]"]) -> str:
    name = os.path.basename(os.path.normpath(os.fspath(path))) or os.fspath(path)
    return f"kerasafe: {verb} {name}"
