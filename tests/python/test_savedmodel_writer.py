"""SavedModel saves hand the variables' bundle shard to kerasafe's checkpoint writer in place of
TensorFlow's ``SaveV2``; TensorFlow still names the shard and merges it into ``variables.index``.
The directory must stay what TensorFlow reads, and anything the writer does not cover must go
through ``SaveV2`` unchanged."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import _core, _savedmodel

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")


def _trained() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.train_on_batch(x, x[:, :2])
    return model


def test_variables_are_written_by_kerasafe_and_read_by_tensorflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[tuple[str, list[str]]] = []
    real_write = _core.checkpoint_write

    def recording_write(prefix, values, **kwargs):
        writes.append((prefix, [v[0] for v in values]))
        return real_write(prefix, values, **kwargs)

    monkeypatch.setattr(_core, "checkpoint_write", recording_write)
    model = _trained()
    out = tmp_path / "sm"
    kerasafe.save_model(model, out)

    assert len(writes) == 1
    prefix, names = writes[0]
    assert prefix.endswith("part-00000-of-00001") and "variables_temp" in prefix
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in names
    assert sorted((out / "variables").iterdir()) == [out / "variables" / "variables.data-00000-of-00001", out / "variables" / "variables.index"]

    # TensorFlow's own reader: every model and optimizer value, under TF's keys.
    reader = tf.train.load_checkpoint(str(out / "variables" / "variables"))
    for i, v in enumerate(model.weights):
        np.testing.assert_array_equal(reader.get_tensor(f"model_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"), v.numpy())
    for i, v in enumerate(model.optimizer.variables):
        np.testing.assert_array_equal(reader.get_tensor(f"optimizer_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"), v.numpy())

    # The object graph TF wrote through us restores the module, and the signature serves.
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    served = tf.saved_model.load(str(out)).signatures["serving_default"](tf.constant(x))
    np.testing.assert_allclose(next(iter(served.values())).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)

    reloaded = kerasafe.load_model(out)
    np.testing.assert_array_equal(reloaded(x).numpy(), model(x).numpy())
    assert int(reloaded.optimizer.iterations.numpy()) == 1


def test_shard_values_views_numbers_and_keeps_string_bytes_whole() -> None:
    weights = tf.constant(np.arange(6, dtype="float32").reshape(2, 3))
    graph = tf.constant(b"proto\x08\x00")  # a serialized proto may end in NUL bytes
    names = tf.constant([b"a\x00", b"b"])
    values = _savedmodel.shard_values(tf, ["w", "g", "n"], ["", "", ""], [weights, graph, names])

    assert values is not None
    (w_name, w_dtype, w_shape, w_flat), graph_values, names_values = values
    assert (w_name, w_dtype, w_shape) == ("w", "float32", [2, 3])
    assert np.shares_memory(w_flat, weights._numpy())
    assert graph_values == ("g", "string", [], [b"proto\x08\x00"])
    assert names_values == ("n", "string", [2], [b"a\x00", b"b"])


def test_shard_values_leaves_what_the_writer_does_not_cover_to_tensorflow() -> None:
    x = tf.constant([1.0, 2.0])
    # A slice of a partitioned variable: SaveV2 writes slices, the bundle writer does not.
    assert _savedmodel.shard_values(tf, ["x"], ["4 0,2"], [x]) is None
    # A dtype the core cannot hold.
    assert _savedmodel.shard_values(tf, ["x", "q"], ["", ""], [x, tf.constant([1], dtype=tf.qint8)]) is None
    # Inside a graph (tf.function): SaveV2 is an op there.
    seen = []

    @tf.function
    def traced(t):
        seen.append(_savedmodel.shard_values(tf, ["x"], [""], [t]))
        return t

    traced(x)
    assert seen == [None]


def test_other_threads_keep_tensorflows_saver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While one thread saves a SavedModel, a tf.train.Checkpoint written by another thread goes
    through SaveV2 (the patch is thread-scoped), and TF's saver is restored afterwards."""
    from tensorflow.python.checkpoint import functional_saver

    original = functional_saver.io_ops.save_v2
    writes: list[str] = []
    real_write = _core.checkpoint_write
    monkeypatch.setattr(_core, "checkpoint_write", lambda prefix, values, **kwargs: (writes.append(prefix), real_write(prefix, values, **kwargs))[1])

    inside, other_done = threading.Event(), threading.Event()
    result: dict[str, object] = {}

    def other_thread() -> None:
        inside.wait(30)
        v = tf.Variable([1.0, 2.0, 3.0])
        result["path"] = tf.train.Checkpoint(v=v).write(str(tmp_path / "other" / "ckpt"))
        other_done.set()

    t = threading.Thread(target=other_thread)
    t.start()
    with _savedmodel.bundle_shards_written_here():
        assert functional_saver.io_ops.save_v2 is not original
        inside.set()
        assert other_done.wait(60)
    t.join()

    assert functional_saver.io_ops.save_v2 is original
    assert writes == []  # the other thread's checkpoint went through SaveV2
    assert tf.train.load_checkpoint(str(result["path"])).get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [1.0, 2.0, 3.0]


def test_an_unforeseen_shard_falls_back_to_savev2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If reading the shard's tensors fails in a way the checks did not foresee, TF's SaveV2
    writes it and the save still succeeds."""
    writes: list[str] = []
    real_write = _core.checkpoint_write
    monkeypatch.setattr(_core, "checkpoint_write", lambda prefix, values, **kwargs: (writes.append(prefix), real_write(prefix, values, **kwargs))[1])

    def unforeseen(*args, **kwargs):
        raise RuntimeError("a tensor this reading does not handle")

    monkeypatch.setattr(_savedmodel, "shard_values", unforeseen)
    model = _trained()
    kerasafe.save_model(model, tmp_path / "sm")
    assert writes == []
    reloaded = kerasafe.load_model(tmp_path / "sm")
    x = np.ones((2, 4), "float32")
    np.testing.assert_array_equal(reloaded(x).numpy(), model(x).numpy())
