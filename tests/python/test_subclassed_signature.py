"""A subclassed model without Input layers saves as a SavedModel with the input signature Keras
recorded when it was called (as ``model.export()`` derives it); where there is none, the error
is a kerasafe error naming what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import keras_bridge

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModel needs TensorFlow")


@keras.saving.register_keras_serializable(package="kerasafe_signature_test")
class SubModel(keras.Model):
    def __init__(self, units: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="kerasafe_signature_test")
class TwoArgs(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(2)

    def call(self, x, y):
        return self.dense(x) + y


def test_called_and_trained_subclassed_model_saves_as_savedmodel(tmp_path: Path):
    keras.utils.set_random_seed(0)
    model = SubModel(name="sub_model")
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    model.fit(x, np.zeros((8, 2), "float32"), verbose=0)
    assert keras_bridge.input_specs(model) == [("input_0", [None, 3], "float32")]
    kerasafe.save_model(model, tmp_path / "sm")
    back = kerasafe.load_model(tmp_path / "sm")
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(model(x)), rtol=0, atol=1e-6)
    # TF Serving's signature too.
    import tensorflow as tf

    serve = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    out = list(serve(tf.constant(x)).values())[0]
    np.testing.assert_allclose(out.numpy(), np.asarray(model(x)), rtol=0, atol=1e-6)


def test_unrepresentable_signature_is_a_kerasafe_error(tmp_path: Path):
    model = TwoArgs(name="two_args")
    model(np.ones((2, 3), "float32"), np.ones((2, 2), "float32"))
    with pytest.raises(kerasafe.errors.InvalidArgumentError, match=r"two_args.*model\.build\(input_shape\)") as info:
        kerasafe.save_model(model, tmp_path / "sm")
    assert "reference_input" not in str(info.value)
    assert not (tmp_path / "sm").exists()


def test_unbuilt_subclassed_model_is_a_kerasafe_error(tmp_path: Path):
    with pytest.raises(kerasafe.errors.InvalidArgumentError, match="no weights yet"):
        kerasafe.save_model(SubModel(name="never_called"), tmp_path / "sm")
