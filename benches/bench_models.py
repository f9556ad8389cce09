"""Full-model save/load: kerasafe vs Keras's own savers and TensorFlow's, in one run.

A Dense stack of about --params parameters, compiled with Adam and trained one step (so the
optimizer holds two slots per weight: the files carry ~3x the weights). Each peer saves to and
loads from the same directory; best of --repeat. Ratios are peer seconds / kerasafe seconds for
the same format (above 1: kerasafe is faster). Peak RSS growth is measured per operation by
resetting the kernel's high-water mark (/proc/self/clear_refs).

    python benches/bench_models.py --params 100e6 [--repeat 2] [--json out.json]
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402


def rss_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def rss_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(params: float) -> Any:
    import keras

    width = 2048
    layers = max(1, int(params // (width * width)))
    model = keras.Sequential([keras.Input((width,))] + [keras.layers.Dense(width) for _ in range(layers)], name="bench")
    model.compile(optimizer="adam", loss="mean_squared_error")
    x = np.zeros((2, width), "float32")
    model.train_on_batch(x, x)
    return model


def measure(repeat: int, fn: Callable[[], Any], cleanup: Callable[[], None] | None = None) -> tuple[float, float, float]:
    """Best seconds; peak RSS above the start; and the transient part of that peak: above the
    RSS once the call returned (a loaded model's own variables are not extra memory), or above
    the start if the RSS fell during the call (memory an earlier step left behind and this call
    happened to free is not memory the call needed)."""
    best, peak, transient = float("inf"), 0.0, 0.0
    for _ in range(repeat):
        if cleanup:
            cleanup()
        gc.collect()
        base = rss_now_mb()
        rss_reset()
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
        hwm = rss_peak_mb()
        peak = max(peak, hwm - base)
        transient = max(transient, hwm - max(rss_now_mb(), base))
        del result
    return best, peak, transient


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=float, default=10e6)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--formats", default="keras,h5,weights,savedmodel")
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    import kerasafe

    model = build(args.params)
    nparams = model.count_params()
    work = Path(args.dir or tempfile.mkdtemp(prefix="kerasafe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []

    def clean(p: Path) -> Callable[[], None]:
        def run() -> None:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

        return run

    def add(fmt: str, peer: str, op: str, path: Path, fn: Callable[[], Any], cleanup: Callable[[], None] | None = None) -> None:
        seconds, peak, transient = measure(args.repeat, fn, cleanup)
        nbytes = size_of(path)
        rows.append({"format": fmt, "peer": peer, "op": op, "seconds": seconds, "bytes": nbytes, "gb_per_s": nbytes / seconds / 1e9, "peak_rss_mb": peak, "transient_rss_mb": transient})
        print(f"  {fmt:<11}{peer:<24}{op:<8}{seconds:8.3f} s  {nbytes / seconds / 1e9:6.2f} GB/s  +{peak:7.0f} MB (transient {transient:.0f} MB)", flush=True)

    formats = args.formats.split(",")
    print(f"model: {nparams / 1e6:.1f}M parameters with Adam state; files in {work}")
    if "keras" in formats:
        ks, kk = work / "ks.keras", work / "k.keras"
        add("keras", "kerasafe", "save", ks, lambda: kerasafe.save_model(model, ks), clean(ks))
        add("keras", "keras", "save", kk, lambda: model.save(kk), clean(kk))
        add("keras", "kerasafe", "load", ks, lambda: kerasafe.load_model(ks))
        add("keras", "keras", "load", kk, lambda: keras.models.load_model(kk))
        clean(ks)(), clean(kk)()
    if "h5" in formats:
        ks, kk = work / "ks.h5", work / "k.h5"
        add("h5", "kerasafe", "save", ks, lambda: kerasafe.save_model(model, ks), clean(ks))
        add("h5", "keras", "save", kk, lambda: model.save(kk), clean(kk))
        add("h5", "kerasafe", "load", ks, lambda: kerasafe.load_model(ks))
        add("h5", "keras", "load", kk, lambda: keras.models.load_model(kk))
        # Keras 3.15's .h5 loader returns a fresh optimizer even when compiling (2 variables where
        # the file holds Adam's 94 values); kerasafe restores them. Without compiling, both do
        # the same work.
        add("h5", "kerasafe", "loadnc", ks, lambda: kerasafe.load_model(ks, compile=False))
        add("h5", "keras", "loadnc", kk, lambda: keras.models.load_model(kk, compile=False))
        clean(ks)(), clean(kk)()
    if "weights" in formats:
        ks, kk = work / "ks.weights.h5", work / "k.weights.h5"
        add("weights.h5", "kerasafe", "save", ks, lambda: kerasafe.save_weights(model, ks), clean(ks))
        add("weights.h5", "keras", "save", kk, lambda: model.save_weights(kk), clean(kk))
        add("weights.h5", "kerasafe", "load", ks, lambda: kerasafe.load_weights(model, ks))
        add("weights.h5", "keras", "load", kk, lambda: model.load_weights(kk))
        clean(ks)(), clean(kk)()
        # TF checkpoints: Keras 3 has no saver for them; TensorFlow's object-based one is the
        # peer, over the same variables (save_weights stores the model's, not the optimizer's).
        ours, theirs = work / "ks_ckpt" / "ckpt", work / "tf_ckpt" / "ckpt"
        ours.parent.mkdir(exist_ok=True)
        theirs.parent.mkdir(exist_ok=True)
        checkpoint = tf.train.Checkpoint(weights=[v.value for v in model.weights])

        def clean_prefix(prefix: Path) -> Callable[[], None]:
            return lambda: [p.unlink() for p in prefix.parent.glob(prefix.name + ".*")]

        add("tf-ckpt", "kerasafe", "save", ours.parent, lambda: kerasafe.save_weights(model, ours), clean_prefix(ours))
        add("tf-ckpt", "tf.train.Checkpoint", "save", theirs.parent, lambda: checkpoint.write(str(theirs)), clean_prefix(theirs))
        add("tf-ckpt", "kerasafe", "load", ours.parent, lambda: kerasafe.load_weights(model, ours))
        add("tf-ckpt", "tf.train.Checkpoint", "load", theirs.parent, lambda: checkpoint.read(str(theirs)).assert_consumed())
        clean(ours.parent)(), clean(theirs.parent)()
    if "savedmodel" in formats:
        ks, tfp, ex = work / "ks_sm", work / "tf_sm", work / "export_sm"
        add("savedmodel", "kerasafe", "save", ks, lambda: kerasafe.save_model(model, ks), clean(ks))
        add("savedmodel", "tf.saved_model", "save", tfp, lambda: tf.saved_model.save(model, str(tfp)), clean(tfp))
        add("savedmodel", "keras model.export", "save", ex, lambda: model.export(str(ex), verbose=False), clean(ex))
        add("savedmodel", "kerasafe", "load", ks, lambda: kerasafe.load_model(ks))
        add("savedmodel", "tf.saved_model", "load", tfp, lambda: tf.saved_model.load(str(tfp)))
        for p in (ks, tfp, ex):
            clean(p)()
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{nparams / 1e6:.1f}M parameters, best of {args.repeat}; kerasafe {kerasafe.__version__}, Keras {keras.__version__}, TF {tf.__version__}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}")
    print(f"{'format':<11}{'op':<8}{'peer':<22}{'seconds':>9}{'GB/s':>7}{'peak MB':>9}{'trans. MB':>10}{'ratio':>8}")
    for r in rows:
        ours = next(x for x in rows if x["format"] == r["format"] and x["op"] == r["op"] and x["peer"] == "kerasafe")
        r["ratio_vs_kerasafe"] = r["seconds"] / ours["seconds"]
        print(f"{r['format']:<11}{r['op']:<8}{r['peer']:<22}{r['seconds']:>9.3f}{r['gb_per_s']:>7.2f}{r['peak_rss_mb']:>9.0f}{r['transient_rss_mb']:>10.0f}{r['ratio_vs_kerasafe']:>8.2f}")
    print("ratio = peer seconds / kerasafe seconds (above 1: kerasafe is faster); peak = RSS high-water mark above the")
    print("start; trans. = that mark above the RSS after the call (memory the call needed only while it ran);")
    print("loadnc = load_model(compile=False)")
    if args.json:
        Path(args.json).write_text(json.dumps({"params": nparams, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
