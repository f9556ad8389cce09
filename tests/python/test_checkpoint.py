"""TF tensor bundles: round trips, interop with real TensorFlow both ways, and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import kerasafe
from kerasafe import checkpoint, errors

from .conftest import run_python

ALL_DTYPES = {
    "f16": np.array([1.5, -2.0, 65504.0], dtype=np.float16),
    "f32": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "f64": np.array([[np.pi, -np.e]], dtype=np.float64),
    "bf16": np.array([1.0, 2.0, -3.5], dtype=ml_dtypes.bfloat16),
    "i8": np.array([-128, 127], dtype=np.int8),
    "i16": np.array([-(2**15), 2**15 - 1], dtype=np.int16),
    "i32": np.array([-(2**31), 7], dtype=np.int32),
    "i64": np.array(1, dtype=np.int64),
    "u8": np.array([0, 255], dtype=np.uint8),
    "u16": np.array([65535], dtype=np.uint16),
    "u32": np.array([2**32 - 1], dtype=np.uint32),
    "u64": np.array([2**63 + 5], dtype=np.uint64),
    "bool": np.array([True, False, True]),
    "c64": np.array([1 + 2j], dtype=np.complex64),
    "c128": np.array([[1 - 1j, 3j]], dtype=np.complex128),
    "str": np.array([b"ab", b"", b"hello/world"], dtype=object),
    "str_scalar": np.array(b"object graph bytes", dtype=object),
    "empty": np.zeros((0, 5), dtype=np.float32),
    "scalar": np.array(3.25, dtype=np.float32),
}


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b) if a.dtype != object else a.tolist() == b.tolist()


def test_round_trip_every_dtype(tmp_path: Path):
    prefix = tmp_path / "ckpt"
    checkpoint.write(prefix, ALL_DTYPES)
    assert (tmp_path / "ckpt.index").exists() and (tmp_path / "ckpt.data-00000-of-00001").exists()
    got = checkpoint.read(prefix)
    assert sorted(got) == sorted(ALL_DTYPES)
    for name, value in ALL_DTYPES.items():
        assert_same(got[name], value)
    listed = {n: (s, d) for n, s, d in checkpoint.list_variables(prefix)}
    assert listed["f32"] == ((3, 4), "float32") and listed["bf16"] == ((3,), "bfloat16")
    assert listed["str"] == ((3,), "string") and listed["scalar"] == ((), "float32")
    # no temporary files are left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.data-00000-of-00001", "ckpt.index"]


def test_string_values_keep_trailing_nul_bytes(tmp_path: Path):
    """bytes and str given as Python objects are written as given: numpy's fixed-width strings
    would drop the trailing NULs (a serialized proto, such as TF's object graph, can end in one)."""
    prefix = tmp_path / "ckpt"
    checkpoint.write(prefix, {"scalar": b"proto\x08\x00", "list": [b"a\x00", b"b"], "text": "z\x00"})
    got = checkpoint.read(prefix)
    assert got["scalar"].shape == () and got["scalar"].item() == b"proto\x08\x00"
    assert got["list"].tolist() == [b"a\x00", b"b"]
    assert got["text"].item() == b"z\x00"


def test_read_some_names_and_accepts_non_contiguous_input(tmp_path: Path):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    checkpoint.write(tmp_path / "c", {"t": base.T, "be": base.astype(">f4"), "s": ["x", "yz"]})
    got = checkpoint.read(tmp_path / "c", names=["t", "s"])
    assert list(got) == ["t", "s"]
    np.testing.assert_array_equal(got["t"], base.T)
    assert got["s"].tolist() == [b"x", b"yz"]
    np.testing.assert_array_equal(checkpoint.read(tmp_path / "c", ["be"])["be"], base.astype("<f4"))


def test_tensorflow_reads_what_we_write(tmp_path: Path):
    tf = pytest.importorskip("tensorflow")
    prefix = str(tmp_path / "ckpt")
    checkpoint.write(prefix, ALL_DTYPES)
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    for name, value in ALL_DTYPES.items():
        assert tuple(shapes[name]) == value.shape
        got = np.asarray(reader.get_tensor(name))
        if value.dtype == object:
            assert got.tolist() == value.tolist()
        else:
            assert got.dtype == value.dtype and np.array_equal(got, value), name


def test_index_is_byte_identical_to_tensorflows(tmp_path: Path):
    tf = pytest.importorskip("tensorflow")
    names = ["x", "a/s", "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE", "Adam/m", "z" * 300]
    values = [
        np.array([1.0, 2.0], np.float32),
        np.array([b"hi"], dtype=object),
        np.random.default_rng(0).standard_normal((17, 3)).astype(np.float32),
        np.arange(5, dtype=np.int64),
        np.array([True]),
    ]
    tf_prefix = str(tmp_path / "tf" / "t")
    os.makedirs(os.path.dirname(tf_prefix))
    tf.raw_ops.SaveV2(
        prefix=tf_prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(v.tolist() if v.dtype == object else v) for v in values],
    )
    ours = tmp_path / "ours" / "t"
    checkpoint.write(ours, dict(zip(names, values)))
    assert Path(f"{ours}.index").read_bytes() == Path(f"{tf_prefix}.index").read_bytes()
    assert Path(f"{ours}.data-00000-of-00001").read_bytes() == Path(f"{tf_prefix}.data-00000-of-00001").read_bytes()


def test_index_with_many_blocks_matches_tensorflow(tmp_path: Path):
    tf = pytest.importorskip("tensorflow")
    # ~4000 entries with long names span several 256 KiB data blocks of the index.
    names = [f"model/block_{i:05d}/" + "k" * 60 for i in range(4000)]
    values = [np.full((2,), i, np.float32) for i in range(len(names))]
    tf_prefix = str(tmp_path / "tf")
    tf.raw_ops.SaveV2(prefix=tf_prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=values)
    checkpoint.write(tmp_path / "ours", dict(zip(names, values)))
    assert (tmp_path / "ours.index").read_bytes() == Path(f"{tf_prefix}.index").read_bytes()


def test_we_read_tf_train_checkpoint(tmp_path: Path):
    tf = pytest.importorskip("tensorflow")
    variables = {
        "w": tf.Variable(np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)),
        "step": tf.Variable(np.int64(42)),
        "half": tf.Variable(np.array([0.5, 1.5], np.float16)),
        "bf": tf.Variable(tf.constant([1.0, 2.5], dtype=tf.bfloat16)),
    }
    ckpt = tf.train.Checkpoint(**variables)
    prefix = ckpt.write(str(tmp_path / "tfck"))
    got = checkpoint.read(prefix)
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
        if name == checkpoint.OBJECT_GRAPH_KEY:
            assert got[name].shape == () and got[name].item() == reader.get_tensor(name)
            continue
        want = np.asarray(reader.get_tensor(name))
        assert got[name].dtype == want.dtype and np.array_equal(got[name], want), name
    assert set(got) == set(reader.get_variable_to_shape_map())
    graph = got[checkpoint.OBJECT_GRAPH_KEY].item()
    keys = {key for *_, key, _ in kerasafe._core.object_graph_attributes(graph)}
    assert "w/.ATTRIBUTES/VARIABLE_VALUE" in keys and "step/.ATTRIBUTES/VARIABLE_VALUE" in keys


def test_we_read_multi_shard_bundles(tmp_path: Path):
    tf = pytest.importorskip("tensorflow")
    # A shard-size policy makes TF split the bundle over several data files.
    values = {
        "a": np.arange(6, dtype=np.float32),
        "b": np.arange(4, dtype=np.int32),
        "c": np.random.default_rng(2).standard_normal((100, 100)),
    }
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=40_000)
    ckpt = tf.train.Checkpoint(**{k: tf.Variable(v) for k, v in values.items()})
    prefix = ckpt.write(str(tmp_path / "sharded"), options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))
    data_files = sorted(p.name for p in tmp_path.glob("sharded.data-*"))
    assert len(data_files) > 1, data_files
    got = checkpoint.read(prefix)
    for name, value in values.items():
        np.testing.assert_array_equal(got[f"{name}/.ATTRIBUTES/VARIABLE_VALUE"], value)


def test_import_does_not_load_tensorflow_or_keras():
    proc = run_python(
        """
        import sys, numpy as np, kerasafe
        kerasafe.checkpoint.write("/tmp/kerasafe_import_probe/c", {"a": np.ones(3)})
        kerasafe.checkpoint.read("/tmp/kerasafe_import_probe/c")
        bad = [m for m in ("tensorflow", "keras", "tf_keras", "jax") if m in sys.modules]
        print("loaded:", bad)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "loaded: []" in proc.stdout


# -- bad input ------------------------------------------------------------------------------------


@pytest.fixture
def good(tmp_path: Path) -> Path:
    prefix = tmp_path / "good"
    checkpoint.write(prefix, {"weights": np.arange(1000, dtype=np.float32), "bias": np.ones(3, np.float64)})
    return prefix


def test_missing_checkpoint(tmp_path: Path):
    # The most specific not-found class, so each of the three a user may catch catches it.
    with pytest.raises(errors.ArtifactNotFoundError, match="nope.index") as info:
        checkpoint.read(tmp_path / "nope")
    assert isinstance(info.value, errors.NotFoundError) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(errors.ArtifactNotFoundError, match="nope.keras"):
        kerasafe.load_model(tmp_path / "nope.keras")


def test_missing_data_file(good: Path):
    os.remove(f"{good}.data-00000-of-00001")
    with pytest.raises(FileNotFoundError, match="data-00000-of-00001"):
        checkpoint.read(good)
    # the index alone still lists the variables
    assert {n for n, *_ in checkpoint.list_variables(good)} == {"weights", "bias"}


@pytest.mark.parametrize("keep", [0, 10, 47, -49, -1])
def test_truncated_index(good: Path, keep: int):
    index = Path(f"{good}.index")
    data = index.read_bytes()
    index.write_bytes(data[:keep] if keep >= 0 else data[: len(data) + keep])
    with pytest.raises(errors.FormatError, match="good.index"):
        checkpoint.read(good)


def test_truncated_data_file(good: Path):
    data = Path(f"{good}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(errors.FormatError, match=r"data-00000-of-00001.*(weights|bias).*truncated"):
        checkpoint.read(good)


def test_flipped_tensor_byte_names_the_tensor(good: Path):
    data = Path(f"{good}.data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[17] ^= 0x01  # inside "weights" (written first)
    data.write_bytes(bytes(raw))
    with pytest.raises(errors.ChecksumError, match=r'good.data-00000-of-00001.*"weights"'):
        checkpoint.read(good)
    # the undamaged tensor still reads
    np.testing.assert_array_equal(checkpoint.read(good, ["bias"])["bias"], np.ones(3))


def test_flipped_index_byte_is_a_checksum_error(good: Path):
    index = Path(f"{good}.index")
    raw = bytearray(index.read_bytes())
    raw[12] ^= 0x20
    index.write_bytes(bytes(raw))
    with pytest.raises(errors.ChecksumError, match="good.index"):
        checkpoint.read(good)


def test_wrong_magic(good: Path):
    index = Path(f"{good}.index")
    raw = bytearray(index.read_bytes())
    raw[-1] ^= 0xFF
    index.write_bytes(bytes(raw))
    with pytest.raises(errors.FormatError, match="magic"):
        checkpoint.list_variables(good)


def test_not_a_checkpoint_at_all(tmp_path: Path):
    Path(f"{tmp_path}/x.index").write_bytes(os.urandom(5000))
    with pytest.raises(errors.FormatError, match="x.index"):
        checkpoint.read(tmp_path / "x")


def test_unknown_name(good: Path):
    with pytest.raises(errors.FormatError, match="no tensor named 'missing'"):
        checkpoint.read(good, ["missing"])


def test_bad_arguments(tmp_path: Path):
    with pytest.raises(errors.InvalidArgumentError, match="reserved"):
        checkpoint.write(tmp_path / "c", {"": np.ones(1)})
    with pytest.raises(errors.InvalidArgumentError):
        checkpoint.write(tmp_path / "c", {"a": np.array([object()], dtype=object)})
