"""Versioned artifacts: what the manifest's hashing costs, measured in one run.

    python benches/bench_artifacts.py --params 100e6 [--formats keras,h5,savedmodel,weights] [--repeat 2]

Rows per format:
- `save_artifact`: kerasafe's whole publish (save, reload, compare outputs, manifest, rename),
  the model's file hashed while it is written;
- `save_artifact, hashed after`: the same with that hashing turned off, so the manifest reads
  the file back (what it did before);
- `save + hashlib`: Keras's save of the same model (`tf.saved_model.save` for SavedModel,
  `tf.train.Checkpoint.write` for weights) plus `hashlib.sha256` over the files, the bare
  minimum a hand-rolled artifact does (no reload, no output check, no fsync, no atomic publish);
- `verify` against `hashlib`: re-reading every file of the artifact and hashing it.
Files are deleted before each timed save (see README.md on this VM's fresh-memory cost).
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
    from kerasafe import _artifact_writes

    model = build(args.params)
    work = Path(tempfile.mkdtemp(prefix="kerasafe-bench-art-", dir=args.dir))
    rows: list[dict[str, Any]] = []
    hashing_on = _artifact_writes.active

    def clear() -> None:
        for p in work.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    def add(fmt: str, what: str, fn: Callable[[], Any], nbytes: int) -> float:
        seconds = best_of(args.repeat, fn, setup=clear)
        rows.append({"format": fmt, "what": what, "seconds": seconds, "bytes": nbytes, "gb_per_s": nbytes / seconds / 1e9})
        print(f"  {fmt:<11}{what:<34}{seconds:8.3f} s  {nbytes / seconds / 1e9:6.2f} GB/s", flush=True)
        return seconds

    def hashed_after() -> None:
        _artifact_writes.active = lambda: False
        try:
            kerasafe.save_artifact(model, work / "art", name="m", format=fmt)
        finally:
            _artifact_writes.active = hashing_on

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
                "peer_save_and_hash_over_save_artifact": peer / ours,
                "hashlib_over_verify": by_hand / verify,
            }
            print(f"  {fmt}: hashing while writing saves {after - ours:.2f} s ({after / ours:.2f}x); "
                  f"save+hashlib / save_artifact {peer / ours:.2f}; hashlib / verify {by_hand / verify:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nbest of {args.repeat}; kerasafe {kerasafe.__version__}, Keras {keras.__version__}; {platform.machine()}, {os.cpu_count()} cpus")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
