"""Loads read large weight values from the file one at a time, as Keras assigns them (never the
whole file at once), into aligned buffers that TensorFlow variables take over without a copy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import _buffers, _h5tree, _keras_state
from kerasafe.errors import FormatError

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

BIG = 64 << 10  # the core defers values of at least this many bytes (h5::DEFER_MIN)


def _model():
    # Kernels of 256 KiB and 512 KiB (deferred), biases of 1 KiB (read with the tree).
    model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(256), keras.layers.Dense(512)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(1).normal(size=(4, 256)).astype("float32")
    model.train_on_batch(x, np.zeros((4, 512), "float32"))
    return model, x


def _datasets(group: _h5tree.Group, prefix: str = "") -> dict[str, _h5tree.Dataset]:
    out: dict[str, _h5tree.Dataset] = {}
    for name, node in group.children.items():
        if isinstance(node, _h5tree.Group):
            out.update(_datasets(node, f"{prefix}{name}/"))
        else:
            out[prefix + name] = node
    return out


def test_large_values_stay_in_the_file_until_asked_for(tmp_path: Path):
    model, _ = _model()
    path = tmp_path / "m.h5"
    kerasafe.save_model(model, path)
    tree = _h5tree.read(path, deferred=True)
    nodes = _datasets(tree)
    deferred = {p: n for p, n in nodes.items() if n._in_file is not None}
    assert deferred, "no value was deferred"
    with h5py.File(path, "r") as f:
        for p, node in nodes.items():
            want = f[p][()]
            big = want.nbytes >= BIG
            assert (p in deferred) == big, p
            assert node.shape == want.shape and node.dtype == want.dtype, p
            got = node.value
            np.testing.assert_array_equal(got, want, err_msg=p)
            if big:
                assert isinstance(got, _buffers.OwnedValue)
                assert got.ctypes.data % _buffers.ALIGNMENT == 0
                again = node.take()  # read afresh, not kept
                assert again.ctypes.data != got.ctypes.data
                np.testing.assert_array_equal(again, want)
                with pytest.raises(ValueError, match="already handed"):
                    node.value


def test_a_file_cut_short_during_a_load_is_a_format_error(tmp_path: Path):
    model, _ = _model()
    path = tmp_path / "m.h5"
    kerasafe.save_model(model, path)
    tree = _h5tree.read(path, deferred=True)
    node = max(_datasets(tree).values(), key=lambda n: int(np.prod(n.shape)))
    os.truncate(path, 4096)  # in place: the open file shrinks under the reader
    with pytest.raises(FormatError, match="cut short") as info:
        node.value
    assert str(path) in str(info.value)


def _reads_of(model) -> list:
    """A read of each variable, kept: the variables' buffers are then shared."""
    if keras.backend.backend() != "tensorflow":
        return []
    import tensorflow as tf

    return [tf.identity(v.value) for v in model.weights + model.optimizer.variables]


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m.weights.h5"])
def test_loads_hold_one_deferred_value_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str):
    """Each value read is assigned before the next is read."""
    model, x = _model()
    path = tmp_path / name
    events: list[str] = []
    real_read = _h5tree._InFile.read
    real_assign = keras.Variable.assign

    def read(self, dtype, shape):
        events.append("read")
        return real_read(self, dtype, shape)

    def assign(self, value):
        events.append("assign")
        return real_assign(self, value)

    monkeypatch.setattr(_h5tree._InFile, "read", read)
    monkeypatch.setattr(keras.Variable, "assign", assign)
    if name.endswith(".weights.h5"):
        kerasafe.save_weights(model, path)
        back, _ = _model()
        # Reads of every variable kept: none can be filled in place (test_inplace_loads), so
        # each value takes the deferred path.
        kept = _reads_of(back)
        kerasafe.load_weights(back, path)
        del kept
    else:
        kerasafe.save_model(model, path)
        back = kerasafe.load_model(path)
    reads = events.count("read")
    assert reads >= 6, events  # two kernels, and Adam's two moments of each
    held = 0
    for event in events:
        held = held + 1 if event == "read" else 0
        assert held <= 1, events
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    for a, b in zip(model.optimizer.variables, back.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_compile_false_never_reads_the_optimizer_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str):
    model, x = _model()
    path = tmp_path / name
    kerasafe.save_model(model, path)
    read_bytes: list[int] = []
    real_read = _h5tree._InFile.read

    def read(self, dtype, shape):
        read_bytes.append(self.nbytes)
        return real_read(self, dtype, shape)

    monkeypatch.setattr(_h5tree._InFile, "read", read)
    back = kerasafe.load_model(path, compile=False)
    kernels = sum(v.numpy().nbytes for v in model.weights if v.numpy().nbytes >= BIG)
    assert sum(read_bytes) == kernels  # the two kernels; not Adam's moments (twice as many bytes)
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="adoption is TensorFlow's")
def test_variables_take_over_aligned_buffers_and_copy_anything_else():
    import tensorflow as tf

    value = _buffers.aligned_empty(4 * 1024).view(np.float32).reshape(32, 32).view(_buffers.OwnedValue)
    value[...] = np.arange(1024, dtype=np.float32).reshape(32, 32)
    tensor = _keras_state._adopted(value, "float32", tf)
    assert tensor is not None
    value[0, 0] = -5.0  # the tensor shares the buffer
    assert float(tensor[0, 0]) == -5.0
    assert _keras_state._adopted(value, "float16", tf) is None  # a cast copies
    assert _keras_state._adopted(value[:, ::2], "float32", tf) is None  # not contiguous
    unaligned = _buffers.aligned_empty(4 * 1024 + 4)[4:].view(np.float32).view(_buffers.OwnedValue)
    assert _keras_state._adopted(unaligned, "float32", tf) is None  # TensorFlow would abort
    # A loaded model trains in place on adopted buffers and stays correct.
    with _keras_state.filled_from_file():
        v = keras.Variable(initializer="zeros", shape=(32, 32))
        v.assign(value)
    v.assign_add(np.ones((32, 32), "float32"))
    np.testing.assert_array_equal(v.numpy()[0, :3], [-4.0, 2.0, 3.0])


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="adoption is TensorFlow's")
@pytest.mark.parametrize("name", ["w.weights.h5", "ckpt"])
def test_load_weights_hands_variables_their_buffers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str):
    model, x = _model()
    path = tmp_path / name
    kerasafe.save_weights(model, path)
    target, _ = _model()
    adopted: list[tuple[int, ...]] = []
    real = _keras_state._adopted

    def counting(value, dtype, tf):
        tensor = real(value, dtype, tf)
        if tensor is not None:
            adopted.append(tuple(value.shape))
        return tensor

    monkeypatch.setattr(_keras_state, "_adopted", counting)
    kept = _reads_of(target)  # shared buffers: not filled in place (test_inplace_loads) but adopted
    kerasafe.load_weights(target, path)
    del kept
    # Both kernels (256 KiB and 512 KiB) at least; a TF checkpoint's biases too.
    assert {(256, 256), (256, 512)} <= set(adopted)
    if name == "ckpt":
        assert len(adopted) == len(model.weights)
    np.testing.assert_array_equal(target.predict(x, verbose=0), model.predict(x, verbose=0))
    # The variables now live in those buffers and train as usual.
    y = np.ones((4, 512), "float32")
    target.compile(optimizer="sgd", loss="mse")
    model.compile(optimizer="sgd", loss="mse")
    np.testing.assert_allclose(target.train_on_batch(x, y), model.train_on_batch(x, y), rtol=1e-6)
    np.testing.assert_allclose(target.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux: the RSS high-water mark")
def test_reading_a_large_file_does_not_map_it_all_at_once(tmp_path: Path):
    """The global-heap scan maps files of 64 MiB and more (to scan them in place) and drops each
    scanned piece again: the file's bytes stay in the page cache, not in the process's RSS."""

    def status(key: str) -> int:
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key))
        return int(line.split()[1]) // 1024  # MiB

    root = _h5tree.Group()
    root.create_dataset("values", data=np.ones((320, 1 << 18), np.float32))  # 320 MiB
    path = tmp_path / "big.h5"
    _h5tree.write(path, root)
    del root
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    start = status("VmRSS:")
    tree = _h5tree.read(path, deferred=True)
    assert tree["values"].shape == (320, 1 << 18)
    assert status("VmHWM:") - start < 160, "the scan kept the mapped file resident"
