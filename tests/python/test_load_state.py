"""State layers derive from their variables (Normalization's ``mean``/``variance``) is rebuilt
after every load, as Keras's own loaders rebuild it (``finalize_state``): loads allocate variables
unfilled, so without it the layer computes with uninitialised memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kerasafe

from .conftest import REPO

keras = pytest.importorskip("keras")

X = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]], dtype="float32")


def _normalized(data: np.ndarray, seed: int = 0) -> "keras.Model":
    keras.utils.set_random_seed(seed)
    norm = keras.layers.Normalization()
    norm.adapt(data)
    return keras.Sequential([keras.Input((3,)), norm, keras.layers.Dense(2)])


def _adapted() -> "keras.Model":
    data = np.random.default_rng(0).normal(loc=4.0, scale=3.0, size=(20, 3)).astype("float32")
    return _normalized(data)


def _out(model: "keras.Model") -> np.ndarray:
    return np.asarray(model(X))


SAVED_MODEL = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModel needs TensorFlow")


@pytest.mark.parametrize("name", ["m.h5", "m.keras", pytest.param("m_dir", marks=SAVED_MODEL)])
def test_normalization_round_trips_through_every_model_format(tmp_path: Path, name: str):
    model = _adapted()
    kerasafe.save_model(model, tmp_path / name)
    back = kerasafe.load_model(tmp_path / name)
    np.testing.assert_allclose(_out(back), _out(model), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["w.weights.h5", "w.h5", "ckpt"])
def test_normalization_round_trips_through_load_weights(tmp_path: Path, name: str):
    model = _adapted()
    kerasafe.save_weights(model, tmp_path / name)
    # Another adaptation and other Dense weights: everything must come from the file.
    target = _normalized(np.zeros((4, 3), "float32"), seed=7)
    kerasafe.load_weights(target, tmp_path / name)
    np.testing.assert_allclose(_out(target), _out(model), rtol=0, atol=1e-6)


def test_keras_written_h5_with_normalization_matches_keras(tmp_path: Path):
    model = _adapted()
    model.save(tmp_path / "k.h5")
    theirs = _out(keras.saving.load_model(tmp_path / "k.h5"))
    np.testing.assert_allclose(_out(kerasafe.load_model(tmp_path / "k.h5")), theirs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(theirs, _out(model), rtol=0, atol=1e-6)


def test_weightless_discretization_keeps_its_bin_boundaries(tmp_path: Path):
    """finalize_state is for layers with weights: an adapted Discretization's would recompute
    its boundaries from an empty summary."""
    layer = keras.layers.Discretization(num_bins=4)
    layer.adapt(np.arange(40, dtype="float32").reshape(-1, 1))
    model = keras.Sequential([keras.Input((1,)), layer])
    x = np.array([[0.0], [15.0], [25.0], [39.0]], "float32")
    for name in ("d.keras", "d.h5"):
        kerasafe.save_model(model, tmp_path / name)
        back = kerasafe.load_model(tmp_path / name)
        np.testing.assert_array_equal(np.asarray(back(x)), np.asarray(model(x)))


def test_tf_keras_h5_with_normalization_matches_tf_keras(tfkeras, tmp_path: Path):
    """tf-keras writes an .h5, a SavedModel and a TF checkpoint; kerasafe loads them under
    tf-keras and under Keras 3, and agrees with tf-keras's own load."""
    out = tfkeras(
        f"""
        import json, sys
        sys.path.insert(0, {str(REPO / "python")!r})
        import numpy as np, tf_keras as keras, kerasafe
        def build(data, seed):
            keras.utils.set_random_seed(seed)
            norm = keras.layers.Normalization()
            norm.adapt(data)
            return keras.Sequential([keras.Input((3,)), norm, keras.layers.Dense(2)])
        x = np.array({X.tolist()!r}, dtype="float32")
        model = build(np.random.default_rng(0).normal(loc=4.0, scale=3.0, size=(20, 3)).astype("float32"), 0)
        model.save("tfk.h5")
        model.save("tfk_dir")
        model.save_weights("tfk_ckpt")
        theirs = keras.models.load_model("tfk.h5")(x).numpy()
        np.save("theirs.npy", theirs)
        diffs = {{"own": float(np.abs(theirs - model(x).numpy()).max())}}
        for name in ("tfk.h5", "tfk_dir"):
            diffs[name] = float(np.abs(np.asarray(kerasafe.load_model(name)(x)) - theirs).max())
        for name in ("tfk_ckpt", "tfk.h5"):
            target = build(np.zeros((4, 3), "float32"), 7)
            kerasafe.load_weights(target, name)
            diffs["weights " + name] = float(np.abs(target(x).numpy() - theirs).max())
        print(json.dumps(diffs))
        """,
        tmp_path,
    )
    diffs = json.loads(out.strip().splitlines()[-1])
    assert all(d <= 1e-6 for d in diffs.values()), diffs
    theirs = np.load(tmp_path / "theirs.npy")
    for name in ("tfk.h5", "tfk_dir"):
        np.testing.assert_allclose(_out(kerasafe.load_model(tmp_path / name)), theirs, rtol=0, atol=1e-6)
