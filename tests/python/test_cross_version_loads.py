"""Cross-version loads of small compiled-and-trained models, written here by Keras 3 or by tf-keras
(the second environment) and loaded by kerasafe into the other Keras: full models that predict as
the writer did and train on, with their optimizer state where the optimizer exists in both."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO

X = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")
XS = np.random.default_rng(1).standard_normal((8, 5, 4)).astype("float32")

# Written by tf-keras: the files every Keras 3-side test below loads (one tf-keras start).
TF_KERAS_WRITER = """
import json, sys
import numpy as np, tf_keras as keras
keras.utils.set_random_seed(0)
x, xs = np.load("x.npy"), np.load("xs.npy")
y = x[:, :2]
def mlp():
    return keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
info = {}
for metric in ["mae", "accuracy"]:
    m = mlp()
    m.compile("adam", "mse", metrics=[metric])
    m.train_on_batch(x, y)
    m.save(f"metrics_{metric}.h5")
    m.save(f"metrics_{metric}_sm")
m = mlp()
m.compile("adam", "mse")
m.train_on_batch(x, y)
m.save("trained.keras")
np.save("trained_out.npy", m.predict(x, verbose=0))
for name, optimizer in [
    ("sgd", keras.optimizers.SGD(0.01, momentum=0.9)),
    ("rmsprop", keras.optimizers.RMSprop(0.01)),
    ("adam", keras.optimizers.Adam(amsgrad=False)),
]:
    m = mlp()
    m.compile(optimizer, "mse")
    for _ in range(4):
        m.train_on_batch(x, y)
    m.save(f"optimizer_{name}.h5")
    info[name] = [v.numpy().tolist() for v in m.optimizer.variables[1:]]
inner = keras.Sequential(
    [keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True)), keras.layers.TimeDistributed(keras.layers.Dense(2))],
    name="inner",
)
m = keras.Sequential([keras.layers.Input((5, 4)), inner])
m.compile("adam", "mse")
m.train_on_batch(xs, xs[:, :, :2])
m.save("wrappers_sm")
np.save("wrappers_out.npy", m.predict(xs, verbose=0))
json.dump(info, open("info.json", "w"))
"""


@pytest.fixture(scope="module")
def tf_keras_files(tfkeras, tmp_path_factory):
    pytest.importorskip("keras")
    out = tmp_path_factory.mktemp("tf_keras_files")
    np.save(out / "x.npy", X)
    np.save(out / "xs.npy", XS)
    tfkeras(TF_KERAS_WRITER, out)
    return out


def _load_quietly(path: Path):
    import kerasafe

    with warnings.catch_warnings():
        warnings.simplefilter("error", kerasafe.errors.KerasafeWarning)
        return kerasafe.load_model(path)


def _needs_tensorflow_backend() -> None:
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModels load through TensorFlow")


@pytest.mark.parametrize("name", ["metrics_mae.h5", "metrics_accuracy.h5", "metrics_mae_sm", "metrics_accuracy_sm"])
def test_tf_keras_metrics_train_in_keras3(tf_keras_files, name):
    """tf-keras writes ``metrics=["mae"]`` as a MeanMetricWrapper whose ``fn`` is a bare name;
    Keras 3 would keep the string as the function and fail on the first step."""
    if name.endswith("_sm"):
        _needs_tensorflow_backend()
    model = _load_quietly(tf_keras_files / name)
    logs = model.train_on_batch(X, X[:, :2], return_dict=True)
    metric = "mae" if "mae" in name else "accuracy"
    assert metric in logs and np.isfinite(logs[metric]), logs


def test_tf_keras_trained_archive_trains_in_keras3(tf_keras_files):
    """A tf-keras archive's compile_config holds ``steps_per_execution: null``."""
    model = _load_quietly(tf_keras_files / "trained.keras")
    np.testing.assert_allclose(model.predict(X, verbose=0), np.load(tf_keras_files / "trained_out.npy"), rtol=1e-5, atol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == 1
    logs = model.train_on_batch(X, X[:, :2], return_dict=True)
    assert np.isfinite(logs["loss"])
    assert int(model.optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam"])
def test_tf_keras_h5_optimizer_state_crosses_into_keras3(tf_keras_files, name):
    """iterations and the slots (SGD's momentum, RMSprop's velocity, Adam's m and v) land in the
    Keras 3 optimizer, with no "fresh optimizer" warning."""
    model = _load_quietly(tf_keras_files / f"optimizer_{name}.h5")
    optimizer = model.optimizer
    assert int(optimizer.iterations.numpy()) == 4
    # tf-keras names its optimizers "Custom>SGD" in training_config: not a default SGD instead.
    assert type(optimizer).__name__ == {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam"}[name]
    assert np.isclose(float(optimizer.learning_rate.numpy()), 0.001 if name == "adam" else 0.01)
    if name == "sgd":
        assert optimizer.momentum == pytest.approx(0.9)
    stored = json.loads((tf_keras_files / "info.json").read_text())[name]
    slots = [v.numpy() for v in optimizer.variables[2:]]  # after iterations and learning_rate
    assert len(slots) == len(stored)
    for got, want in zip(sorted(slots, key=lambda a: (a.shape, float(np.abs(a).sum()))), sorted((np.asarray(w, dtype="float32") for w in stored), key=lambda a: (a.shape, float(np.abs(a).sum())))):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert any(np.any(s != 0) for s in slots)
    model.train_on_batch(X, X[:, :2])
    assert int(optimizer.iterations.numpy()) == 5


def test_tf_keras_wrapper_savedmodel_loads_as_keras_model(tf_keras_files):
    """Bidirectional(LSTM) and TimeDistributed(Dense) in a nested Sequential: the Keras 2 → 3
    translation reaches the wrapped layers' configs."""
    _needs_tensorflow_backend()
    import keras

    model = _load_quietly(tf_keras_files / "wrappers_sm")
    assert isinstance(model, keras.Model)
    np.testing.assert_allclose(model.predict(XS, verbose=0), np.load(tf_keras_files / "wrappers_out.npy"), rtol=1e-5, atol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == 1
    model.train_on_batch(XS, XS[:, :, :2])


def test_keras3_savedmodel_loads_into_tf_keras(tfkeras, tmp_path):
    """A SavedModel kerasafe wrote from Keras 3 models (Sequential with a BatchNormalization, so
    the weight order matters; functional) rebuilds in tf-keras with its outputs and Adam state."""
    _needs_tensorflow_backend()
    import keras

    import kerasafe

    keras.utils.set_random_seed(0)
    np.save(tmp_path / "x.npy", X)
    sequential = keras.Sequential(
        [keras.layers.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(3)(inputs)))
    for name, model in [("sequential", sequential), ("functional", functional)]:
        model.compile("adam", "mse")
        for _ in range(2):
            model.train_on_batch(X, X[:, :2])
        kerasafe.save_model(model, tmp_path / f"{name}_sm")
        np.save(tmp_path / f"{name}_out.npy", model.predict(X, verbose=0))
    keras3_only = keras.Sequential([keras.layers.Input((4,)), keras.layers.RMSNormalization(), keras.layers.Dense(2)])
    keras3_only.compile("adam", "mse")
    kerasafe.save_model(keras3_only, tmp_path / "keras3_only_sm")
    out = tfkeras(
        f"""
        import json, sys, warnings
        sys.path.insert(0, {str(REPO / "python")!r})
        import numpy as np, kerasafe
        x = np.load("x.npy")
        rows = []
        for name in ["sequential", "functional"]:
            with warnings.catch_warnings():
                warnings.simplefilter("error", kerasafe.errors.KerasafeWarning)
                model = kerasafe.load_model(name + "_sm")
            diff = float(np.abs(model.predict(x, verbose=0) - np.load(name + "_out.npy")).max())
            optimizer = model.optimizer
            variables = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
            moved = any(np.any(v.numpy() != 0) for v in variables[1:])
            iterations = int(optimizer.iterations.numpy())
            model.train_on_batch(x, x[:, :2])
            rows.append([name, type(model).__module__, diff, iterations, moved])
        try:
            kerasafe.load_model("keras3_only_sm")
            refused = None
        except kerasafe.errors.IncompatibleModelError as exc:  # not a raw error from inside tf-keras
            refused = str(exc)
        print(json.dumps([rows, refused]))
        """,
        tmp_path,
    )
    rows, refused = json.loads(out.strip().splitlines()[-1])
    assert refused and "written by Keras 3." in refused, refused
    assert len(rows) == 2, rows
    for name, module, diff, iterations, moved in rows:
        assert module.startswith("tf_keras"), (name, module)
        assert diff < 1e-5 and iterations == 2 and moved, (name, diff, iterations, moved)
