"""Large models. Slow (several GB of I/O): run with KERASAFE_SLOW=1."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import kerasafe

pytestmark = pytest.mark.skipif(not os.environ.get("KERASAFE_SLOW"), reason="set KERASAFE_SLOW=1 to run the multi-GB tests")


def test_three_gigabyte_savedmodel(tmp_path: Path):
    keras = pytest.importorskip("keras")
    # 3 Dense layers of 16384 x 16384 float32 = 3.2 GB, zero-initialised (cheap to build).
    width = 16384
    model = keras.Sequential([keras.Input((width,))] + [keras.layers.Dense(width, kernel_initializer="zeros", bias_initializer="ones") for _ in range(3)])
    assert sum(np.prod(w.shape) * 4 for w in model.weights) > 3e9
    kerasafe.save_model(model, tmp_path / "big")
    pb = (tmp_path / "big" / "saved_model.pb").stat().st_size
    assert pb < 50e6, f"weights leaked into the graph proto ({pb} bytes)"
    loaded = kerasafe.load_model(tmp_path / "big")
    x = np.ones((1, width), "float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
