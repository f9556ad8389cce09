"""An ``.h5`` round trip keeps the metric names the user compiled with (``"mae"`` stays ``mae``,
so ``val_mae`` monitors keep working), and the file still loads in Keras's own ``load_model``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import dialect

from .conftest import REPO

keras = pytest.importorskip("keras")


def _trained(loss: str = "mse"):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss=loss, metrics=["mae"], weighted_metrics=["mse"])
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = np.zeros((16, 1), "float32")
    model.fit(x, y, verbose=0)
    return model, x, y


@pytest.mark.parametrize("name", ["m.h5", "m.keras", "m_dir"])
def test_metric_names_survive_every_format(tmp_path: Path, name: str):
    if name == "m_dir" and keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModel needs TensorFlow")
    model, x, y = _trained()
    kerasafe.save_model(model, tmp_path / name)
    back = kerasafe.load_model(tmp_path / name)
    assert set(back.evaluate(x, y, verbose=0, return_dict=True)) == set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "mae", "mse"}
    stop = keras.callbacks.EarlyStopping(monitor="val_mae", patience=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # EarlyStopping warns when its monitor is missing
        history = back.fit(x, y, validation_data=(x, y), epochs=2, verbose=0, callbacks=[stop])
    assert "val_mae" in history.history


def test_h5_with_kept_names_still_loads_in_keras(tmp_path: Path):
    model, x, y = _trained(loss="mean_squared_error")  # Keras's own loader cannot read loss="mse" back
    kerasafe.save_model(model, tmp_path / "m.h5")
    theirs = keras.saving.load_model(tmp_path / "m.h5")
    np.testing.assert_allclose(theirs.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0, atol=1e-6)
    assert "mae" in kerasafe.load_model(tmp_path / "m.h5").evaluate(x, y, verbose=0, return_dict=True)


def test_metric_names_kept_restores_strings_in_nested_structures():
    built = {"metrics": [["obj_a", "obj_b"], {"out": ["obj_c"]}], "weighted_metrics": None, "loss": "x"}
    stored = {"metrics": [["mae", {"class_name": "AUC", "config": {}}], {"out": ["acc"]}]}
    kept = dialect.metric_names_kept(built, stored)
    assert kept == {"metrics": [["mae", "obj_b"], {"out": ["acc"]}], "weighted_metrics": None, "loss": "x"}


def test_tf_keras_h5_keeps_metric_names(tfkeras, tmp_path: Path):
    """tf-keras's .h5 (and a Keras 3 one) loaded by kerasafe under tf-keras and under Keras 3 report ``mae``."""
    model, x, y = _trained(loss="mean_squared_error")
    kerasafe.save_model(model, tmp_path / "k3.h5")
    out = tfkeras(
        f"""
        import json, sys
        sys.path.insert(0, {str(REPO / "python")!r})
        import numpy as np, tf_keras as keras, kerasafe
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mae"])
        x, y = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")
        model.fit(x, y, verbose=0)
        model.save("tfk.h5")
        names = {{}}
        for name in ("tfk.h5", "k3.h5"):
            names[name] = sorted(kerasafe.load_model(name).evaluate(x, y, verbose=0, return_dict=True))
        print(json.dumps(names))
        """,
        tmp_path,
    )
    names = json.loads(out.strip().splitlines()[-1])
    assert names == {"tfk.h5": ["loss", "mae"], "k3.h5": ["loss", "mae", "mse"]}, names
    assert set(kerasafe.load_model(tmp_path / "tfk.h5").evaluate(x[:4], y[:4], verbose=0, return_dict=True)) == {"loss", "mae"}
