"""save_weights / load_weights in the TF checkpoint format with real Keras 3 and tf-keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import checkpoint, errors

from . import models

keras = pytest.importorskip("keras")
MODELS_SRC = Path(models.__file__).read_text()


def assert_outputs_equal(a: list[np.ndarray], b: list[np.ndarray], atol: float = 1e-5) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


@pytest.mark.parametrize("kind", models.KINDS)
def test_seed_workflow_round_trip(tmp_path: Path, kind: str):
    model = models.build(kind, keras)
    models.randomize(model)
    prefix = tmp_path / "artifacts" / "my_model" / "weights" / "v1" / "ckpt"
    kerasafe.save_weights(model, prefix)
    assert Path(f"{prefix}.index").exists() and Path(f"{prefix}.data-00000-of-00001").exists()

    rebuilt = models.build(kind, keras)
    before = models.predict(rebuilt, kind)
    kerasafe.load_weights(rebuilt, prefix)
    after = models.predict(rebuilt, kind)
    assert_outputs_equal(after, models.predict(model, kind), atol=0)
    assert any(not np.array_equal(x, y) for x, y in zip(before, after))


def test_keys_follow_tf_keras_naming(tmp_path: Path):
    model = models.build("two_in_two_out", keras)
    kerasafe.save_weights(model, tmp_path / "ckpt")
    names = {n for n, *_ in checkpoint.list_variables(tmp_path / "ckpt")}
    assert checkpoint.OBJECT_GRAPH_KEY in names
    assert "layer_with_weights-0/embeddings/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert "layer_with_weights-1/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert "layer_with_weights-1/cell/recurrent_kernel/.ATTRIBUTES/VARIABLE_VALUE" in names
    # TensorFlow's own reader agrees on names and values
    tf = pytest.importorskip("tensorflow")
    reader = tf.train.load_checkpoint(str(tmp_path / "ckpt"))
    emb = reader.get_tensor("layer_with_weights-0/embeddings/.ATTRIBUTES/VARIABLE_VALUE")
    embedding = next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding))
    np.testing.assert_array_equal(emb, np.asarray(embedding.embeddings))


def test_state_file_lets_tf_find_the_latest_checkpoint(tmp_path: Path):
    tf = pytest.importorskip("tensorflow")
    model = models.build("mlp", keras)
    kerasafe.save_weights(model, tmp_path / "ckpt")
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt")


def test_mismatched_model_is_refused_and_left_untouched(tmp_path: Path):
    kerasafe.save_weights(models.build("mlp", keras), tmp_path / "ckpt")
    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(3)])
    before = [np.asarray(w).copy() for w in other.weights]
    with pytest.raises(errors.FormatError, match=r"ckpt.index.*shape") as info:
        kerasafe.load_weights(other, tmp_path / "ckpt")
    assert "dense" in str(info.value)
    for w, b in zip(other.weights, before):
        np.testing.assert_array_equal(np.asarray(w), b)


def test_missing_checkpoint_is_file_not_found(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nothing.index"):
        kerasafe.load_weights(models.build("mlp", keras), tmp_path / "nothing")


def test_unbuilt_model_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="no weights yet"):
        kerasafe.save_weights(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "ckpt")


TF_KERAS_SAVE = """
import numpy as np, tf_keras as keras
exec(open({models!r}).read())
for kind in {kinds!r}:
    model = build(kind, keras)
    randomize(model, seed=3)
    model.save_weights({out!r} + "/" + kind + "/ckpt")
    np.savez({out!r} + "/" + kind + "/expected.npz", *predict(model, kind))
print("ok")
"""

TF_KERAS_LOAD = """
import numpy as np, tf_keras as keras
exec(open({models!r}).read())
for kind in {kinds!r}:
    model = build(kind, keras)
    model.load_weights({out!r} + "/" + kind + "/ckpt").assert_existing_objects_matched()
    np.savez({out!r} + "/" + kind + "/tfkeras.npz", *predict(model, kind))
print("ok")
"""


def _npz(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda s: int(s.split("_")[1]))]


def test_tf_keras_checkpoints_load_into_keras3(tmp_path: Path, tfkeras):
    tfkeras(TF_KERAS_SAVE.format(models=models.__file__, kinds=models.KINDS, out=str(tmp_path)), cwd=tmp_path)
    for kind in models.KINDS:
        model = models.build(kind, keras)
        kerasafe.load_weights(model, tmp_path / kind / "ckpt")
        assert_outputs_equal(models.predict(model, kind), _npz(tmp_path / kind / "expected.npz"))


def test_keras3_checkpoints_load_into_tf_keras(tmp_path: Path, tfkeras):
    expected = {}
    for kind in models.KINDS:
        model = models.build(kind, keras)
        models.randomize(model, seed=5)
        kerasafe.save_weights(model, tmp_path / kind / "ckpt")
        expected[kind] = models.predict(model, kind)
    tfkeras(TF_KERAS_LOAD.format(models=models.__file__, kinds=models.KINDS, out=str(tmp_path)), cwd=tmp_path)
    for kind in models.KINDS:
        assert_outputs_equal(_npz(tmp_path / kind / "tfkeras.npz"), expected[kind])
