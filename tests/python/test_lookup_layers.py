"""Preprocessing layers whose state is not (only) variables round-trip through every model
format: adapted lookup vocabularies reach ``.h5`` and SavedModel configs, SavedModels track the
lookup tables, and a model of weightless layers saves as a SavedModel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kerasafe

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="lookup tables and SavedModel need TensorFlow")


def _integer_adapted():
    layer = keras.layers.IntegerLookup()
    layer.adapt(np.array([1, 2, 3, 3, 5]))
    return keras.Sequential([keras.Input((2,), dtype="int64"), layer]), tf.constant([[1, 5], [3, 9]], tf.int64)


def _integer_vocabulary():
    layer = keras.layers.IntegerLookup(vocabulary=np.array([1, 2, 3, 5]))
    return keras.Sequential([keras.Input((2,), dtype="int64"), layer]), tf.constant([[1, 5], [3, 9]], tf.int64)


def _integer_tf_idf():
    layer = keras.layers.IntegerLookup(output_mode="tf_idf")
    layer.adapt(np.array([[1, 2], [3, 3], [5, 1]]))
    return keras.Sequential([keras.Input((2,), dtype="int64"), layer]), tf.constant([[1, 5], [3, 9]], tf.int64)


def _string_adapted():
    layer = keras.layers.StringLookup(mask_token="", num_oov_indices=2)
    layer.adapt(np.array(["a", "b", "b", "c"]))
    return keras.Sequential([keras.Input((2,), dtype="string"), layer]), tf.constant([["a", "c"], ["b", "z"]])


def _text_tf_idf():
    layer = keras.layers.TextVectorization(output_mode="tf_idf")
    layer.adapt(np.array(["a b", "b c c"]))
    return keras.Sequential([keras.Input((1,), dtype="string"), layer]), tf.constant([["a b"], ["c z"]])


def _discretization():
    layer = keras.layers.Discretization(num_bins=3)
    layer.adapt(np.arange(30.0).reshape(-1, 1))
    return keras.Sequential([keras.Input((1,)), layer]), tf.constant([[1.0], [15.0], [29.0]])


MODELS = [_integer_adapted, _integer_vocabulary, _integer_tf_idf, _string_adapted, _text_tf_idf, _discretization]


@pytest.mark.parametrize("name", ["m.h5", "m.keras", "m_dir"])
@pytest.mark.parametrize("build", MODELS, ids=lambda f: f.__name__.strip("_"))
def test_preprocessing_state_round_trips(tmp_path: Path, build, name: str):
    model, x = build()
    kerasafe.save_model(model, tmp_path / name)
    back = kerasafe.load_model(tmp_path / name)
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(model(x)), rtol=0, atol=1e-6)
    if name == "m_dir":  # TF Serving's view: the tables travel with the signature
        serve = tf.saved_model.load(str(tmp_path / name)).signatures["serving_default"]
        out = list(serve(x).values())[0]
        np.testing.assert_allclose(out.numpy(), np.asarray(model(x)), rtol=0, atol=1e-6)


def test_adapted_lookup_h5_loads_in_keras(tmp_path: Path):
    model, x = _integer_adapted()
    kerasafe.save_model(model, tmp_path / "m.h5")
    np.testing.assert_array_equal(np.asarray(keras.saving.load_model(tmp_path / "m.h5")(x)), np.asarray(model(x)))
    layer = model.layers[0]
    assert layer.input_vocabulary is None  # the layer itself is left as it was
