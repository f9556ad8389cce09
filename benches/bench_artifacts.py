"""Versioned artifacts: what the manifest's hashing costs, measured in one run.

    python benches/bench_artifacts.py --params 100e6 [--formats keras,h5,savedmodel,weights] [--repeat 2]

Rows per format:
- `save_artifact`: kerasafe's whole publish (save, reload, compare outputs, manifest, rename),
  the model's file hashed while it is written;
- `save_artifact, hashed after`: the same with that hashing turned off, so the manifest reads
  the file back (what it did before);
- `save_artifact, writeback at commit`: the same without starting the files' writeback once the
  model is written, so the commit's fsync does all of it (what it did before);
- `save + hashlib`: Keras's save of the same model (`tf.saved_model.save` for SavedModel,
  `tf.train.Checkpoint.write` for weights) plus `hashlib.sha256` over the files, the bare
  minimum a hand-rolled artifact does (no reload, no output check, no fsync, no atomic publish);
- `verify` against `hashlib`: re-reading every file of the artifact and hashing it.
Each `save_artifact` row also shows its parts in the fastest run (save, reload, commit: manifest,
fsync, rename). Files are deleted before each timed save (see README.md on this VM's
fresh-memory cost).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).parent))
from bench_checkpoint import best_of  # noqa: E402
from bench_models import build  # noqa: E402


def hashlib_files(root: Path) -> int:
    """SHA-256 of every file under `root`, as a script would; returns the bytes hashed."""
    total = 0
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            total += p.stat().st_size
    return total


def timed_phases() -> dict[str, float]:
    """Times of save_artifact's parts in the last call: the model's save, its reload (into a
    fresh model, for the output check) and the commit (manifest, fsync, rename)."""
    from kerasafe import _core, _formats

    phases: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                phases[name] = time.perf_counter() - t

        return run

    class Staged:
        def __init__(self, staged: Any) -> None:
            self._staged, self.path = staged, staged.path
            self.commit = timed("commit", staged.commit)
            self.abort = staged.abort

    begin = _core.store_begin
    _core.store_begin = lambda *a: Staged(begin(*a))
    _formats.save_into = timed("save", _formats.save_into)
    _formats.load_from = timed("reload", _formats.load_from)
    return phases


def peer_save(model: Any, fmt: str, dest: Path) -> None:
    import tensorflow as tf

    if fmt == "savedmodel":
        tf.saved_model.save(model, str(dest))
    elif fmt == "weights":
        tf.train.Checkpoint(model=model).write(str(dest / "ckpt"))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras 3 calls .h5 legacy
            model.save(str(dest / f"model.{fmt}"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=float, default=100e6)
    ap.add_argument("--formats", default="keras,h5,savedmodel,weights")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import keras

    import kerasafe
    from kerasafe import _artifact_writes, _core

    model = build(args.params)
    phases = timed_phases()
    work = Path(tempfile.mkdtemp(prefix="kerasafe-bench-art-", dir=args.dir))
    rows: list[dict[str, Any]] = []
    hashing_on = _artifact_writes.active

    def clear() -> None:
        for p in work.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    def add(fmt: str, what: str, fn: Callable[[], Any], nbytes: int) -> float:
        runs = []
        for _ in range(args.repeat):
            clear()
            phases.clear()
            seconds = best_of(1, fn)
            runs.append((seconds, dict(phases)))
        seconds, best_phases = min(runs, key=lambda r: r[0])
        rows.append({"format": fmt, "what": what, "seconds": seconds, "bytes": nbytes, "gb_per_s": nbytes / seconds / 1e9, "phases": best_phases})
        shown = "  ".join(f"{k} {v:.3f}" for k, v in best_phases.items())
        print(f"  {fmt:<11}{what:<34}{seconds:8.3f} s  {nbytes / seconds / 1e9:6.2f} GB/s  {shown}", flush=True)
        return seconds

    def hashed_after() -> None:
        _artifact_writes.active = lambda: False
        try:
            kerasafe.save_artifact(model, work / "art", name="m", format=fmt)
        finally:
            _artifact_writes.active = hashing_on

    def late_writeback() -> None:
        start = _core.store_start_writeback
        _core.store_start_writeback = lambda directory: None
        try:
            kerasafe.save_artifact(model, work / "art", name="m", format=fmt)
        finally:
            _core.store_start_writeback = start

    def save_and_hash() -> None:
        (work / "peer").mkdir()
        peer_save(model, fmt, work / "peer")
        hashlib_files(work / "peer")

    summary: dict[str, dict[str, float]] = {}
    try:
        print(f"model: {model.count_params() / 1e6:.1f}M parameters with Adam state")
        for fmt in args.formats.split(","):
            art = kerasafe.save_artifact(model, work / "art", name="m", format=fmt)
            size = sum(e["size"] for e in art.metadata["manifest"]["files"].values())
            ours = add(fmt, "save_artifact", lambda: kerasafe.save_artifact(model, work / "art", name="m", format=fmt), size)
            after = add(fmt, "save_artifact, hashed after", hashed_after, size)
            late = add(fmt, "save_artifact, writeback at commit", late_writeback, size)
            peer = add(fmt, "save + hashlib (peer)", save_and_hash, size)
            art = kerasafe.save_artifact(model, work / "art", name="m", format=fmt)
            verify = best_of(args.repeat, lambda: kerasafe.verify_artifact(art.path, check_outputs=False))
            by_hand = best_of(args.repeat, lambda: hashlib_files(Path(art.path)))
            for what, seconds in (("verify (reads every file)", verify), ("hashlib over the same files", by_hand)):
                rows.append({"format": fmt, "what": what, "seconds": seconds, "bytes": size, "gb_per_s": size / seconds / 1e9})
                print(f"  {fmt:<11}{what:<34}{seconds:8.3f} s  {size / seconds / 1e9:6.2f} GB/s", flush=True)
            clear()
            summary[fmt] = {
                "hashed_after_over_hashed_while_written": after / ours,
                "writeback_at_commit_over_early_writeback": late / ours,
                "peer_save_and_hash_over_save_artifact": peer / ours,
                "hashlib_over_verify": by_hand / verify,
            }
            print(f"  {fmt}: hashing while writing saves {after - ours:.2f} s ({after / ours:.2f}x); early writeback {late - ours:.2f} s; "
                  f"save+hashlib / save_artifact {peer / ours:.2f}; hashlib / verify {by_hand / verify:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nbest of {args.repeat}; kerasafe {kerasafe.__version__}, Keras {keras.__version__}; {platform.machine()}, {os.cpu_count()} cpus")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
