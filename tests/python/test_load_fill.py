"""Loading builds variables without running Keras's initializers (the file's values are their
first); everything the file does not hold must still get its initializer's value."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import _keras_state

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")


@keras.saving.register_keras_serializable(package="kerasafe_fill_test")
class KeepsOneVariable(keras.layers.Layer):
    """Saves its kernel only; ``offset`` (constant 7) is left for the initializer to fill."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), initializer="glorot_uniform", name="kernel")
        self.offset = self.add_weight(shape=(3,), initializer=keras.initializers.Constant(7.0), trainable=False, name="offset")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel) + self.offset

    def save_own_variables(self, store):
        store["0"] = self.kernel

    def load_own_variables(self, store):
        self.kernel.assign(store["0"])


def _model():
    model = keras.Sequential([keras.Input((4,)), KeepsOneVariable(), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.train_on_batch(x, np.zeros((8, 2), "float32"))
    return model, x


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the unfilled path is TensorFlow's")
@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m_dir"])
def test_variables_the_file_lacks_get_their_initializer(tmp_path: Path, name: str):
    model, x = _model()
    path = tmp_path / name
    kerasafe.save_model(model, path)
    back = kerasafe.load_model(path)
    np.testing.assert_array_equal(back.layers[0].offset.numpy(), np.full(3, 7.0, "float32"))
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    # Optimizer state came from the file: one more step matches the original's.
    y = np.ones((8, 2), "float32")
    np.testing.assert_allclose(back.train_on_batch(x, y), model.train_on_batch(x, y), rtol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the unfilled path is TensorFlow's")
def test_only_the_loading_thread_skips_initializers():
    made = {}

    def other_thread():
        made["var"] = keras.Variable(keras.initializers.Constant(3.0)((5,)), name="other")
        made["init"] = keras.Variable(initializer=keras.initializers.Constant(4.0), shape=(5,), name="other_init")

    with _keras_state.filled_from_file():
        unfilled_then_initialized = keras.Variable(initializer=keras.initializers.Constant(5.0), shape=(5,), name="mine")
        assigned = keras.Variable(initializer=keras.initializers.Constant(6.0), shape=(5,), name="assigned")
        assigned.assign(np.arange(5, dtype="float32"))
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    np.testing.assert_array_equal(made["var"].numpy(), np.full(5, 3.0, "float32"))
    np.testing.assert_array_equal(made["init"].numpy(), np.full(5, 4.0, "float32"))
    np.testing.assert_array_equal(unfilled_then_initialized.numpy(), np.full(5, 5.0, "float32"))
    np.testing.assert_array_equal(assigned.numpy(), np.arange(5, dtype="float32"))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the unfilled path is TensorFlow's")
def test_a_failed_load_leaves_keras_unpatched(tmp_path: Path):
    from keras.src.backend.tensorflow.core import Variable

    before = (Variable._initialize_with_initializer, Variable._direct_assign, Variable._convert_to_tensor)
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(kerasafe.errors.FormatError):
        kerasafe.load_model(bad)
    with pytest.raises(RuntimeError):
        with _keras_state.filled_from_file():
            raise RuntimeError("boom")
    assert (Variable._initialize_with_initializer, Variable._direct_assign, Variable._convert_to_tensor) == before
    v = keras.Variable(initializer="ones", shape=(2,))
    np.testing.assert_array_equal(v.numpy(), np.ones(2, "float32"))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the unfilled path is TensorFlow's")
def test_threads_loading_at_once_leave_keras_unpatched(tmp_path: Path):
    from keras.src.backend.tensorflow.core import Variable

    before = (Variable._initialize_with_initializer, Variable._direct_assign, Variable._convert_to_tensor)
    model, x = _model()
    path = tmp_path / "m.keras"
    kerasafe.save_model(model, path)
    want = model.predict(x, verbose=0)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def load_twice():
        try:
            start.wait()
            for _ in range(2):
                np.testing.assert_allclose(kerasafe.load_model(path).predict(x, verbose=0), want, rtol=1e-6, atol=1e-6)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=load_twice) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert (Variable._initialize_with_initializer, Variable._direct_assign, Variable._convert_to_tensor) == before
    fresh = keras.Variable(initializer=keras.initializers.Constant(2.0), shape=(3,))
    np.testing.assert_array_equal(fresh.numpy(), np.full(3, 2.0, "float32"))
