"""Files written for an artifact are hashed while they are written: the publish takes that digest
for a file whose identity (device, inode, size, modification time) is unchanged, and reads every
other file. The manifest must still hold each file's true SHA-256, and verification always reads."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import _core, _formats

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

# format -> (the core writer it goes through, the file whose digest is computed while written)
WRITTEN = {
    "savedmodel": ("checkpoint_write", "variables/variables.data-00000-of-00001"),
    "weights": ("checkpoint_write", "ckpt.data-00000-of-00001"),
    "keras": ("keras_archive_write", "model.keras"),
    "h5": ("h5_write", "model.h5"),
}


def _trained() -> keras.Model:
    # Big enough that the HDF5 writers put a value outside libhdf5 (1 MiB and more).
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(600), keras.layers.Dense(600), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.train_on_batch(x, x[:, :2])
    return model


@pytest.fixture(scope="module")
def trained() -> keras.Model:
    return _trained()


@pytest.mark.parametrize("fmt", sorted(WRITTEN))
def test_artifact_files_are_hashed_while_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: keras.Model, fmt: str) -> None:
    """The model's file is written with hashing on; its manifest entry is still the file's
    SHA-256; plain saves do not hash."""
    writer, data_file = WRITTEN[fmt]
    flags: list[bool] = []
    real_write = getattr(_core, writer)

    def recording_write(*args, for_artifact=False, **kwargs):
        flags.append(for_artifact)
        return real_write(*args, for_artifact=for_artifact, **kwargs)

    monkeypatch.setattr(_core, writer, recording_write)
    art = kerasafe.save_artifact(trained, tmp_path / "artifacts", name="m", format=fmt)
    # The model's file first; the reference outputs (a checkpoint) are not hashed early.
    assert flags[0] is True and not any(flags[1:])
    entry = art.metadata["manifest"]["files"][data_file]
    written = (Path(art.path) / data_file).read_bytes()
    assert entry == {"size": len(written), "sha256": hashlib.sha256(written).hexdigest()}
    assert kerasafe.verify_artifact(art.path, check_outputs=False).ok

    flags.clear()
    if fmt == "weights":
        kerasafe.save_weights(trained, tmp_path / "plain" / "ckpt")
    else:
        kerasafe.save_model(trained, tmp_path / ("plain" + {"savedmodel": "", "keras": ".keras", "h5": ".h5"}[fmt]))
    assert flags == [False]


def _digest_threads_end(timeout: float = 30.0) -> bool:
    """Wait until no thread of this process is finishing a digest (named kerasafe-sha256)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = []
        for comm in Path("/proc/self/task").glob("*/comm"):
            try:
                names.append(comm.read_text().strip())
            except OSError:  # the thread ended meanwhile
                pass
        if "kerasafe-sha256" not in names:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("fmt", ["savedmodel", "keras", "h5"])
def test_the_publish_takes_the_digest_computed_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: keras.Model, fmt: str) -> None:
    """Shows the shortcut is taken: after the write and before the publish, the file's bytes
    change while its size and modification time are kept. The manifest then holds the written
    bytes' SHA-256, not the file's, and verification, which always reads, flags the file.
    (For `.h5` and `.keras` the end of the digest is read back on a thread of its own once the
    write ends: the file is changed after that thread is gone.)"""
    data_file = WRITTEN[fmt][1]
    real_load = _formats.load_from
    digests: dict[str, str] = {}

    def load_then_alter(fmt, directory, **kwargs):
        reloaded = real_load(fmt, directory, **kwargs)
        assert _digest_threads_end(), "a background digest did not finish"
        path = Path(directory) / data_file
        st = path.stat()
        raw = bytearray(path.read_bytes())
        digests["written"] = hashlib.sha256(raw).hexdigest()
        raw[len(raw) // 2] ^= 0xFF
        with open(path, "r+b") as f:  # same inode, same size
            f.write(raw)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        digests["altered"] = hashlib.sha256(raw).hexdigest()
        return reloaded

    monkeypatch.setattr(_formats, "load_from", load_then_alter)
    art = kerasafe.save_artifact(trained, tmp_path / "artifacts", name="m", format=fmt)
    assert art.metadata["manifest"]["files"][data_file]["sha256"] == digests["written"] != digests["altered"]
    assert not kerasafe.verify_artifact(art.path, check_outputs=False).checksums_ok
