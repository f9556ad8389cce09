"""``load_weights`` into a model that holds values writes each variable's own buffer (``_inplace``)
where only the variable holds it, for TF checkpoints and ``.weights.h5``.

Checked: the values land exactly, in the same buffers; a tensor read from a variable and kept
(``tf.identity``, ``keras.ops.copy``) keeps its value; a damaged checkpoint is refused before any
variable changes; variables in copy-on-read mode, small ones and ones of another dtype take the
usual path and still load; and the same under tf-keras.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

import kerasafe  # noqa: E402
from kerasafe import _inplace, errors  # noqa: E402

from .conftest import REPO  # noqa: E402

FORMATS = {"ckpt": "ckpt", "weights.h5": "w.weights.h5"}


def trained(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512), keras.layers.Dense(256), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(seed).standard_normal((16, 64)).astype("float32")
    model.fit(x, x[:, :3], epochs=1, verbose=0)
    return model


def buffer_address(variable) -> int:
    return np.from_dlpack(variable.value.value()).ctypes.data


def zero(model: keras.Model) -> None:
    for variable in model.weights:
        variable.assign(np.zeros(variable.shape, variable.dtype))


@pytest.mark.parametrize("fmt", FORMATS)
def test_values_land_in_the_variables_own_buffers(tmp_path: Path, fmt: str):
    model = trained()
    path = tmp_path / FORMATS[fmt]
    kerasafe.save_weights(model, path)
    saved = [v.numpy() for v in model.weights]
    zero(model)
    kernel = model.layers[0].kernel  # 64x512 float32: 128 KiB, above _inplace.MIN_BYTES
    before = buffer_address(kernel)
    kerasafe.load_weights(model, path)
    assert buffer_address(kernel) == before
    for variable, want in zip(model.weights, saved):
        np.testing.assert_array_equal(variable.numpy(), want)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_kept_read_keeps_its_value(tmp_path: Path, fmt: str):
    model = trained()
    path = tmp_path / FORMATS[fmt]
    kerasafe.save_weights(model, path)
    saved = model.layers[1].kernel.numpy()
    zero(model)
    identity = tf.identity(model.layers[0].kernel.value)
    copy = keras.ops.copy(model.layers[1].kernel)
    assert _inplace.storage(model.layers[1].kernel, np.dtype("float32"), (512, 256)) is None  # shared
    kerasafe.load_weights(model, path)
    assert not np.any(identity.numpy()) and not np.any(np.asarray(copy))
    np.testing.assert_array_equal(model.layers[1].kernel.numpy(), saved)


def test_a_damaged_checkpoint_leaves_the_model_as_it_was(tmp_path: Path):
    model = trained()
    prefix = tmp_path / "ckpt"
    kerasafe.save_weights(model, prefix)
    other = trained(seed=1)
    before = [v.numpy() for v in other.weights]
    data = tmp_path / "ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside one of the kernels (most of the file); the others read fine
    data.write_bytes(bytes(raw))
    with pytest.raises(errors.ChecksumError):
        kerasafe.load_weights(other, prefix)
    for variable, want in zip(other.weights, before):
        np.testing.assert_array_equal(variable.numpy(), want)


@pytest.mark.parametrize("fmt", FORMATS)
def test_copy_on_read_variables_still_load(tmp_path: Path, fmt: str):
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(1000, 64)])
    model(np.arange(4, dtype="int32")[None])
    table = np.random.default_rng(0).standard_normal((1000, 64)).astype("float32")
    embeddings = model.layers[0].embeddings
    embeddings.assign(table)
    path = tmp_path / FORMATS[fmt]
    kerasafe.save_weights(model, path)
    zero(model)
    # A sparse read of the variable itself puts it in copy-on-read mode: each read is a copy.
    tf.raw_ops.ResourceGather(resource=embeddings.value.handle, indices=[0], dtype=tf.float32)
    first, second = embeddings.value.value(), embeddings.value.value()
    assert np.from_dlpack(first).ctypes.data != np.from_dlpack(second).ctypes.data
    del first, second
    kerasafe.load_weights(model, path)
    np.testing.assert_array_equal(embeddings.numpy(), table)
    np.testing.assert_array_equal(np.asarray(model(np.arange(4, dtype="int32")[None]))[0], table[:4])


def test_storage_refuses_what_it_cannot_fill_in_place():
    model = trained()
    small = model.layers[2].kernel  # 256x3 float32: below MIN_BYTES
    assert _inplace.storage(small, np.dtype("float32"), (256, 3)) is None
    big = model.layers[0].kernel
    assert _inplace.storage(big, np.dtype("float16"), (64, 512)) is None  # another dtype: cast by Keras
    assert _inplace.storage(big, np.dtype("float32"), (512, 64)) is None  # another shape
    assert _inplace.storage(np.zeros((64, 512), "float32"), np.dtype("float32"), (64, 512)) is None
    found = _inplace.storage(big, np.dtype("float32"), (64, 512))
    assert found is not None and found.view.nbytes == 64 * 512 * 4


@pytest.mark.parametrize("fmt", FORMATS)
def test_files_of_another_dtype_or_shape_take_the_usual_path(tmp_path: Path, fmt: str):
    model = trained()
    path = tmp_path / FORMATS[fmt]
    kerasafe.save_weights(model, path)
    keras.utils.set_random_seed(3)
    wider = keras.Sequential([keras.Input((64,)), keras.layers.Dense(513), keras.layers.Dense(256), keras.layers.Dense(3)])
    wider.compile(optimizer="adam", loss="mse")
    before = [v.numpy() for v in wider.weights]
    with pytest.raises(errors.KerasafeError):
        kerasafe.load_weights(wider, path)
    if fmt == "ckpt":  # checked before the first assignment
        for variable, want in zip(wider.weights, before):
            np.testing.assert_array_equal(variable.numpy(), want)


TF_KERAS_SCRIPT = """
import sys
sys.path.insert(0, {python!r})
import numpy as np, tensorflow as tf, tf_keras as keras, kerasafe
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512), keras.layers.Dense(3)])
model.compile("adam", "mse")
model.fit(np.ones((8, 64)), np.ones((8, 3)), verbose=0)
kerasafe.save_weights(model, "ckpt")
saved = [w.copy() for w in model.get_weights()]
for w in model.weights:
    w.assign(tf.zeros_like(w))
kept = tf.identity(model.layers[1].kernel)
address = np.from_dlpack(model.layers[0].kernel.value()).ctypes.data
kerasafe.load_weights(model, "ckpt")
assert all(np.array_equal(a, b) for a, b in zip(saved, model.get_weights()))
assert not np.any(kept.numpy())
assert np.from_dlpack(model.layers[0].kernel.value()).ctypes.data == address
print("ok")
"""


def test_tf_keras_checkpoint_loads_in_place(tmp_path: Path, tfkeras):
    assert tfkeras(TF_KERAS_SCRIPT.format(python=str(REPO / "python")), cwd=tmp_path).strip().endswith("ok")


class PickySaver(keras.layers.Dense):
    """A layer whose save_own_variables only works against a real file's store."""

    refuse = False

    def save_own_variables(self, store):
        if PickySaver.refuse:
            raise RuntimeError("needs an h5py store")
        super().save_own_variables(store)


def test_a_layer_that_cannot_be_walked_by_reference_loads_the_usual_way(tmp_path: Path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), PickySaver(512), keras.layers.Dense(3)])
    path = tmp_path / "w.weights.h5"
    kerasafe.save_weights(model, path)
    saved = [v.numpy() for v in model.weights]
    zero(model)
    PickySaver.refuse = True
    try:
        kerasafe.load_weights(model, path)
    finally:
        PickySaver.refuse = False
    for variable, want in zip(model.weights, saved):
        np.testing.assert_array_equal(variable.numpy(), want)
