"""Loading builds a Sequential model's graph once, after its last layer (Keras's own
``from_config`` rebuilds it after every layer it adds); the model must come out as Keras
builds it, and Keras must be left as it was."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import _keras_state

keras = pytest.importorskip("keras")

CALLS = {"n": 0}


@keras.saving.register_keras_serializable(package="kerasafe_seq_test")
class CountsCalls(keras.layers.Dense):
    """A Dense layer that counts how often it is called symbolically (while a graph is built)."""

    def compute_output_shape(self, input_shape):
        CALLS["n"] += 1
        return super().compute_output_shape(input_shape)


def _stack(depth: int, with_input: bool = True) -> keras.Model:
    layers = [CountsCalls(4, name=f"d{i}") for i in range(depth)]
    model = keras.Sequential(([keras.Input((4,))] if with_input else []) + layers)
    if not with_input:
        model.build((None, 4))
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.train_on_batch(x, x)
    return model


X = np.linspace(-1, 1, 16, dtype="float32").reshape(4, 4)


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_each_layer_is_called_once_while_loading(tmp_path: Path, name: str):
    model = _stack(6)
    path = tmp_path / name
    kerasafe.save_model(model, path)
    CALLS["n"] = 0
    ours = kerasafe.load_model(path)
    assert CALLS["n"] == 6
    CALLS["n"] = 0
    keras.models.load_model(path) if name.endswith(".keras") else keras.Sequential.from_config(model.get_config())
    assert CALLS["n"] == 6 * 7 // 2  # Keras's own: a rebuild per layer added (1 + 2 + ... + 6)
    np.testing.assert_array_equal(ours.predict(X, verbose=0), model.predict(X, verbose=0))
    assert [len(layer._inbound_nodes) for layer in ours.layers] == [1] * 6
    assert ours.built and ours.input_shape == model.input_shape and ours.output_shape == model.output_shape
    # The optimizer state came along: one more step lands where the original's does.
    np.testing.assert_allclose(ours.train_on_batch(X, X), model.train_on_batch(X, X), rtol=1e-6)


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_a_model_built_from_a_shape_without_an_input_layer(tmp_path: Path, name: str):
    model = _stack(3, with_input=False)
    path = tmp_path / name
    kerasafe.save_model(model, path)
    back = kerasafe.load_model(path)
    assert back.built and back.input_shape == model.input_shape
    np.testing.assert_array_equal(back.predict(X, verbose=0), model.predict(X, verbose=0))


def test_nested_sequential_models(tmp_path: Path):
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, name="in1"), keras.layers.Dense(3, name="in2")], name="inner")
    model = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2, name="out")])
    model.compile(optimizer="sgd", loss="mse")
    for name in ("m.keras", "m.h5"):
        kerasafe.save_model(model, tmp_path / name)
        back = kerasafe.load_model(tmp_path / name)
        assert [type(layer).__name__ for layer in back.layers] == ["Sequential", "Dense"]
        np.testing.assert_array_equal(back.predict(X, verbose=0), model.predict(X, verbose=0))


def test_keras_is_left_as_it_was_and_other_threads_untouched(tmp_path: Path):
    from keras.src.models.sequential import Sequential

    before = (Sequential.__dict__["add"], Sequential.__dict__["from_config"])
    config = _stack(4).get_config()
    seen = {}

    def other_thread():
        CALLS["n"] = 0
        Sequential.from_config(config)
        seen["calls"] = CALLS["n"]

    with _keras_state.sequential_built_once():
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert seen["calls"] == 4 * 5 // 2  # the stock behaviour in a thread that is not loading
    with pytest.raises(RuntimeError):
        with _keras_state.sequential_built_once():
            raise RuntimeError("boom")
    assert (Sequential.__dict__["add"], Sequential.__dict__["from_config"]) == before
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(kerasafe.errors.FormatError):
        kerasafe.load_model(bad)
    assert (Sequential.__dict__["add"], Sequential.__dict__["from_config"]) == before


@pytest.mark.parametrize("name", ["w.weights.h5", "m.keras"])
def test_walks_work_out_each_kinds_skip_set_once(tmp_path: Path, monkeypatch, name: str):
    """Keras's save/load walks mean to cache each kind of object's attribute skip set but never
    find their cache (Keras 3.15); ours compute it once per kind and walk, then leave Keras as
    it was."""
    from keras.src.saving import saving_lib

    stock = saving_lib.get_attr_skipset
    kinds: list[str] = []

    def counted(obj_type):
        kinds.append(obj_type)
        return stock(obj_type)

    monkeypatch.setattr(saving_lib, "get_attr_skipset", counted)
    model = _stack(6)
    path = tmp_path / name
    (kerasafe.save_weights if name.endswith(".weights.h5") else kerasafe.save_model)(model, path)
    saved = list(kinds)
    assert saved and len(saved) == len(set(saved)), saved  # each kind once in the save walk
    kinds.clear()
    before = model.predict(np.ones((2, 4), "float32"), verbose=0)
    if name.endswith(".weights.h5"):
        kerasafe.load_weights(model, path)  # two walks: the in-place path map, then the load
        assert 0 < kinds.count("Layer") <= 2, kinds
        loaded = model
    else:
        loaded = kerasafe.load_model(path)
        assert 0 < kinds.count("Layer") <= 1, kinds
    np.testing.assert_allclose(loaded.predict(np.ones((2, 4), "float32"), verbose=0), before, rtol=0, atol=0)
    assert saving_lib.get_attr_skipset is counted
    kinds.clear()
    model.save_weights(tmp_path / "keras.weights.h5")  # Keras's own walk, outside ours
    assert kinds.count("Layer") > 2, kinds
