"""The .keras, .h5, .weights.h5 and TF-checkpoint paths need no TensorFlow: they work on JAX.

Each case runs in a fresh interpreter with KERAS_BACKEND=jax (the backend is fixed at import)
where importing TensorFlow is made to fail.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import kerasafe

from . import models
from .conftest import run_python

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (.ci/run installs it)")

JAX_SCRIPT = """
import sys, importlib.abc
class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow.") or name == "tf_keras":
            raise ImportError(f"{{name}} is blocked: these paths must not need TensorFlow")
sys.meta_path.insert(0, NoTensorFlow())
import numpy as np, keras, kerasafe
assert keras.backend.backend() == "jax", keras.backend.backend()
sys.path.insert(0, {tests!r})
import models
out = {out!r}
for kind in ("mlp", "two_in_two_out", "custom"):
    model = models.build(kind, keras)
    models.randomize(model, seed=4)
    model.compile("adam", "mean_squared_error")
    want = models.predict(model, kind)
    co = {{"ScaledDense": type(model.layers[0])}} if kind == "custom" else None
    for name in ("m.keras", "m.h5"):
        kerasafe.save_model(model, f"{{out}}/{{kind}}_{{name}}")
        got = models.predict(kerasafe.load_model(f"{{out}}/{{kind}}_{{name}}", custom_objects=co), kind)
        assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(want, got)), (kind, name)
    for name in ("w.weights.h5", "ckpt"):
        kerasafe.save_weights(model, f"{{out}}/{{kind}}_{{name}}")
        fresh = models.build(kind, keras)
        kerasafe.load_weights(fresh, f"{{out}}/{{kind}}_{{name}}")
        assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(want, models.predict(fresh, kind))), (kind, name)
    np.savez(f"{{out}}/{{kind}}.npz", *want)
# files the TensorFlow backend wrote load here too
tf_written = models.build("mlp", keras)
kerasafe.load_weights(tf_written, f"{{out}}/tf_mlp_ckpt")
np.savez(f"{{out}}/tf_mlp_on_jax.npz", *models.predict(tf_written, "mlp"))
assert "tensorflow" not in sys.modules
print("ok")
"""


def test_formats_on_jax(tmp_path: Path):
    keras = pytest.importorskip("keras")
    tf_model = models.build("mlp", keras)
    models.randomize(tf_model, seed=9)
    kerasafe.save_weights(tf_model, tmp_path / "tf_mlp_ckpt")
    proc = run_python(JAX_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path)), KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert "ok" in proc.stdout
    with np.load(tmp_path / "tf_mlp_on_jax.npz") as f:
        on_jax = [f[k] for k in sorted(f.files)]
    for a, b in zip(models.predict(tf_model, "mlp"), on_jax):
        np.testing.assert_allclose(a, b, atol=1e-5)
