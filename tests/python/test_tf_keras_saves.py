"""Saving under tf-keras (``TF_USE_LEGACY_KERAS=1``): ``save_model`` to ``.h5``, ``.keras`` and a
SavedModel directory, ``save_weights`` to ``.weights.h5`` and legacy ``.h5``, and ``save_artifact``
in every format. Each reloads with kerasafe (same outputs, optimizer iterations, and one more
training step lands on the same weights as the original's), tf-keras's own loaders read the files,
and Keras 3 (this interpreter) loads the ``.h5`` / ``.keras`` / weights with the same outputs.

One tf-keras interpreter run writes and checks everything (module fixture); the tests assert on
what it reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import errors

from .conftest import REPO

FILES = {"h5": "model.h5", "keras": "model.keras", "savedmodel": "model_dir"}
WEIGHTS = ("w.weights.h5", "w.h5")

TF_KERAS_SCRIPT = """
import json, os, sys, warnings
sys.path.insert(0, {python!r})
import numpy as np, tf_keras as keras, kerasafe
from kerasafe import errors

out = {out!r}
os.chdir(out)
keras.utils.set_random_seed(0)

def build():
    inp = keras.Input((4,), name="x")
    h = keras.layers.Dense(5, activation="relu")(inp)
    h = keras.layers.BatchNormalization()(h)
    return keras.Model(inp, keras.layers.Dense(2)(h), name="tiny")

x = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")
y = np.random.default_rng(1).standard_normal((8, 2)).astype("float32")
model = build()
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
model.fit(x, y, epochs=2, batch_size=4, verbose=0)
expected = model.predict(x, verbose=0)
np.save("x.npy", x)
np.save("expected.npy", expected)
iterations = int(model.optimizer.iterations.numpy())
report = {{"iterations": iterations, "models": {{}}, "weights": {{}}, "artifacts": {{}}}}

files = {files!r}
for fmt, name in files.items():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no advice against the format the user asked for
        kerasafe.save_model(model, name)
for name in {weights!r}:
    kerasafe.save_weights(model, name)
report["listing"] = sorted(os.listdir("."))

# The original takes one more step; each reload must land on the same weights.
model.train_on_batch(x, y)
stepped = [w.numpy() for w in model.weights]

def diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))

for fmt, name in files.items():
    with warnings.catch_warnings():
        warnings.simplefilter("error", errors.KerasafeWarning)
        loaded = kerasafe.load_model(name)
    row = {{
        "class": type(loaded).__module__.split(".")[0],
        "outputs": diff(loaded.predict(x, verbose=0), expected),
        "iterations": int(loaded.optimizer.iterations.numpy()),
    }}
    loaded.train_on_batch(x, y)
    row["step"] = max(diff(a, w.numpy()) for a, w in zip(stepped, loaded.weights))
    native = keras.models.load_model(name)
    row["tf_keras_outputs"] = diff(native.predict(x, verbose=0), expected)
    row["tf_keras_iterations"] = int(native.optimizer.iterations.numpy())
    report["models"][fmt] = row

for name in {weights!r}:
    fresh, native = build(), build()
    kerasafe.load_weights(fresh, name)
    native.load_weights(name)
    report["weights"][name] = [diff(fresh.predict(x, verbose=0), expected), diff(native.predict(x, verbose=0), expected)]

# overwrite=False refuses an existing path, as for Keras 3, and leaves it as it was.
before = os.path.getmtime(files["h5"])
try:
    kerasafe.save_model(model, files["h5"], overwrite=False)
except errors.ArtifactExistsError as exc:
    report["refused"] = str(exc)
report["untouched"] = os.path.getmtime(files["h5"]) == before

# A save tf-keras cannot do: a kerasafe error naming the path, nothing left behind.
os.mkdir("failed")
unbuilt = keras.Sequential([keras.layers.Dense(2)])
for name in ("failed/unbuilt_dir", "failed/unbuilt.h5"):
    try:
        kerasafe.save_model(unbuilt, name)
    except errors.KerasafeError as exc:
        report.setdefault("unbuilt", []).append([type(exc).__name__, str(exc)])
report["failed_listing"] = os.listdir("failed")

for fmt in ("h5", "keras", "savedmodel", "weights"):
    art = kerasafe.save_artifact(model, "artifacts", name="tiny", format=fmt)
    back = kerasafe.load_artifact("artifacts", name="tiny", format=fmt)
    report["artifacts"][fmt] = {{
        "passed": bool(art.comparison.passed),
        "keras_version": art.metadata["keras_version"],
        "class": type(back).__module__.split(".")[0],
        "verified": kerasafe.verify_artifact(art.path).ok,
    }}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def tf_keras_run(tfkeras, tmp_path_factory):
    out = tmp_path_factory.mktemp("tfkeras_saves")
    script = TF_KERAS_SCRIPT.format(python=str(REPO / "python"), out=str(out), files=FILES, weights=WEIGHTS)
    report = json.loads(tfkeras(script, cwd=out).strip().splitlines()[-1])
    return out, report


@pytest.mark.parametrize("fmt", FILES)
def test_tf_keras_model_round_trips_and_resumes_training(tf_keras_run, fmt):
    _, report = tf_keras_run
    row = report["models"][fmt]
    assert row["class"] == "tf_keras"
    assert row["outputs"] < 1e-6
    assert row["iterations"] == report["iterations"] == 4
    assert row["step"] < 1e-6, f"{fmt}: one more step after reload differs from the original's by {row['step']}"


@pytest.mark.parametrize("fmt", FILES)
def test_tf_keras_own_loader_reads_what_kerasafe_wrote(tf_keras_run, fmt):
    _, report = tf_keras_run
    row = report["models"][fmt]
    assert row["tf_keras_outputs"] < 1e-6
    # tf-keras's own SavedModel loader leaves the optimizer fresh; kerasafe's restores it (above).
    assert row["tf_keras_iterations"] == (0 if fmt == "savedmodel" else report["iterations"])


@pytest.mark.parametrize("name", WEIGHTS)
def test_tf_keras_weights_files(tf_keras_run, name):
    _, report = tf_keras_run
    ours, native = report["weights"][name]
    assert ours < 1e-6 and native < 1e-6


def test_tf_keras_saves_are_atomic_and_refuse_to_overwrite(tf_keras_run):
    _, report = tf_keras_run
    assert report["listing"] == sorted([*FILES.values(), *WEIGHTS, "expected.npy", "x.npy"]), report["listing"]
    assert report["refused"].endswith("model.h5: exists and overwrite=False") and report["untouched"]
    assert [kind for kind, _ in report["unbuilt"]] == ["InvalidArgumentError", "InvalidArgumentError"]
    for (_, message), name in zip(report["unbuilt"], ("failed/unbuilt_dir", "failed/unbuilt.h5")):
        assert message.startswith(f"{name}: tf-keras cannot save the model"), message
    assert report["failed_listing"] == [], report["failed_listing"]


@pytest.mark.parametrize("fmt", ["h5", "keras", "savedmodel", "weights"])
def test_tf_keras_artifacts(tf_keras_run, fmt):
    _, report = tf_keras_run
    row = report["artifacts"][fmt]
    assert row == {"passed": True, "keras_version": row["keras_version"], "class": "tf_keras", "verified": True}
    assert row["keras_version"].startswith("2.")


def _keras3():
    return pytest.importorskip("keras")


@pytest.mark.parametrize("fmt", FILES)
def test_keras3_loads_what_kerasafe_wrote_under_tf_keras(tf_keras_run, fmt):
    keras = _keras3()
    out, _ = tf_keras_run
    model = kerasafe.load_model(out / FILES[fmt])
    assert isinstance(model, keras.Model)
    x, expected = np.load(out / "x.npy"), np.load(out / "expected.npy")
    np.testing.assert_allclose(np.asarray(model([x], training=False)), expected, atol=1e-6, rtol=0)
    assert int(model.optimizer.iterations) == 4


@pytest.mark.parametrize("name", WEIGHTS)
def test_keras3_loads_weights_written_under_tf_keras(tf_keras_run, name):
    keras = _keras3()
    out, _ = tf_keras_run
    inp = keras.Input((4,), name="x")
    h = keras.layers.BatchNormalization()(keras.layers.Dense(5, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    kerasafe.load_weights(model, out / name)
    x, expected = np.load(out / "x.npy"), np.load(out / "expected.npy")
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-6, rtol=0)


def test_keras3_refuses_overwrite_the_same_way(tmp_path: Path):
    keras = _keras3()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "m.h5"
    kerasafe.save_model(model, path)
    with pytest.raises(errors.ArtifactExistsError, match="m.h5: exists and overwrite=False"):
        kerasafe.save_model(model, path, overwrite=False)


def test_temp_sibling_is_renamed_into_place_or_removed(tmp_path: Path):
    from kerasafe import _atomic

    target = tmp_path / "m.h5"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with _atomic.in_temp_sibling(target, ".h5") as tmp:
            assert tmp.parent == tmp_path and tmp.name.endswith(".h5") and tmp.name.startswith(".m.h5.tmp-")
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]
    with _atomic.in_temp_sibling(target) as tmp:
        tmp.mkdir()
        (tmp / "saved_model.pb").write_text("new")
    assert (target / "saved_model.pb").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]
