"""Full-model save/load: kerasafe vs Keras's own savers and TensorFlow's, in one run.

A Dense stack of about --params parameters, compiled with Adam and trained one step (so the
optimizer holds two slots per weight: the files carry ~3x the weights). Each peer saves to and
loads from the same directory. The contenders of one comparison take turns, round by round
(kerasafe, peers; then the reverse order), so that each round's timings share the VM's state of
the moment: saves here follow the page cache's write-back, which swings 2-10x within minutes.
Each row gives the best of --repeat rounds and the ratio of the bests, and also the median of
the per-round ratios ("paired"). Ratios are peer seconds / kerasafe seconds for the same format
(above 1: kerasafe is faster). Every save is also raced by a plain write of the same number of
bytes from memory into the page cache ("page-cache write", as `dd` does), for the target of
reaching 70% of that rate. Peak RSS growth is measured per operation by resetting the kernel's
high-water mark (/proc/self/clear_refs).

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


class Contender:
    """One way to do the operation being compared: ``fn`` does it, ``cleanup`` (if any) runs
    untimed before each try; ``path`` is what it writes or reads."""

    def __init__(self, peer: str, path: Path, fn: Callable[[], Any], cleanup: Callable[[], None] | None = None) -> None:
        self.peer, self.path, self.fn, self.cleanup = peer, path, fn, cleanup
        self.times: list[float] = []
        self.peak = self.transient = 0.0

    def once(self) -> None:
        """One timed try, with its peak RSS above the start, and the transient part of that peak:
        above the RSS once the call returned (a loaded model's own variables are not extra
        memory), or above the start if the RSS fell during the call (memory an earlier step left
        behind and this call happened to free is not memory the call needed)."""
        if self.cleanup:
            self.cleanup()
        gc.collect()
        base = rss_now_mb()
        rss_reset()
        t = time.perf_counter()
        result = self.fn()
        self.times.append(time.perf_counter() - t)
        hwm = rss_peak_mb()
        self.peak = max(self.peak, hwm - base)
        self.transient = max(self.transient, hwm - max(rss_now_mb(), base))
        del result


def take_turns(rounds: int, contenders: list[Contender]) -> None:
    """``rounds`` rounds in which every contender runs once: in the given order, then reversed,
    and so on, so no one always runs right after the same neighbour."""
    for i in range(rounds):
        for c in contenders if i % 2 == 0 else contenders[::-1]:
            c.once()


def page_cache_write(path: Path, nbytes: Callable[[], int]) -> Callable[[], None]:
    """Write ``nbytes()`` bytes into a new file at ``path`` in 16 MiB writes of one buffer, as
    ``dd bs=16M`` does: the machine's rate for getting bytes into the page cache."""
    block = memoryview(np.ones(16 << 20, np.uint8))

    def write() -> None:
        left = nbytes()
        with open(path, "wb", buffering=0) as f:
            while left > 0:
                left -= f.write(block[: min(len(block), left)])

    return write


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

    def compare(fmt: str, op: str, contenders: list[Contender]) -> None:
        take_turns(args.repeat, contenders)
        ours = contenders[0]
        for c in contenders:
            seconds, nbytes = min(c.times), size_of(c.path)
            paired = float(np.median([t / o for t, o in zip(c.times, ours.times)]))
            rows.append({"format": fmt, "peer": c.peer, "op": op, "seconds": seconds, "seconds_all": c.times, "bytes": nbytes, "gb_per_s": nbytes / seconds / 1e9,
                         "peak_rss_mb": c.peak, "transient_rss_mb": c.transient, "paired_ratio": paired})
            print(f"  {fmt:<11}{c.peer:<24}{op:<8}{seconds:8.3f} s  {nbytes / seconds / 1e9:6.2f} GB/s  +{c.peak:7.0f} MB (transient {c.transient:.0f} MB)"
                  f"  rounds {' '.join(f'{t:.3f}' for t in c.times)}", flush=True)

    def saves(fmt: str, ours: Contender, *peers: Contender) -> None:
        """A save comparison, raced by a plain page-cache write of as many bytes as kerasafe's file."""
        raw = work / f"raw-{fmt}"
        write = page_cache_write(raw, lambda: size_of(ours.path))
        ours.fn()  # so the first round's plain write knows its size
        compare(fmt, "save", [ours, *peers, Contender("page-cache write", raw, write, clean(raw))])
        clean(raw)()

    formats = args.formats.split(",")
    print(f"model: {nparams / 1e6:.1f}M parameters with Adam state; files in {work}")
    if "keras" in formats:
        ks, kk = work / "ks.keras", work / "k.keras"
        saves("keras", Contender("kerasafe", ks, lambda: kerasafe.save_model(model, ks), clean(ks)), Contender("keras", kk, lambda: model.save(kk), clean(kk)))
        compare("keras", "load", [Contender("kerasafe", ks, lambda: kerasafe.load_model(ks)), Contender("keras", kk, lambda: keras.models.load_model(kk))])
        clean(ks)(), clean(kk)()
    if "h5" in formats:
        ks, kk = work / "ks.h5", work / "k.h5"
        saves("h5", Contender("kerasafe", ks, lambda: kerasafe.save_model(model, ks), clean(ks)), Contender("keras", kk, lambda: model.save(kk), clean(kk)))
        compare("h5", "load", [Contender("kerasafe", ks, lambda: kerasafe.load_model(ks)), Contender("keras", kk, lambda: keras.models.load_model(kk))])
        # Keras 3.15's .h5 loader returns a fresh optimizer even when compiling (2 variables where
        # the file holds Adam's 94 values); kerasafe restores them. Without compiling, both do
        # the same work.
        compare("h5", "loadnc", [Contender("kerasafe", ks, lambda: kerasafe.load_model(ks, compile=False)), Contender("keras", kk, lambda: keras.models.load_model(kk, compile=False))])
        clean(ks)(), clean(kk)()
    if "weights" in formats:
        ks, kk = work / "ks.weights.h5", work / "k.weights.h5"
        saves("weights.h5", Contender("kerasafe", ks, lambda: kerasafe.save_weights(model, ks), clean(ks)), Contender("keras", kk, lambda: model.save_weights(kk), clean(kk)))
        compare("weights.h5", "load", [Contender("kerasafe", ks, lambda: kerasafe.load_weights(model, ks)), Contender("keras", kk, lambda: model.load_weights(kk))])
        clean(ks)(), clean(kk)()
        # TF checkpoints: Keras 3 has no saver for them; TensorFlow's object-based one is the
        # peer, over the same variables (save_weights stores the model's, not the optimizer's).
        ours, theirs = work / "ks_ckpt" / "ckpt", work / "tf_ckpt" / "ckpt"
        ours.parent.mkdir(exist_ok=True)
        theirs.parent.mkdir(exist_ok=True)
        checkpoint = tf.train.Checkpoint(weights=[v.value for v in model.weights])

        def clean_prefix(prefix: Path) -> Callable[[], None]:
            return lambda: [p.unlink() for p in prefix.parent.glob(prefix.name + ".*")]

        saves("tf-ckpt", Contender("kerasafe", ours.parent, lambda: kerasafe.save_weights(model, ours), clean_prefix(ours)),
              Contender("tf.train.Checkpoint", theirs.parent, lambda: checkpoint.write(str(theirs)), clean_prefix(theirs)))
        compare("tf-ckpt", "load", [Contender("kerasafe", ours.parent, lambda: kerasafe.load_weights(model, ours)),
                                    Contender("tf.train.Checkpoint", theirs.parent, lambda: checkpoint.read(str(theirs)).assert_consumed())])
        clean(ours.parent)(), clean(theirs.parent)()
    if "savedmodel" in formats:
        ks, tfp, ex = work / "ks_sm", work / "tf_sm", work / "export_sm"
        saves("savedmodel", Contender("kerasafe", ks, lambda: kerasafe.save_model(model, ks), clean(ks)),
              Contender("tf.saved_model", tfp, lambda: tf.saved_model.save(model, str(tfp)), clean(tfp)),
              Contender("keras model.export", ex, lambda: model.export(str(ex), verbose=False), clean(ex)))
        compare("savedmodel", "load", [Contender("kerasafe", ks, lambda: kerasafe.load_model(ks)), Contender("tf.saved_model", tfp, lambda: tf.saved_model.load(str(tfp)))])
        for p in (ks, tfp, ex):
            clean(p)()
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{nparams / 1e6:.1f}M parameters, best of {args.repeat} rounds taken in turns; kerasafe {kerasafe.__version__}, Keras {keras.__version__}, TF {tf.__version__}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}")
    print(f"{'format':<11}{'op':<8}{'peer':<22}{'seconds':>9}{'GB/s':>7}{'peak MB':>9}{'trans. MB':>10}{'ratio':>8}{'paired':>8}")
    for r in rows:
        ours = next(x for x in rows if x["format"] == r["format"] and x["op"] == r["op"] and x["peer"] == "kerasafe")
        r["ratio_vs_kerasafe"] = r["seconds"] / ours["seconds"]
        print(f"{r['format']:<11}{r['op']:<8}{r['peer']:<22}{r['seconds']:>9.3f}{r['gb_per_s']:>7.2f}{r['peak_rss_mb']:>9.0f}{r['transient_rss_mb']:>10.0f}"
              f"{r['ratio_vs_kerasafe']:>8.2f}{r['paired_ratio']:>8.2f}")
    print("ratio = peer's best seconds / kerasafe's best (above 1: kerasafe is faster); paired = the median of the")
    print("per-round ratios; for the page-cache write, the ratio is the share of that write rate kerasafe reached.")
    print("peak = RSS high-water mark above the start; trans. = that mark above the RSS after the call (memory")
    print("the call needed only while it ran); loadnc = load_model(compile=False)")
    if args.json:
        Path(args.json).write_text(json.dumps({"params": nparams, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
