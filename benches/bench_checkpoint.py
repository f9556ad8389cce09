"""Checkpoint write/read: kerasafe vs tf.train.Checkpoint, safetensors.numpy and numpy.savez.

All peers run in the same process on the same tensors (a few hundred float32 arrays of mixed
sizes, ~1 GB by default), into the same directory, best of N repeats. Prints seconds, GB/s and
the ratio peer_time / kerasafe_time (>1 means kerasafe is faster), and writes JSON.

    python benches/bench_checkpoint.py [--gb 1.0] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_tensors(total_bytes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """~300 arrays: many small (biases), some medium, a few large (kernels)."""
    rng = np.random.default_rng(seed)
    sizes = [256] * 150 + [65_536] * 100 + [1_048_576] * 40
    scale = total_bytes / (4 * sum(sizes))
    tensors = {}
    for i, n in enumerate(sizes):
        count = max(1, int(n * scale))
        tensors[f"model/layer_{i:03d}/kernel"] = rng.standard_normal(count, dtype=np.float32)
    return tensors


def best_of(repeat: int, fn: Callable[[], Any], setup: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where files go (default: a temp dir)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import kerasafe
    from kerasafe import checkpoint

    tensors = make_tensors(int(args.gb * 1e9))
    nbytes = sum(a.nbytes for a in tensors.values())
    work = Path(args.dir or tempfile.mkdtemp(prefix="kerasafe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}

    def clean() -> None:
        for p in work.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()

    def record(peer: str, op: str, seconds: float) -> None:
        results.setdefault(peer, {})[op] = seconds

    # kerasafe
    ks = str(work / "ks")
    record("kerasafe", "write", best_of(args.repeat, lambda: checkpoint.write(ks, tensors), clean))
    checkpoint.write(ks, tensors)
    got = checkpoint.read(ks)
    assert all(np.array_equal(got[k], v) for k, v in tensors.items())
    del got
    record("kerasafe", "read", best_of(args.repeat, lambda: checkpoint.read(ks)))

    # safetensors
    try:
        from safetensors.numpy import load_file, save_file

        st = str(work / "t.safetensors")
        record("safetensors", "write", best_of(args.repeat, lambda: save_file(tensors, st), clean))
        save_file(tensors, st)
        record("safetensors", "read", best_of(args.repeat, lambda: load_file(st)))
    except ImportError:
        print("safetensors not installed: skipped")

    # numpy
    npz = str(work / "t.npz")
    record("numpy.savez", "write", best_of(args.repeat, lambda: np.savez(npz, **{k.replace("/", "_"): v for k, v in tensors.items()}), clean))
    np.savez(npz, **{k.replace("/", "_"): v for k, v in tensors.items()})

    def np_read() -> None:
        with np.load(npz) as f:
            for k in f.files:
                f[k]

    record("numpy.savez", "read", best_of(args.repeat, np_read))

    # TensorFlow
    try:
        import tensorflow as tf

        variables = {k.replace("/", "_"): tf.Variable(v) for k, v in tensors.items()}
        ckpt = tf.train.Checkpoint(**variables)
        tfp = str(work / "tf")
        record("tf.train.Checkpoint", "write", best_of(args.repeat, lambda: ckpt.write(tfp), clean))
        path = ckpt.write(tfp)
        record("tf.train.Checkpoint", "read", best_of(args.repeat, lambda: ckpt.read(path).assert_consumed()))
    except ImportError:
        print("tensorflow not installed: skipped")

    clean()
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{nbytes / 1e9:.2f} GB in {len(tensors)} float32 tensors, best of {args.repeat}; kerasafe {kerasafe.__version__}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}")
    header = f"{'peer':<22}{'write s':>9}{'GB/s':>7}{'ratio':>7}{'read s':>9}{'GB/s':>7}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    base = results["kerasafe"]
    for peer, r in results.items():
        w, rd = r.get("write", float("nan")), r.get("read", float("nan"))
        print(f"{peer:<22}{w:>9.3f}{nbytes / w / 1e9:>7.2f}{w / base['write']:>7.2f}{rd:>9.3f}{nbytes / rd / 1e9:>7.2f}{rd / base['read']:>7.2f}")
    print("ratio = peer seconds / kerasafe seconds (above 1: kerasafe is faster)")
    if args.json:
        Path(args.json).write_text(json.dumps({"bytes": nbytes, "tensors": len(tensors), "results": results}, indent=2))


if __name__ == "__main__":
    main()
