"""Crash safety and concurrency of the writers, with real processes.

* ``kerasafe.checkpoint.write`` and ``save_artifact`` children are SIGKILLed after random short
  delays, over and over: afterwards the checkpoint is the old complete bundle or a new complete
  one (readable, every CRC valid), and ``list_versions`` shows only versions that verify.
* N processes x M threads publish versions of one model at once: N*M distinct versions, all
  verifiable.

Bounded: about a minute in total. ``KERASAFE_CRASH_RUNS`` overrides the number of kills.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kerasafe import checkpoint

REPO = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("KERASAFE_CRASH_RUNS", "20"))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", PYTHONPATH=str(REPO / "python"))

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def _values(k: int) -> dict[str, np.ndarray]:
    # Big enough that a write takes a while (several MB), distinct per generation k.
    return {
        "a": np.full((512, 1024), k, np.float32),
        "b": np.full((300_000,), k, np.float64),
        "s": np.array([f"gen{k}".encode()], dtype=object),
    }


def _generation(values: dict[str, np.ndarray]) -> int:
    k = int(values["a"].reshape(-1)[0])
    assert (values["a"] == k).all() and (values["b"] == k).all(), "tensors from different generations"
    assert values["s"].reshape(-1)[0] == f"gen{k}".encode()
    return k


CHECKPOINT_WRITER = """
import sys, numpy as np
from kerasafe import checkpoint
prefix, start = sys.argv[1], int(sys.argv[2])
def values(k):
    return {"a": np.full((512, 1024), k, np.float32), "b": np.full((300_000,), k, np.float64),
            "s": np.array([f"gen{k}".encode()], dtype=object)}
print("ready", flush=True)
k = start
while True:
    checkpoint.write(prefix, values(k))
    k += 1
"""


def test_killed_checkpoint_write_leaves_a_complete_bundle(tmp_path):
    prefix = tmp_path / "ckpt"
    checkpoint.write(prefix, _values(0))
    rng = random.Random(1234)
    last, start = 0, 1
    deadline = time.monotonic() + 40
    for _ in range(RUNS):
        if time.monotonic() > deadline:
            break
        child = subprocess.Popen([sys.executable, "-c", CHECKPOINT_WRITER, str(prefix), str(start)], env=ENV, stdout=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        k = _generation(checkpoint.read(prefix))  # raises on a partial/mixed bundle (CRC, sizes)
        assert k == last or k >= start, f"generation {k}: neither the old {last} nor one this child wrote"
        last, start = k, max(k, start) + 1000
        leftovers = [p.name for p in tmp_path.iterdir() if not p.name.startswith("ckpt.")]
        assert not leftovers or all(".tmp" in n for n in leftovers), leftovers


ARTIFACT_WRITER = """
import os, sys, threading
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, numpy as np, kerasafe
root, threads, per_thread, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def model():
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name="tiny")
    m(np.zeros((1, 4), np.float32))
    return m
models = [model() for _ in range(max(threads, 1))]
print("ready", flush=True)
errors = []
def work(i):
    try:
        for j in range(per_thread):
            kerasafe.save_artifact(models[i], root, name="tiny", format="keras",
                                   metadata={"writer": f"{tag}-{i}-{j}"})
    except BaseException as e:  # reported below
        errors.append(repr(e))
if threads == 0:
    while True:
        kerasafe.save_artifact(models[0], root, name="tiny", format="keras")
ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
if errors:
    print("\\n".join(errors), file=sys.stderr)
    sys.exit(1)
"""


def _verify_all(root: Path) -> list:
    from kerasafe.artifacts import list_versions, verify_artifact

    versions = list_versions(root, "tiny")
    for v in versions:
        report = verify_artifact(v.path, check_outputs=False)
        assert report.ok and report.checksums_ok, f"{v.path}: {report.problems}"
    return versions


def test_killed_save_artifact_never_shows_a_partial_version(tmp_path):
    rng = random.Random(99)
    root = tmp_path / "root"
    deadline = time.monotonic() + 60
    runs = 0
    for _ in range(max(RUNS // 4, 3)):
        if time.monotonic() > deadline:
            break
        child = subprocess.Popen([sys.executable, "-c", ARTIFACT_WRITER, str(root), "0", "0", "k"], env=ENV,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 2.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        runs += 1
        _verify_all(root)
    assert runs >= 3


def test_processes_times_threads_publish_distinct_versions(tmp_path):
    procs, threads, per_thread = 3, 2, 2
    root = tmp_path / "root"
    children = [
        subprocess.Popen([sys.executable, "-c", ARTIFACT_WRITER, str(root), str(threads), str(per_thread), f"p{p}"],
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for p in range(procs)
    ]
    for c in children:
        out, err = c.communicate(timeout=600)
        assert c.returncode == 0, err.decode()[-2000:]
    versions = _verify_all(root)
    assert len(versions) == procs * threads * per_thread
    assert len({v.version for v in versions}) == len(versions)
    writers = {v.metadata.get("writer") for v in versions}
    assert len(writers) == procs * threads * per_thread, writers


_WATCH = """
import os, sys, time
path, stop = sys.argv[1], sys.argv[2]
missing = seen = 0
while not os.path.exists(stop):
    seen += 1
    if not os.path.isdir(path):
        missing += 1
print(missing, seen)
"""


def test_replacing_a_directory_never_leaves_the_path_empty(tmp_path):
    """A SavedModel saved over an existing one (`_atomic.replace_dir`): another process looking at
    the path all the while finds a directory there every time it looks."""
    from kerasafe import _atomic

    final, stop = tmp_path / "model", tmp_path / "stop"
    final.mkdir()
    watcher = subprocess.Popen([sys.executable, "-c", _WATCH, str(final), str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # the watcher is looking
        for i in range(400):
            with _atomic.in_temp_sibling(final) as tmp:
                tmp.mkdir()
                (tmp / "generation").write_text(str(i))
    finally:
        stop.touch()
        out, _ = watcher.communicate(timeout=30)
    missing, seen = map(int, out.split())
    assert seen > 1000, out  # it did look, many times
    assert missing == 0, f"the path was missing {missing} of {seen} looks"
    assert (final / "generation").read_text() == "399"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "stop"]


@pytest.mark.parametrize("exchange", ["unsupported", "target vanished"])
def test_replacing_a_directory_where_the_swap_is_not_available(tmp_path, monkeypatch, exchange):
    """Where the system cannot swap (or the old directory went away meanwhile), the new
    directory still ends up at the path, the old one is gone, and nothing is left beside it."""
    from kerasafe import _atomic, _core

    def no_swap(a, b):
        if exchange == "unsupported":
            return False
        raise FileNotFoundError(b)

    monkeypatch.setattr(_core, "exchange_paths", no_swap)
    final = tmp_path / "model"
    final.mkdir()
    (final / "old").write_text("old")
    with _atomic.in_temp_sibling(final) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("new")
        if exchange == "target vanished":
            (final / "old").unlink()
            final.rmdir()
    assert sorted(p.name for p in final.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
