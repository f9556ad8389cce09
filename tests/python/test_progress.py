"""Progress bars: the Rust counters reach exactly the bytes moved, the bar is drawn only when it
should be (explicit flag, KERASAFE_PROGRESS, a terminal and 1 GiB), and the library logs instead
of printing. No timing assertions."""

from __future__ import annotations

import ast
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import _core, _h5tree, _progress, checkpoint

PACKAGE = Path(kerasafe.__file__).parent


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(_progress.ENV, raising=False)


def tensors():
    return {
        "big": np.arange(5 << 20, dtype=np.float32),  # 20 MiB: more than one 16 MiB chunk
        "small": np.ones((3, 4), np.float64),
        "flags": np.array([True, False, True]),
        "names": np.array([b"alpha", b"", b"gamma"], dtype=object),
    }


def nbytes(values: dict) -> int:
    return sum(v.nbytes for v in values.values() if v.dtype != object)


def data_file(prefix: Path) -> Path:
    return Path(f"{prefix}.data-00000-of-00001")


# -- the Rust counters ----------------------------------------------------------------------------


def test_counter_starts_at_zero():
    c = _core.ProgressCounter()
    assert (c.done, c.total) == (0, 0)
    assert "done=0" in repr(c)


def test_checkpoint_write_and_read_count_every_byte(tmp_path: Path):
    prefix = tmp_path / "ckpt"
    values = [checkpoint.as_values(k, v) for k, v in tensors().items()]
    c = _core.ProgressCounter()
    _core.checkpoint_write(str(prefix), values, progress=c)
    size = data_file(prefix).stat().st_size
    assert c.done == c.total == size  # the data file, string lengths and all

    reader = _core.CheckpointReader(str(prefix))
    fixed = {k: v for k, v in tensors().items() if v.dtype != object}
    bufs = [np.empty(v.nbytes, np.uint8) for v in fixed.values()]
    r = _core.ProgressCounter()
    reader.read_into(list(fixed), bufs, progress=r)
    assert r.done == r.total == nbytes(fixed)
    reader.read_strings("names", progress=r)
    assert r.done == r.total == size  # every tensor read: the whole data file


def test_checkpoint_without_a_counter_counts_nothing(tmp_path: Path):
    c = _core.ProgressCounter()
    checkpoint.write(tmp_path / "ckpt", tensors(), progress=False)
    assert checkpoint.read(tmp_path / "ckpt", progress=False)["big"].shape == (5 << 20,)
    assert (c.done, c.total) == (0, 0)


def h5_tree() -> _h5tree.Group:
    root = _h5tree.Group({"note": "x"})
    g = root.create_group("layer")
    g.create_dataset("kernel", data=np.arange(1 << 19, dtype=np.float32))  # 2 MiB: raw pwrite path
    g.create_dataset("bias", data=np.ones(7, np.float16))  # small: through libhdf5
    g.create_dataset("mask", data=np.array([True, False]))
    root.create_dataset("names", data=np.array(["a", "bc"], dtype=object))  # strings: not counted
    return root


H5_NUMERIC = (1 << 19) * 4 + 7 * 2 + 2


def test_h5_write_and_read_count_every_value_byte(tmp_path: Path):
    path = tmp_path / "w.h5"
    c = _core.ProgressCounter()
    _core.h5_write(str(path), _h5tree._to_core(h5_tree()), progress=c)
    assert c.done == c.total == H5_NUMERIC
    r = _core.ProgressCounter()
    back = _h5tree._from_core(_core.h5_read(str(path), True, progress=r))
    assert r.done == r.total == H5_NUMERIC
    np.testing.assert_array_equal(back["layer/kernel"].value, np.arange(1 << 19, dtype=np.float32))


def test_keras_archive_counts_weights_and_members(tmp_path: Path):
    path = tmp_path / "m.keras"
    c = _core.ProgressCounter()
    _core.keras_archive_write(str(path), "{}", "{}", _h5tree._to_core(h5_tree()), [], progress=c)
    assert c.done == c.total > H5_NUMERIC  # the HDF5 values, then the zip members
    r = _core.ProgressCounter()
    _core.keras_archive_read(str(path), True, progress=r)
    assert r.done == r.total > H5_NUMERIC


def test_manifest_hashing_counts_every_file(tmp_path: Path):
    staged = _core.store_begin(str(tmp_path / "root"), "m", "h5", None)
    (Path(staged.path) / "a.bin").write_bytes(b"x" * 3000)
    (Path(staged.path) / "sub").mkdir()
    (Path(staged.path) / "sub" / "b.bin").write_bytes(b"y" * 17)
    c = _core.ProgressCounter()
    published = json.loads(staged.commit(json.dumps({"format": "h5"}), progress=c))
    assert c.done == c.total == 3017
    v = _core.ProgressCounter()
    _core.store_verify_strict(published["path"], progress=v)
    assert v.done == v.total == 3017


# -- when a bar is drawn --------------------------------------------------------------------------


def test_resolution_order(monkeypatch):
    tty, pipe = FakeTTY(), io.StringIO()
    big, small = _progress.THRESHOLD, _progress.THRESHOLD - 1
    assert _progress.enabled(True, 0, pipe) and not _progress.enabled(False, big, tty)
    assert _progress.enabled(None, big, tty) and not _progress.enabled(None, small, tty)
    assert not _progress.enabled(None, big, pipe)  # CI logs: nothing unless asked
    for on in ("1", "true", "YES", "on"):
        monkeypatch.setenv(_progress.ENV, on)
        assert _progress.enabled(None, 0, pipe)
        assert not _progress.enabled(False, 0, pipe)  # the argument wins over the environment
    for off in ("0", "false", "no", "Off"):
        monkeypatch.setenv(_progress.ENV, off)
        assert not _progress.enabled(None, big, tty)
        assert _progress.enabled(True, 0, pipe)


def test_estimate_is_computed_only_when_needed():
    def boom() -> int:
        raise AssertionError("estimated")

    assert _progress.enabled(True, boom, io.StringIO())
    assert not _progress.enabled(None, boom, io.StringIO())  # not a terminal: no need to size


def test_unknown_env_value_is_logged_and_ignored(monkeypatch, caplog):
    monkeypatch.setenv(_progress.ENV, "maybe")
    with caplog.at_level("WARNING", logger="kerasafe"):
        assert not _progress.enabled(None, _progress.THRESHOLD, io.StringIO())
    assert "KERASAFE_PROGRESS" in caplog.text


def final_line(err: str) -> str:
    assert err.endswith("\n"), repr(err)
    return err.rstrip("\n").split("\r")[-1]


def test_progress_true_draws_a_final_line_with_the_total(tmp_path: Path, capsys):
    values = tensors()
    checkpoint.write(tmp_path / "ckpt", values, progress=True)
    size = data_file(tmp_path / "ckpt").stat().st_size
    line = final_line(capsys.readouterr().err)
    assert line.startswith("kerasafe: writing ckpt")
    assert f"{_progress.format_bytes(size)} / {_progress.format_bytes(size)}" in line and "100%" in line

    checkpoint.read(tmp_path / "ckpt", progress=True)
    line = final_line(capsys.readouterr().err)
    assert line.startswith("kerasafe: reading ckpt") and "100%" in line
    assert _progress.format_bytes(size) in line


def test_progress_false_and_the_non_tty_default_draw_nothing(tmp_path: Path, capsys, monkeypatch):
    checkpoint.write(tmp_path / "ckpt", tensors(), progress=False)
    checkpoint.read(tmp_path / "ckpt", progress=False)
    monkeypatch.setattr(_progress, "THRESHOLD", 0)
    checkpoint.write(tmp_path / "ckpt2", tensors())  # captured stderr is not a terminal
    checkpoint.read(tmp_path / "ckpt2")
    assert capsys.readouterr().err == ""


def test_terminal_default_follows_the_threshold(tmp_path: Path, monkeypatch):
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    checkpoint.write(tmp_path / "ckpt", tensors())  # 20 MiB < 1 GiB: no bar
    assert tty.getvalue() == ""
    monkeypatch.setattr(_progress, "THRESHOLD", 1 << 20)
    checkpoint.write(tmp_path / "ckpt", tensors())
    assert final_line(tty.getvalue()).startswith("kerasafe: writing ckpt")


def test_env_turns_the_bar_on_and_off(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv(_progress.ENV, "1")
    checkpoint.write(tmp_path / "ckpt", tensors())
    assert "100%" in final_line(capsys.readouterr().err)
    monkeypatch.setenv(_progress.ENV, "0")
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(_progress, "THRESHOLD", 0)
    checkpoint.write(tmp_path / "ckpt", tensors())
    assert tty.getvalue() == ""


def test_a_failed_call_still_ends_the_line(tmp_path: Path, capsys):
    with pytest.raises(kerasafe.errors.KerasafeError):
        checkpoint.read(tmp_path / "missing", progress=True)
    err = capsys.readouterr().err
    assert err == "" or err.endswith("\n")


def test_format_bytes():
    assert _progress.format_bytes(0) == "0 B"
    assert _progress.format_bytes(999) == "999 B"
    assert _progress.format_bytes(1500) == "1.5 kB"
    assert _progress.format_bytes(123_456_789) == "123 MB"
    assert _progress.format_bytes(1 << 30) == "1.07 GB"


# -- through the model API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    keras = pytest.importorskip("keras")
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    m.fit(np.ones((4, 8)), np.ones((4, 1)), verbose=0)
    return m


@pytest.mark.parametrize("name", ["model.h5", "model.keras", "savedmodel_dir"])
def test_save_and_load_model_draw_one_bar_each(model, tmp_path: Path, capsys, name: str):
    path = tmp_path / name
    kerasafe.save_model(model, path, progress=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and final_line(err).startswith(f"kerasafe: saving {name}")
    assert "100%" in final_line(err)
    kerasafe.load_model(path, progress=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and final_line(err).startswith(f"kerasafe: loading {name}")
    kerasafe.load_model(path, progress=False)
    kerasafe.save_model(model, path)
    assert capsys.readouterr().err == ""


def test_weights_checkpoint_progress(model, tmp_path: Path, capsys):
    kerasafe.save_weights(model, tmp_path / "ckpt", progress=True)
    assert "kerasafe: saving ckpt" in final_line(capsys.readouterr().err)
    kerasafe.load_weights(model, tmp_path / "ckpt", progress=True)
    line = final_line(capsys.readouterr().err)
    assert line.startswith("kerasafe: loading ckpt") and "100%" in line


def test_artifact_draws_a_single_bar_over_nested_calls(model, tmp_path: Path, capsys):
    art = kerasafe.save_artifact(model, tmp_path, name="m", format="h5", progress=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # save, reload and hash report to one bar
    assert final_line(err).startswith("kerasafe: saving m/h5")
    kerasafe.load_artifact(art.path, progress=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "100%" in final_line(err)


def test_cli_progress_flags_parse():
    from kerasafe import cli

    parser = cli._parser()
    assert parser.parse_args(["verify", "x", "--progress"]).progress is True
    assert parser.parse_args(["convert", "a", "b", "--no-progress"]).progress is False
    assert parser.parse_args(["verify", "x"]).progress is None


# -- logging, not printing ------------------------------------------------------------------------


def test_the_library_never_prints():
    """Only the command line and the demo print (that is their job); the rest logs to 'kerasafe'."""
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in ("cli.py", "demo.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
