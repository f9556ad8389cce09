"""``kerasafe demo``: the tutorial's workflow done end to end on a small model.

Builds and trains a model with the tutorial's custom ``ScaledDense`` layer and ``WeightedMSE``
loss, saves it in each format kerasafe writes, reloads every copy, checks outputs against the
original with the tutorial's fixed input, and prints a table. Exits non-zero if a check fails.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TOLERANCE = 1e-6


def _define_custom_objects(keras: Any) -> tuple[type, type]:
    register = keras.saving.register_keras_serializable if hasattr(keras, "saving") else keras.utils.register_keras_serializable

    @register(package="Course")
    class ScaledDense(keras.layers.Layer):
        """A Dense layer whose output is multiplied by a fixed scale."""

        def __init__(self, units: int, scale: float = 1.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = units
            self.scale = scale
            self.dense = keras.layers.Dense(units)

        def call(self, inputs: Any) -> Any:
            return self.scale * self.dense(inputs)

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config.update({"units": self.units, "scale": self.scale})
            return config

    @register(package="Course")
    class WeightedMSE(keras.losses.Loss):
        """Mean squared error times a constant weight."""

        def __init__(self, weight: float = 1.0, name: str = "weighted_mse", **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)
            self.weight = weight

        def call(self, y_true: Any, y_pred: Any) -> Any:
            return self.weight * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)

        def get_config(self) -> dict[str, Any]:
            return {"weight": self.weight, "name": self.name}

    return ScaledDense, WeightedMSE


def build_model(keras: Any, scaled_dense: type) -> Any:
    return keras.Sequential(
        [keras.Input((32,)), scaled_dense(16, scale=0.5), keras.layers.Activation("relu"), keras.layers.Dense(1)],
        name="my_model",
    )


@dataclass
class Row:
    format: str
    path: str
    size: int
    save_s: float
    load_s: float
    max_abs_diff: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.max_abs_diff < TOLERANCE


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    parent = path.parent
    return sum(p.stat().st_size for p in parent.glob(path.name + "*") if p.is_file())


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def run(out_dir: str | os.PathLike[str] = "artifacts", *, echo: Callable[[str], None] = print) -> int:
    """Run the demo; returns the process exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import kerasafe

    from .keras_bridge import keras_module

    keras = keras_module()
    keras.utils.set_random_seed(123)
    scaled_dense, weighted_mse = _define_custom_objects(keras)

    echo(f"kerasafe {kerasafe.__version__} demo with Keras {keras.__version__} ({_backend(keras)} backend)")
    model = build_model(keras, scaled_dense)
    model.compile(optimizer="adam", loss=weighted_mse(weight=2.0), metrics=["mae"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 32)).astype("float32")
    y = (x[:, :4].sum(axis=1, keepdims=True) * 0.3).astype("float32")
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    echo(f"trained {model.name}: {model.count_params()} parameters, loss {float(model.evaluate(x, y, verbose=0)[0]):.4f}")

    x_test = np.linspace(-1.0, 1.0, 32, dtype="float32").reshape(1, 32)
    y_before = np.asarray(model(x_test, training=False))
    root = Path(out_dir)
    rows: list[Row] = []

    # Weights only: a TF checkpoint, reloaded into a model rebuilt from code.
    prefix = root / "my_model" / "weights" / "v1" / "ckpt"
    _, save_s = _timed(lambda: kerasafe.save_weights(model, prefix))
    rebuilt = build_model(keras, scaled_dense)
    _, load_s = _timed(lambda: kerasafe.load_weights(rebuilt, prefix))
    diff = float(np.max(np.abs(y_before - np.asarray(rebuilt(x_test, training=False)))))
    rows.append(Row("weights (TF checkpoint)", str(prefix), _size(prefix), save_s, load_s, diff))

    _print_table(rows, echo)
    failed = [r for r in rows if not r.ok]
    if failed:
        echo(f"FAILED: {', '.join(r.format for r in failed)} differ by more than {TOLERANCE}")
        return 1
    echo(f"all {len(rows)} artifacts reload with max_abs_diff < {TOLERANCE}")
    return 0


def _backend(keras: Any) -> str:
    try:
        return str(keras.backend.backend())
    except Exception:
        return "tensorflow"


def _print_table(rows: list[Row], echo: Callable[[str], None]) -> None:
    header = ("format", "path", "size", "save s", "load s", "max abs diff", "check")
    cells = [
        (r.format, r.path, _human(r.size), f"{r.save_s:.3f}", f"{r.load_s:.3f}", f"{r.max_abs_diff:.2e}", ("ok" if r.ok else "FAIL") + (f" {r.note}" if r.note else ""))
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    echo(line(header))
    echo(line(["-" * w for w in widths]))
    for c in cells:
        echo(line(c))


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
