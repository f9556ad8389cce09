#!/usr/bin/env python3
"""Write the broken/hostile-file corpus under tests/corpus/broken/ (read by tests/python/test_corpus.py).

Run from the repository root (Keras 3 + TensorFlow installed, kerasafe importable):

    python tests/corpus/generate_broken.py

Good files are written first — a tiny model (``Input(4) → Dense(3)``, see :func:`tiny_model`)
saved by kerasafe as ``.keras``, ``.h5``, a SavedModel, a ``.weights.h5`` and a TF checkpoint —
then each case derives one broken file from them: truncated at several offsets, bit-flipped,
wrong magic, huge declared sizes, path traversal / absolute / symlink zip members, duplicate zip
members, symlinks in a SavedModel's ``assets/``, unsorted index keys, mismatched shapes,
non-UTF-8 names. Checkpoint indexes that need impossible contents are written by a small
LevelDB-table writer here (kerasafe's own writer refuses them).

``expectations.json`` maps each entry — a file, a SavedModel directory, or a checkpoint prefix
(covering ``PREFIX.index`` and ``PREFIX.data-*``) — to the public call that must fail and the
exact ``kerasafe.errors`` class it must raise. Output is deterministic (fixed seeds and
offsets) apart from what Keras/TF write into their own files.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "broken"
KEEP = {"expectations.json", "README.md"}

EXPECT: dict[str, dict[str, str]] = {}


def expect(name: str, call: str, exception: str, why: str) -> None:
    assert name not in EXPECT, name
    EXPECT[name] = {"call": call, "exception": exception, "why": why}


def tiny_model():
    """The model every corpus file was saved from; tests/python/test_corpus.py builds the same."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")], name="tiny")
    return model


# -- byte helpers ---------------------------------------------------------------------------------


def truncate(data: bytes, n: int) -> bytes:
    return data[:n]


def flip(data: bytes, offset: int, mask: int = 0x10) -> bytes:
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


# -- a minimal LevelDB table writer (TF's .index format), for contents kerasafe refuses to write --

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_varint_field(field: int, v: int) -> bytes:
    return varint(field << 3) + varint(v & 0xFFFFFFFFFFFFFFFF)


def pb_bytes_field(field: int, data: bytes) -> bytes:
    return varint((field << 3) | 2) + varint(len(data)) + data


def pb_fixed32_field(field: int, v: int) -> bytes:
    return varint((field << 3) | 5) + struct.pack("<I", v)


def bundle_header(num_shards: int = 1) -> bytes:
    version = pb_varint_field(1, 1)  # VersionDef.producer
    return pb_varint_field(1, num_shards) + pb_bytes_field(3, version)


def bundle_entry(dtype: int, shape: list[int], offset: int, size: int, crc: int, shard: int = 0) -> bytes:
    dims = b"".join(pb_bytes_field(2, pb_varint_field(1, d)) for d in shape)
    out = pb_varint_field(1, dtype) + pb_bytes_field(2, dims)
    if shard:
        out += pb_varint_field(3, shard)
    if offset:
        out += pb_varint_field(4, offset)
    out += pb_varint_field(5, size) + pb_fixed32_field(6, mask(crc))
    return out


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<II", 0, 1)  # one restart point at 0 (no prefix sharing)


def sstable(entries: list[tuple[bytes, bytes]]) -> bytes:
    """Keys are written in the order given (no sorting, no checks)."""
    out = bytearray()

    def put_block(block: bytes) -> bytes:
        handle = varint(len(out)) + varint(len(block))
        trailer = b"\x00" + struct.pack("<I", mask(crc32c(block + b"\x00")))
        out.extend(block + trailer)
        return handle

    data_handle = put_block(_block(entries))
    meta_handle = put_block(_block([]))
    last = max((k for k, _ in entries), default=b"") + b"\xff"
    index_handle = put_block(_block([(last, data_handle)]))
    footer = meta_handle + index_handle
    footer += b"\x00" * (40 - len(footer)) + struct.pack("<Q", 0xDB4775248B80FB57)
    out.extend(footer)
    return bytes(out)


def raw_checkpoint(prefix: Path, entries: list[tuple[bytes, bytes]], data: bytes) -> None:
    Path(f"{prefix}.index").write_bytes(sstable([(b"", bundle_header())] + entries))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(data)


# -- zip helpers -----------------------------------------------------------------------------------


def zip_members(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(i, z.read(i)) for i in z.infolist()]


def write_zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of one case
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            for info, data in members:
                if isinstance(info, str):
                    info = zipfile.ZipInfo(info, date_time=(2020, 1, 1, 0, 0, 0))
                z.writestr(info, data)


def fresh_info(name: str) -> zipfile.ZipInfo:
    return zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))


# -- the cases -------------------------------------------------------------------------------------


def keras_cases(good: Path) -> None:
    data = good.read_bytes()
    n = len(data)
    for label, cut in (("4b", 4), ("half", n // 2), ("minus22", n - 22)):
        name = f"keras_truncated_{label}.keras"
        (OUT / name).write_bytes(truncate(data, cut))
        expect(name, "load_model", "FormatError", f"zip cut to {cut} of {n} bytes")

    (OUT / "keras_wrong_magic.keras").write_bytes(b"XK\x03\x04" + data[4:])
    expect("keras_wrong_magic.keras", "load_model", "FormatError", "first bytes are not a zip signature")

    members = zip_members(good)
    config = dict(members)[next(i for i, _ in members if i.filename == "config.json")]

    def variant(name: str, extra: list, *, drop: str | None = None, exc: str, why: str) -> None:
        kept = [(fresh_info(i.filename), d) for i, d in members if i.filename != drop]
        write_zip(OUT / name, kept + extra)
        expect(name, "load_model", exc, why)

    variant("keras_traversal_dotdot.keras", [("../evil.txt", b"pwned")], exc="FormatError", why="member ../evil.txt")
    variant("keras_traversal_assets.keras", [("assets/../../evil.txt", b"pwned")], exc="FormatError", why="member assets/../../evil.txt")
    variant("keras_traversal_absolute.keras", [("/tmp/evil.txt", b"pwned")], exc="FormatError", why="absolute member name")
    variant("keras_backslash.keras", [("assets\\..\\evil.txt", b"pwned")], exc="FormatError", why="backslashes in a member name")
    link = fresh_info("assets/passwd")
    link.create_system = 3
    link.external_attr = (0o120777 << 16)
    variant("keras_symlink_member.keras", [(link, b"/etc/passwd")], exc="UnsafeArtifactError", why="a symlink member")
    variant("keras_duplicate_member.keras", [("config.json", config)], exc="FormatError", why="config.json twice")
    variant("keras_no_config.keras", [], drop="config.json", exc="FormatError", why="no config.json")
    variant("keras_config_not_json.keras", [("config.json", b'{"class_name": "Sequential", "config": ')], drop="config.json", exc="FormatError", why="config.json is not JSON")
    variant("keras_config_not_utf8.keras", [("config.json", b'{"class_name": "\xff\xfe"}')], drop="config.json", exc="FormatError", why="config.json is not UTF-8")
    variant("keras_no_weights.keras", [], drop="model.weights.h5", exc="FormatError", why="no model.weights.h5")

    # Huge declared sizes: the central directory's uncompressed size of config.json.
    raw = bytearray(data)
    pos = 0
    while True:
        pos = raw.find(b"PK\x01\x02", pos)
        if pos < 0:
            raise SystemExit("config.json not found in the central directory")
        name_len = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46:pos + 46 + name_len] == b"config.json":
            break
        pos += 4
    struct.pack_into("<I", raw, pos + 24, 0xFFFFFFF0)  # uncompressed size
    (OUT / "keras_huge_declared_size.keras").write_bytes(bytes(raw))
    expect("keras_huge_declared_size.keras", "load_model", "FormatError", "config.json declares 4 GiB stored")
    struct.pack_into("<I", raw, pos + 20, 0xFFFFFFF0)  # compressed size too: larger than the archive
    (OUT / "keras_huge_compressed_size.keras").write_bytes(bytes(raw))
    expect("keras_huge_compressed_size.keras", "load_model", "FormatError", "config.json declares 4 GiB compressed and stored")

    # A stored member whose bytes were altered: the zip CRC-32 no longer matches.
    off = data.find(b'"class_name"')
    (OUT / "keras_bitflip_config.keras").write_bytes(flip(data, off + 1))
    expect("keras_bitflip_config.keras", "load_model", "FormatError", "a flipped byte in config.json (zip CRC-32)")

    # The weights member: truncated, and a kernel of the wrong shape.
    weights = dict((i.filename, d) for i, d in members)["model.weights.h5"]
    kept = [(fresh_info(i.filename), d) for i, d in members if i.filename != "model.weights.h5"]
    write_zip(OUT / "keras_weights_truncated.keras", kept + [("model.weights.h5", weights[: len(weights) // 2])])
    expect("keras_weights_truncated.keras", "load_model", "FormatError", "model.weights.h5 cut in half")
    write_zip(OUT / "keras_weights_bad_magic.keras", kept + [("model.weights.h5", b"\x00" * 8 + weights[8:])])
    expect("keras_weights_bad_magic.keras", "load_model", "FormatError", "model.weights.h5 without HDF5 signature")
    write_zip(OUT / "keras_weights_shape.keras", kept + [("model.weights.h5", reshaped_weights_h5(weights))])
    expect("keras_weights_shape.keras", "load_model", "FormatError", "kernel stored as 5x3 for a 4x3 variable")


def reshaped_weights_h5(weights: bytes) -> bytes:
    """The Keras 3 weights file with every 2-D dataset replaced by one a row larger."""
    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "w.h5"
        p.write_bytes(weights)
        with h5py.File(p, "r+") as f:
            found = []
            f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 2 else None)
            assert found, "no 2-D dataset in the weights file"
            for n in found:
                old = f[n][()]
                del f[n]
                f[n] = np.zeros((old.shape[0] + 1, old.shape[1]), old.dtype)
        return p.read_bytes()


def h5_cases(good_h5: Path, good_weights: Path) -> None:
    import h5py

    data = good_h5.read_bytes()
    n = len(data)
    for label, cut in (("7b", 7), ("100b", 100), ("half", n // 2)):
        name = f"h5_truncated_{label}.h5"
        (OUT / name).write_bytes(truncate(data, cut))
        expect(name, "load_model", "FormatError", f"HDF5 cut to {cut} of {n} bytes")
    (OUT / "h5_wrong_magic.h5").write_bytes(b"\x89HDF\r\n\x1a\x0b" + data[8:])
    expect("h5_wrong_magic.h5", "load_model", "FormatError", "HDF5 signature altered")
    # Superblock: the root group's object header address points past the end of the file.
    raw = bytearray(data)
    assert raw[8] == 0, "expected a version-0 superblock"
    struct.pack_into("<Q", raw, 40, 0x7FFFFFFFFFFF)  # end-of-file address: huge
    (OUT / "h5_huge_eof.h5").write_bytes(bytes(raw))
    expect("h5_huge_eof.h5", "load_model", "FormatError", "superblock end-of-file address far past the file")
    raw = bytearray(data)
    struct.pack_into("<Q", raw, 64, n * 4)  # root symbol table entry: object header address
    (OUT / "h5_bad_root_address.h5").write_bytes(bytes(raw))
    expect("h5_bad_root_address.h5", "load_model", "FormatError", "root object header address past the end")

    with h5py.File(good_h5, "r") as f:
        assert "model_config" in f.attrs
    shutil.copy(good_h5, OUT / "h5_config_not_json.h5")
    with h5py.File(OUT / "h5_config_not_json.h5", "r+") as f:
        f.attrs["model_config"] = '{"class_name": "Sequential", "config": '
    expect("h5_config_not_json.h5", "load_model", "FormatError", "model_config attribute is not JSON")
    shutil.copy(good_h5, OUT / "h5_no_config.h5")
    with h5py.File(OUT / "h5_no_config.h5", "r+") as f:
        del f.attrs["model_config"]
    expect("h5_no_config.h5", "load_model", "FormatError", "no model_config attribute")

    w = good_weights.read_bytes()
    (OUT / "weights_truncated.weights.h5").write_bytes(truncate(w, len(w) // 2))
    expect("weights_truncated.weights.h5", "load_weights", "FormatError", "weights file cut in half")
    (OUT / "weights_shape.weights.h5").write_bytes(reshaped_weights_h5(w))
    expect("weights_shape.weights.h5", "load_weights", "FormatError", "kernel 5x3 for a 4x3 variable")
    shutil.copy(good_weights, OUT / "weights_nonutf8_name.weights.h5")
    with h5py.File(OUT / "weights_nonutf8_name.weights.h5", "r+") as f:
        f.create_group(b"layers/\xff\xfe")
    expect("weights_nonutf8_name.weights.h5", "load_weights", "FormatError", "a group name that is not UTF-8")


def checkpoint_cases(good_prefix: Path) -> None:
    from kerasafe import checkpoint

    index = Path(f"{good_prefix}.index").read_bytes()
    data_file = Path(f"{good_prefix}.data-00000-of-00001").read_bytes()

    def ckpt(name: str, index_bytes: bytes, data_bytes: bytes | None, exc: str, why: str, call: str = "checkpoint.read") -> None:
        Path(OUT / f"{name}.index").write_bytes(index_bytes)
        if data_bytes is not None:
            Path(OUT / f"{name}.data-00000-of-00001").write_bytes(data_bytes)
        expect(name, call, exc, why)

    for label, cut in (("10b", 10), ("half", len(index) // 2), ("minus1", len(index) - 1)):
        ckpt(f"ckpt_index_truncated_{label}", truncate(index, cut), data_file, "FormatError", f"index cut to {cut} bytes")
    ckpt("ckpt_index_wrong_magic", index[:-8] + b"\x00" * 8, data_file, "FormatError", "footer magic zeroed")
    ckpt("ckpt_index_bitflip", flip(index, 5), data_file, "ChecksumError", "a flipped bit in the first data block (block CRC)")
    ckpt("ckpt_index_empty", b"", data_file, "FormatError", "empty index")
    ckpt("ckpt_data_bitflip", index, flip(data_file, len(data_file) // 2), "ChecksumError", "a flipped bit in a tensor (CRC32C)")
    ckpt("ckpt_data_truncated", index, truncate(data_file, len(data_file) // 2), "FormatError", "data file cut in half")
    ckpt("ckpt_data_missing", index, None, "ArtifactNotFoundError", "no data file")

    floats = np.arange(4, dtype=np.float32).tobytes()
    crc = crc32c(floats)
    f32 = 1  # DT_FLOAT

    def raw(name: str, entries: list, exc: str, why: str, data: bytes = floats, call: str = "checkpoint.read") -> None:
        raw_checkpoint(OUT / name, entries, data)
        expect(name, call, exc, why)

    ok = bundle_entry(f32, [4], 0, 16, crc)
    raw("ckpt_unsorted_keys", [(b"b", ok), (b"a", ok)], "FormatError", "index keys out of order")
    raw("ckpt_duplicate_keys", [(b"a", ok), (b"a", ok)], "FormatError", "the same key twice")
    raw("ckpt_no_header", [(b"a", ok)], "FormatError", "no bundle header")
    Path(OUT / "ckpt_no_header.index").write_bytes(sstable([(b"a", ok)]))
    raw("ckpt_huge_size", [(b"a", bundle_entry(f32, [1 << 38], 0, 1 << 40, crc))], "FormatError", "a tensor declaring 1 TiB")
    raw("ckpt_huge_offset", [(b"a", bundle_entry(f32, [4], (1 << 63) - 8, 16, crc))], "FormatError", "an offset near 2**63")
    raw("ckpt_shape_overflow", [(b"a", bundle_entry(f32, [1 << 40, 1 << 40], 0, 16, crc))], "FormatError", "a shape whose product overflows")
    raw("ckpt_shape_size_mismatch", [(b"a", bundle_entry(f32, [5], 0, 16, crc))], "FormatError", "5 floats in 16 bytes")
    raw("ckpt_nonutf8_key", [(b"a\xff\xfe", ok)], "FormatError", "a tensor name that is not UTF-8")
    raw("ckpt_bad_shard", [(b"a", bundle_entry(f32, [4], 0, 16, crc, shard=7))], "FormatError", "shard 7 of 1")
    raw("ckpt_entry_not_proto", [(b"a", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")], "FormatError", "entry value is not a protobuf")
    Path(OUT / "ckpt_huge_shards.index").write_bytes(sstable([(b"", bundle_header(1 << 30)), (b"a", ok)]))
    expect("ckpt_huge_shards", "checkpoint.read", "FormatError", "a header declaring 2**30 shards")

    # load_weights with a checkpoint whose kernel has the wrong shape / a tensor the model lacks.
    values = checkpoint.read(good_prefix)
    kernel = next(k for k, v in values.items() if getattr(v, "ndim", 0) == 2)
    bad = dict(values)
    bad[kernel] = np.zeros((5, 3), np.float32)
    checkpoint.write(OUT / "ckpt_weights_shape", bad)
    expect("ckpt_weights_shape", "load_weights", "FormatError", f"{kernel} stored as 5x3 for a 4x3 variable")
    Path(OUT / "ckpt_weights_bitflip.index").write_bytes(index)
    Path(OUT / "ckpt_weights_bitflip.data-00000-of-00001").write_bytes(flip(data_file, 0))
    expect("ckpt_weights_bitflip", "load_weights", "ChecksumError", "a flipped bit in the first tensor")


def savedmodel_cases(good: Path) -> None:
    def sm(name: str, exc: str, why: str, call: str = "load_model"):
        d = OUT / name
        shutil.copytree(good, d, symlinks=True)
        expect(name, call, exc, why)
        return d

    pb = (good / "saved_model.pb").read_bytes()
    d = sm("sm_pb_truncated", "FormatError", "saved_model.pb cut in half")
    (d / "saved_model.pb").write_bytes(truncate(pb, len(pb) // 2))
    d = sm("sm_pb_garbage", "FormatError", "saved_model.pb is not a protobuf")
    (d / "saved_model.pb").write_bytes(b"\xff" * 64)
    d = sm("sm_assets_dir_symlink", "FormatError", "assets/ itself is a symlink to /etc (not a directory)")
    shutil.rmtree(d / "assets", ignore_errors=True)
    os.symlink("/etc", d / "assets")
    d = sm("sm_assets_file_symlink", "UnsafeArtifactError", "assets/passwd is a symlink to /etc/passwd")
    (d / "assets").mkdir(exist_ok=True)
    os.symlink("/etc/passwd", d / "assets" / "passwd")
    d = sm("sm_variables_missing", "FormatError", "no variables/ although the object graph declares variables")
    shutil.rmtree(d / "variables")
    d = sm("sm_variables_bitflip", "ChecksumError", "a flipped bit in the variables data file")
    v = d / "variables" / "variables.data-00000-of-00001"
    v.write_bytes(flip(v.read_bytes(), 0))
    d = sm("sm_variables_index_truncated", "FormatError", "variables.index cut in half")
    v = d / "variables" / "variables.index"
    v.write_bytes(truncate(v.read_bytes(), len(v.read_bytes()) // 2))
    if (good / "keras_config.json").exists():
        d = sm("sm_keras_config_not_json", "FormatError", "keras_config.json is not JSON")
        (d / "keras_config.json").write_text('{"class_name": ')
    if (good / "fingerprint.pb").exists():
        d = sm("sm_fingerprint_garbage", "FormatError", "fingerprint.pb is not a protobuf", call="inspect")
        (d / "fingerprint.pb").write_bytes(b"\xff" * 16)


def main() -> None:
    import kerasafe

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    model = tiny_model()
    model(np.zeros((1, 4), np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        kerasafe.save_model(model, t / "good.keras")
        kerasafe.save_model(model, t / "good.h5")
        kerasafe.save_model(model, t / "good_savedmodel")
        kerasafe.save_weights(model, t / "good.weights.h5")
        kerasafe.save_weights(model, t / "ckpt" / "good")
        keras_cases(t / "good.keras")
        h5_cases(t / "good.h5", t / "good.weights.h5")
        checkpoint_cases(t / "ckpt" / "good")
        savedmodel_cases(t / "good_savedmodel")
    (OUT / "expectations.json").write_text(json.dumps(dict(sorted(EXPECT.items())), indent=2) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"{len(EXPECT)} entries, {total} bytes under {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
