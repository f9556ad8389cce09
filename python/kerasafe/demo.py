"""``kerasafe demo``: the tutorial's workflow done end to end on a small model.

Builds and trains a model with the tutorial's custom ``ScaledDense`` layer and ``WeightedMSE``
loss (registered under ``Course``), saves it as savedmodel, h5, keras and weights artifacts with
versions and metadata, reloads each (one of them in a fresh process, which proves registration
works), validates outputs, checks that training resumes exactly, and prints a table. Exits
non-zero when any check fails. Importing this module imports Keras (it defines the classes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from .keras_bridge import keras_module  # noqa: E402

keras = keras_module()
TOLERANCE = 1e-6
FORMATS = ("savedmodel", "h5", "keras", "weights")


def _register(cls: Any) -> Any:
    try:
        from .registry import register_serializable
    except ImportError:  # registry not available: Keras's own registration
        register = keras.saving.register_keras_serializable if hasattr(keras, "saving") else keras.utils.register_keras_serializable
        return register(package="Course")(cls)
    return register_serializable(package="Course")(cls)


@_register
class ScaledDense(keras.layers.Layer):
    """A Dense layer whose output is multiplied by a fixed scale."""

    def __init__(self, units: int, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.scale = scale
        self.dense = keras.layers.Dense(units)

    def build(self, input_shape: Any) -> None:
        self.dense.build(input_shape)

    def call(self, inputs: Any) -> Any:
        return self.scale * self.dense(inputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"units": self.units, "scale": self.scale})
        return config


@_register
class WeightedMSE(keras.losses.Loss):
    """Mean squared error times a constant weight."""

    def __init__(self, weight: float = 1.0, name: str = "weighted_mse", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.weight = weight

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = getattr(keras, "ops", None) or keras.backend  # Keras 3's ops; tf-keras's backend has the same two
        return self.weight * ops.mean(ops.square(y_true - y_pred), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {"weight": self.weight, "name": self.name}


def build_model() -> Any:
    return keras.Sequential(
        [keras.Input((32,), name="features"), ScaledDense(16, scale=0.5), keras.layers.Activation("relu"), keras.layers.Dense(1)],
        name="my_model",
    )


@dataclass
class Row:
    format: str
    version: str
    path: str
    size: int
    save_s: float
    load_s: float
    max_abs_diff: float
    resumed: bool | None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.max_abs_diff < TOLERANCE and self.resumed is not False


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


FRESH_PROCESS_CHECK = """
import json, sys, numpy as np
import kerasafe, kerasafe.demo  # importing the demo registers Course>ScaledDense and Course>WeightedMSE
model = kerasafe.load_artifact(sys.argv[1], name="my_model", format=sys.argv[2])
x = np.linspace(-1.0, 1.0, 32, dtype="float32").reshape(1, 32)
print(json.dumps({"y": np.asarray(model(x, training=False)).tolist(), "loss": type(model.loss).__name__}))
"""


def run(out_dir: str | os.PathLike[str] = "artifacts", *, echo: Callable[[str], None] = print) -> int:
    """Run the demo; returns the process exit code."""
    import kerasafe

    keras.utils.set_random_seed(123)
    echo(f"kerasafe {kerasafe.__version__} demo with Keras {keras.__version__} ({keras.backend.backend()} backend)")
    model = build_model()
    model.compile(optimizer="adam", loss=WeightedMSE(weight=2.0), metrics=["mae"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 32)).astype("float32")
    y = (x[:, :4].sum(axis=1, keepdims=True) * 0.3).astype("float32")
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    echo(f"trained {model.name}: {model.count_params()} parameters, loss {float(model.evaluate(x, y, verbose=0)[0]):.4f}")

    x_test = np.linspace(-1.0, 1.0, 32, dtype="float32").reshape(1, 32)
    y_before = np.asarray(model(x_test, training=False))
    root = Path(out_dir)
    metadata = {
        "training": {"batch_size": 64, "epochs": 3, "seed": 123},
        "data": {"dataset_id": "synthetic-linear-v1", "split": "train", "preprocessing": "none"},
        "notes": "kerasafe demo: the tutorial's model, saved in every format",
    }
    rows: list[Row] = []
    resumed_models: dict[str, Any] = {}
    for fmt in FORMATS:
        artifact, save_s = _timed(lambda: kerasafe.save_artifact(model, root, name="my_model", format=fmt, metadata=metadata, reference_input=x_test))
        loaded, load_s = _timed(lambda: kerasafe.load_artifact(root, name="my_model", format=fmt, version=artifact.version))
        diff = float(np.max(np.abs(y_before - np.asarray(loaded(x_test, training=False)))))
        size = sum(int(f["size"]) for f in artifact.metadata["manifest"]["files"].values())
        if fmt != "weights":  # weights carry no optimizer state: nothing to resume
            loaded.train_on_batch(x[:64], y[:64])
            resumed_models[fmt] = loaded
        rows.append(Row(fmt, artifact.version, str(artifact.path), size, save_s, load_s, diff, None if fmt == "weights" else True))

    # One more step on the original; every reloaded full model must land on the same weights.
    model.train_on_batch(x[:64], y[:64])
    for row in rows:
        if row.format in resumed_models:
            got = resumed_models[row.format]
            worst = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(model.weights, got.weights))
            row.resumed = worst < TOLERANCE and int(got.optimizer.iterations) == int(model.optimizer.iterations)
            if not row.resumed:
                row.note = f"after one more step weights differ by {worst:.2e}"

    # The SavedModel also serves through TensorFlow alone (what TF Serving and converters use).
    serving_ok = True
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        sm_path = next(r.path for r in rows if r.format == "savedmodel")
        serve = tf.saved_model.load(sm_path).signatures["serving_default"]
        served = next(iter(serve(features=tf.constant(x_test)).values()))
        serving_diff = float(np.max(np.abs(y_before - np.asarray(served))))
        serving_ok = serving_diff < TOLERANCE
        echo(f"serving signature: tf.saved_model.load(...).signatures['serving_default'] max_abs_diff {serving_diff:.2e}")

    # A fresh interpreter that only imports the module defining the custom objects.
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS_CHECK, str(root), "keras"], capture_output=True, text=True, timeout=600)
    fresh_ok = False
    if proc.returncode == 0:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        fresh_diff = float(np.max(np.abs(y_before - np.array(result["y"], dtype="float32"))))
        fresh_ok = fresh_diff < TOLERANCE and result["loss"] == "WeightedMSE"
        echo(f"fresh process: keras artifact reloaded with loss {result['loss']}, max_abs_diff {fresh_diff:.2e}")
    else:
        echo(f"fresh process check failed:\n{proc.stderr[-2000:]}")

    _print_table(rows, echo)
    failed = [r.format for r in rows if not r.ok] + ([] if fresh_ok else ["fresh-process reload"]) + ([] if serving_ok else ["serving signature"])
    if failed:
        echo(f"FAILED: {', '.join(failed)}")
        return 1
    echo(f"all {len(rows)} artifacts reload with max_abs_diff < {TOLERANCE}; training resumes exactly from every full model")
    return 0


def _print_table(rows: list[Row], echo: Callable[[str], None]) -> None:
    header = ("format", "version", "path", "size", "save s", "load s", "max abs diff", "resumed", "check")
    cells = [
        (
            r.format,
            r.version,
            r.path,
            _human(r.size),
            f"{r.save_s:.2f}",
            f"{r.load_s:.2f}",
            f"{r.max_abs_diff:.2e}",
            "n/a" if r.resumed is None else ("yes" if r.resumed else "NO"),
            ("ok" if r.ok else "FAIL") + (f" ({r.note})" if r.note else ""),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    echo("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    echo("  ".join("-" * w for w in widths))
    for c in cells:
        echo("  ".join(v.ljust(w) for v, w in zip(c, widths)))


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
