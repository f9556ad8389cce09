"""The command line (and ``kerasafe.inspect``) against files written by real Keras, tf-keras and
kerasafe: output, ``--json``, exit codes, one-line errors, and no TensorFlow where none is needed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import cli

from . import models
from .conftest import run_python

keras = pytest.importorskip("keras")

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

# Runs the CLI in an interpreter where importing TensorFlow or Keras fails, then checks that
# neither was imported.
NO_TF = """
import sys

class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"importing {name} is blocked in this test")
        return None

sys.meta_path.insert(0, _Blocked())
from kerasafe.cli import main
rc = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
if loaded:
    print("imported:", loaded, file=sys.stderr)
    sys.exit(99)
sys.exit(rc)
"""


def ks(*args: object, no_tf: bool = False, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run ``kerasafe ARGS`` in a fresh interpreter."""
    argv = [str(a) for a in args]
    cmd = [sys.executable, "-c", NO_TF, *argv] if no_tf else [sys.executable, "-m", "kerasafe.cli", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


def ks_json(*args: object, no_tf: bool = False, expect: int = 0) -> dict:
    proc = ks(*args, "--json", no_tf=no_tf)
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


# TensorFlow's C++ runtime logs a few lines to stderr on import whatever TF_CPP_MIN_LOG_LEVEL says.
TF_NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} \d\d:\d\d:\S+ )")


def assert_one_line_error(proc: subprocess.CompletedProcess[str], command: str, rc: int = 2) -> str:
    assert proc.returncode == rc, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if not TF_NATIVE_LOG.match(line)]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"kerasafe {command}: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def _fitted_mlp(seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = models.build("mlp", keras)
    model.compile(optimizer="adam", loss="mse")
    x = models.sample_input("mlp")[0]
    model.fit(x, np.zeros((4, 3), "float32"), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def mlp():
    return _fitted_mlp()


@pytest.fixture(scope="module")
def names(mlp) -> list[str]:
    """The MLP's layer names (Keras numbers them per process: ``dense_12``, …)."""
    return [layer.name for layer in mlp.layers]


@pytest.fixture(scope="module")
def store(tmp_path_factory, mlp):
    """An artifact root: every format of the MLP, a second keras version after one more step."""
    root = tmp_path_factory.mktemp("store")
    for fmt in ("savedmodel", "h5", "keras", "weights"):
        kerasafe.save_artifact(mlp, root, name="mlp", format=fmt, metadata={"released": fmt == "h5", "data": {"dataset_id": "synthetic"}})
    changed = keras.models.clone_model(mlp)
    changed.set_weights(mlp.get_weights())
    changed.layers[-1].bias.assign(changed.layers[-1].bias + 0.25)
    kerasafe.save_artifact(changed, root, name="mlp", format="keras", metadata={"notes": "bias moved"})
    kerasafe.save_artifact(models.build("cnn", keras), root, name="cnn", format="keras")
    return root


@pytest.fixture(scope="module")
def files(tmp_path_factory, mlp):
    """The same model as written by Keras itself and by kerasafe, in every format."""
    d = tmp_path_factory.mktemp("files")
    mlp.save(d / "keras.keras")
    # Keras's own .h5 save drops the optimizer from the live model's compile config: save a copy.
    kerasafe.load_model(d / "keras.keras").save(d / "keras.h5")
    mlp.save_weights(d / "keras.weights.h5")
    mlp.export(str(d / "exported"), verbose=False)
    kerasafe.save_model(mlp, d / "ks.keras")
    kerasafe.save_model(mlp, d / "ks.h5")
    kerasafe.save_model(mlp, d / "ks_savedmodel")
    kerasafe.save_weights(mlp, d / "ks.weights.h5")
    kerasafe.save_weights(mlp, d / "ks_legacy.h5")
    kerasafe.save_weights(mlp, d / "ckpt" / "weights")
    return d


# -- help and errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(cli.EXAMPLES))
def test_every_command_help_shows_an_example(command: str):
    proc = ks(command, "--help", no_tf=True)
    assert proc.returncode == 0, proc.stderr
    assert "example:" in proc.stdout and f"kerasafe {command}" in proc.stdout


def test_top_level_help_lists_commands():
    proc = ks("--help", no_tf=True)
    assert proc.returncode == 0
    for command in ("inspect", "ls", "verify", "diff", "scan", "convert", "demo"):
        assert command in proc.stdout


def test_python_dash_m_kerasafe_is_the_same_command(tmp_path: Path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "kerasafe", *map(str, a)], capture_output=True, text=True, timeout=600, env=ENV)
    help_ = run("--help")
    assert help_.returncode == 0 and "verify" in help_.stdout
    assert "missing.keras" in assert_one_line_error(run("inspect", tmp_path / "missing.keras"), "inspect")


def test_errors_are_one_line_unless_debug(tmp_path: Path):
    line = assert_one_line_error(ks("inspect", tmp_path / "missing.keras", no_tf=True), "inspect")
    assert "missing.keras" in line
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model at all")
    assert "junk.keras" in assert_one_line_error(ks("inspect", junk, no_tf=True), "inspect")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert "truncated.h5" in assert_one_line_error(ks("inspect", truncated, no_tf=True), "inspect")
    debug = ks("--debug", "inspect", tmp_path / "missing.keras")
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    usage = ks("inspect", no_tf=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr


# -- inspect ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["savedmodel", "h5", "keras", "weights"])
def test_inspect_artifact(store: Path, mlp, names: list[str], fmt: str):
    info = ks_json("inspect", store / "mlp" / fmt / "v1")
    assert info["artifact"]["name"] == "mlp" and info["artifact"]["format"] == fmt and info["artifact"]["version"] == "v1"
    assert info["contains"] == ("weights" if fmt == "weights" else "model")
    assert info["format"] == {"weights": "checkpoint"}.get(fmt, fmt)
    trainable = int(sum(np.prod(w.shape) for w in mlp.trainable_weights))
    assert info["parameters"] == {"total": mlp.count_params(), "trainable": trainable, "non_trainable": mlp.count_params() - trainable}
    assert [layer["name"] for layer in info["layers"] if layer["class_name"] != "InputLayer"] == names
    by_name = {layer["name"]: layer for layer in info["layers"]}
    assert by_name[names[0]]["params"] == 8 * 16 + 16 and by_name[names[0]]["output_shape"] == [None, 16]
    assert by_name[names[1]]["class_name"] == "BatchNormalization" and by_name[names[1]]["params"] == 4 * 16
    assert by_name[names[-1]]["output_shape"] == [None, 3]
    assert len(info["weights"]) == len(mlp.weights)
    assert sum(w["bytes"] for w in info["weights"]) == sum(int(np.prod(w.shape)) * 4 for w in mlp.weights)
    assert all(w["dtype"] == "float32" for w in info["weights"])
    assert info["producer"]["keras_version"] == keras.__version__
    assert info["validation"]["passed"] is True
    assert info["metadata"]["data"] == {"dataset_id": "synthetic"} and info["custom_objects"] == []
    if fmt == "savedmodel":
        assert info["signatures"][0]["name"] == "serving_default"
        assert info["signatures"][0]["inputs"][0]["shape"] == [None, 8]
    if fmt != "weights":
        assert info["optimizer"]["class_name"] == "Adam" and info["optimizer"]["variables"] > 0 and info["optimizer"]["bytes"] > 0
    text = ks("inspect", store / "mlp" / fmt / "v1")
    assert text.returncode == 0
    for word in ("layers", "weights", "parameters", names[1], "validation", "passed"):
        assert word in text.stdout


def test_inspect_format_directory_means_latest_version(store: Path):
    info = ks_json("inspect", store / "mlp" / "keras")
    assert info["artifact"]["version"] == "v2"
    assert info["metadata"]["notes"] == "bias moved"


@pytest.mark.parametrize(
    "name, fmt, contains",
    [
        ("keras.keras", "keras", "model"),
        ("keras.h5", "h5", "model"),
        ("keras.weights.h5", "weights.h5", "weights"),
        ("ks.keras", "keras", "model"),
        ("ks.h5", "h5", "model"),
        ("ks_savedmodel", "savedmodel", "model"),
        ("ks.weights.h5", "weights.h5", "weights"),
        ("ks_legacy.h5", "h5-weights", "weights"),
        ("ckpt/weights", "checkpoint", "weights"),
        ("ckpt", "checkpoint", "weights"),  # a directory with a `checkpoint` state file
        ("ckpt/weights.index", "checkpoint", "weights"),
    ],
)
def test_inspect_files_from_keras_and_kerasafe(files: Path, mlp, names: list[str], name: str, fmt: str, contains: str):
    info = kerasafe.inspect(files / name)
    json.dumps(info)  # JSON-serializable as promised
    assert info["format"] == fmt and info["contains"] == contains
    assert info["parameters"]["total"] == mlp.count_params()
    assert info["parameters"]["non_trainable"] == 32  # BatchNormalization's moving statistics
    assert len(info["weights"]) == 8
    named = {layer["name"] for layer in info["layers"]}
    assert {names[0], names[1], names[3]} <= named  # the weighted layers, named even without a config
    if contains == "model":
        assert [layer["name"] for layer in info["layers"] if layer["class_name"] != "InputLayer"] == names
        assert info["optimizer"]["class_name"] == "Adam"
        assert info["inputs"][0]["shape"] == [None, 8]
    if fmt in ("keras", "h5"):
        assert info["producer"]["keras_version"] == keras.__version__


def test_inspect_exported_savedmodel(files: Path):
    info = kerasafe.inspect(files / "exported")
    assert info["format"] == "savedmodel" and info["model"] is None
    assert {s["name"] for s in info["signatures"]} >= {"serve", "serving_default"}
    assert info["signatures"][0]["outputs"][0]["shape"] == [None, 3]
    assert any("inference only" in note for note in info["notes"])
    assert info["producer"]["tensorflow_version"]


def test_inspect_custom_objects_and_nested_layers(tmp_path: Path):
    from kerasafe import demo

    model = demo.build_model()
    model.compile(optimizer="adam", loss=demo.WeightedMSE(weight=2.0))
    kerasafe.save_model(model, tmp_path / "custom.keras")
    kerasafe.save_model(model, tmp_path / "custom.h5")
    nested = models.build("nested", keras)
    nested.save(tmp_path / "nested.keras")
    for path in (tmp_path / "custom.keras", tmp_path / "custom.h5"):
        info = kerasafe.inspect(path)
        assert info["custom_objects"] == ["Course>ScaledDense", "Course>WeightedMSE"]
        assert {layer["name"]: layer["params"] for layer in info["layers"]}[model.layers[0].name] == 32 * 16 + 16
    info = kerasafe.inspect(tmp_path / "nested.keras")
    inner = next(layer for layer in info["layers"] if layer["name"] == "inner")
    assert inner["class_name"] == "Sequential" and inner["params"] == 6 * 5 + 5 + 5 * 4 + 4 and inner["output_shape"] == [None, 4]
    assert info["parameters"]["total"] == nested.count_params()


def test_inspect_tf_keras_files(tmp_path: Path, tfkeras):
    tfkeras(
        f"""
        import numpy as np, tf_keras as keras
        exec(open({str(Path(models.__file__))!r}).read())
        model = build("two_in_two_out", keras)
        model.compile("adam", "mse")
        model.fit(sample_input("two_in_two_out"), [np.zeros((4, 1)), np.zeros((4, 3))], verbose=0)
        model.save("tfk_savedmodel")
        model.save("tfk.h5")
        model.save_weights("tfk_ckpt/weights")
        """,
        tmp_path,
    )
    reference = models.build("two_in_two_out", keras)
    for name, fmt in (("tfk_savedmodel", "savedmodel"), ("tfk.h5", "h5"), ("tfk_ckpt/weights", "checkpoint")):
        info = ks_json("inspect", tmp_path / name, no_tf=True)
        assert info["format"] == fmt
        assert info["parameters"]["total"] == reference.count_params()
        if fmt != "checkpoint":
            assert info["producer"]["keras_version"].startswith("2.")
            layers = {layer["name"]: layer for layer in info["layers"]}
            assert layers["lstm"]["params"] == 4 * 7 * (6 + 7 + 1) and layers["lstm"]["output_shape"] == [None, 7]
            assert layers["embedding"]["output_shape"] == [None, 5, 6]
            assert layers["concatenate"]["output_shape"] == [None, 12]
            assert [i["name"] for i in info["inputs"]] == ["tokens", "feats"]
        assert info["optimizer"]["class_name" if fmt != "checkpoint" else "variables"]
    saved = ks_json("inspect", tmp_path / "tfk_savedmodel", no_tf=True)
    assert saved["signatures"][0]["name"] == "serving_default" and saved["producer"]["writer"] == "tf-keras"


def test_inspect_api_imports_neither_keras_nor_tensorflow(store: Path, files: Path):
    proc = run_python(
        f"""
        import json, sys, kerasafe
        for path in {[str(store / "mlp" / "savedmodel" / "v1"), str(files / "keras.keras"), str(files / "keras.h5"), str(files / "ckpt" / "weights")]!r}:
            json.dumps(kerasafe.inspect(path))
        assert not [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")], "imported"
        print("ok")
        """
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_inspect_and_verify_work_where_tensorflow_cannot_be_imported(store: Path, files: Path, names: list[str], tmp_path: Path):
    for path in (store / "mlp" / "savedmodel" / "v1", store / "mlp" / "weights" / "v1", files / "keras.keras", files / "keras.h5", files / "ckpt" / "weights", files / "ks_savedmodel"):
        proc = ks("inspect", path, no_tf=True)
        assert proc.returncode == 0, proc.stderr
        assert names[1] in proc.stdout
        assert ks_json("inspect", path, no_tf=True)["parameters"]["total"] == 259
    report = ks_json("verify", store / "mlp" / "keras" / "v1", no_tf=True)
    assert report["ok"] and report["checksums_ok"] and any("Keras is not installed" in n for n in report["notes"])
    assert report["comparison"]["passed"]  # the stored result from save time
    assert ks("verify", files / "keras.keras", no_tf=True).returncode == 0
    damaged = _copy_version(store / "mlp" / "h5" / "v1", tmp_path / "damaged")
    _flip_byte(damaged / "model.h5")
    proc = ks("verify", damaged, no_tf=True)
    assert proc.returncode == 1 and "model.h5" in proc.stdout


# -- ls ----------------------------------------------------------------------------------------------


def test_ls(store: Path, tmp_path: Path):
    listing = ks_json("ls", store, no_tf=True)
    assert [(r["name"], r["format"], r["version"]) for r in listing] == [
        ("cnn", "keras", "v1"),
        ("mlp", "h5", "v1"),
        ("mlp", "keras", "v1"),
        ("mlp", "keras", "v2"),
        ("mlp", "savedmodel", "v1"),
        ("mlp", "weights", "v1"),
    ]
    by_key = {(r["name"], r["format"], r["version"]): r for r in listing}
    assert by_key[("mlp", "h5", "v1")]["released"] is True and by_key[("mlp", "keras", "v1")]["released"] is False
    assert all(r["validation"]["passed"] for r in listing)
    assert by_key[("mlp", "keras", "v2")]["size"] == sum(p.stat().st_size for p in (store / "mlp" / "keras" / "v2").rglob("*") if p.is_file() and p.name != "metadata.json")
    assert all(r["created_at"].endswith("Z") for r in listing)
    text = ks("ls", store, no_tf=True)
    assert text.returncode == 0
    header = text.stdout.splitlines()[0].split()
    assert header[:3] == ["name", "format", "version"] and "released" in header and "validation" in header
    assert len(text.stdout.strip().splitlines()) == 1 + len(listing)
    assert [r["version"] for r in ks_json("ls", store / "mlp", no_tf=True)] == ["v1", "v1", "v2", "v1", "v1"]  # ROOT/NAME lists one model
    empty = ks("ls", tmp_path, no_tf=True)
    assert empty.returncode == 0 and "no artifacts" in empty.stdout
    assert "missing" in assert_one_line_error(ks("ls", tmp_path / "missing", no_tf=True), "ls")


# -- verify -------------------------------------------------------------------------------------------


def _copy_version(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _flip_byte(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt", ["savedmodel", "h5", "keras", "weights"])
def test_verify_artifact_reruns_reference_outputs(store: Path, fmt: str):
    report = ks_json("verify", store / "mlp" / fmt / "v1")
    assert report["ok"] and report["checksums_ok"] and report["problems"] == []
    assert report["comparison"]["passed"] and report["comparison"]["max_abs_diff"] < 1e-6
    assert not any("not installed" in n for n in report["notes"])
    text = ks("verify", store / "mlp" / fmt / "v1", "--no-outputs")
    assert text.returncode == 0 and text.stdout.startswith("ok: ")


def test_verify_failures_exit_1(store: Path, tmp_path: Path):
    version = _copy_version(store / "mlp" / "keras" / "v1", tmp_path / "v1")
    _flip_byte(version / "model.keras")
    report = ks_json("verify", version, expect=1)
    assert not report["ok"] and not report["checksums_ok"]
    assert any("model.keras" in p and "sha256" in p for p in report["problems"])
    text = ks("verify", version)
    assert text.returncode == 1 and text.stdout.startswith("FAILED") and "problem:" in text.stdout
    (version / "metadata.json").unlink()
    assert ks("verify", version).returncode == 2  # no longer an artifact (nor a model)


def test_verify_plain_files(files: Path, tmp_path: Path):
    for name in ("keras.keras", "ks.h5", "ks_savedmodel", "ckpt/weights", "keras.weights.h5"):
        report = ks_json("verify", files / name, no_tf=True)
        assert report["ok"] and report["problems"] == [], (name, report)
    assert ks_json("verify", files / "ckpt" / "weights", no_tf=True)["checksums_ok"] is True
    # a flipped byte in a checkpoint tensor: its CRC32C no longer matches
    import shutil

    shutil.copytree(files / "ckpt", tmp_path / "ckpt")
    _flip_byte(tmp_path / "ckpt" / "weights.data-00000-of-00001")
    report = ks_json("verify", tmp_path / "ckpt" / "weights", no_tf=True, expect=1)
    assert not report["ok"] and report["checksums_ok"] is False and report["problems"]
    # a flipped byte inside a .keras archive member: its CRC-32 no longer matches
    shutil.copy(files / "ks.keras", tmp_path / "bad.keras")
    _flip_byte(tmp_path / "bad.keras", 0.4)
    assert ks("verify", tmp_path / "bad.keras", no_tf=True).returncode == 1
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((files / "ks.h5").read_bytes()[:2000])
    proc = ks("verify", truncated, no_tf=True)
    assert proc.returncode == 1 and "FAILED" in proc.stdout
    (tmp_path / "garbage.keras").write_bytes(b"definitely not a zip archive")
    assert ks("verify", tmp_path / "garbage.keras", no_tf=True).returncode == 1  # a model by name that does not read
    (tmp_path / "ckpt" / "weights.data-00000-of-00001").unlink()
    missing_shard = ks_json("verify", tmp_path / "ckpt" / "weights", no_tf=True, expect=1)
    assert "weights.data-00000-of-00001" in missing_shard["problems"][0]
    assert_one_line_error(ks("verify", tmp_path / "nothing-here", no_tf=True), "verify")
    (tmp_path / "notes.txt").write_text("hello")
    assert_one_line_error(ks("verify", tmp_path / "notes.txt", no_tf=True), "verify")


# -- diff ---------------------------------------------------------------------------------------------


def test_diff_two_versions(store: Path, names: list[str]):
    result = ks_json("diff", store / "mlp" / "keras" / "v1", store / "mlp" / "keras" / "v2", no_tf=True)
    w = result["weights"]
    assert w["matched_by"] == "layer" and w["added"] == [] and w["removed"] == [] and w["reshaped"] == []
    assert w["changed"] == 1 and w["max_abs_change"] == pytest.approx(0.25, abs=1e-6)
    changed = [v for v in w["variables"] if v["max_abs_change"]]
    assert changed[0]["shape"] == [3] and changed[0]["name"] == f"{names[-1]}[1]" and changed[0]["b_name"] == "layers/dense_1/vars/1"
    assert result["config"] == [] and not result["identical"]
    assert {d["path"] for d in result["metadata"]} >= {"version", "created_at", "notes"}
    assert ks("diff", store / "mlp" / "keras" / "v1", store / "mlp" / "keras" / "v2", "--exit-code", no_tf=True).returncode == 1
    text = ks("diff", store / "mlp" / "keras" / "v1", store / "mlp" / "keras" / "v2", no_tf=True)
    assert text.returncode == 0 and "2.500e-01" in text.stdout and "the models differ" in text.stdout
    same = ks_json("diff", store / "mlp" / "keras" / "v1", store / "mlp" / "keras" / "v1", no_tf=True)
    assert same["identical"] and same["weights"]["unchanged"] == 8 and same["metadata"] == []


def test_diff_across_formats_matches_by_layer(store: Path, files: Path):
    result = kerasafe_diff(files / "keras.keras", files / "keras.h5")
    assert result["weights"]["matched_by"] == "layer" and result["weights"]["compared"] == 8
    assert result["identical"] and result["weights"]["max_abs_change"] == 0.0
    assert ks("diff", store / "mlp" / "h5" / "v1", store / "mlp" / "keras" / "v1", "--exit-code", no_tf=True).returncode == 0
    ckpts = ks_json("diff", store / "mlp" / "weights" / "v1", files / "ckpt" / "weights", no_tf=True)
    assert ckpts["identical"] and ckpts["weights"]["compared"] == 8 and ckpts["notes"] == ["config not compared: b holds weights only"]


def kerasafe_diff(a: Path, b: Path) -> dict:
    from kerasafe._diff import diff

    result = diff(a, b)
    json.dumps(result)
    return result


def test_diff_architecture_changes(tmp_path: Path):
    small = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="hidden"), keras.layers.Dense(1, name="out")])
    wide = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, name="hidden"), keras.layers.Dense(1, name="out")])
    deeper = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="hidden"), keras.layers.Dense(4, name="extra"), keras.layers.Dense(1, name="out")])
    for name, model in (("small", small), ("wide", wide), ("deeper", deeper)):
        model.save(tmp_path / f"{name}.keras")
    result = ks_json("diff", tmp_path / "small.keras", tmp_path / "wide.keras", no_tf=True)
    reshaped = {r["name"]: (r["a_shape"], r["b_shape"]) for r in result["weights"]["reshaped"]}
    assert reshaped == {"hidden[0]": ([8, 16], [8, 32]), "hidden[1]": ([16], [32]), "out[0]": ([16, 1], [32, 1])}
    assert {"path": "config.layers[hidden].config.units", "a": 16, "b": 32, "change": "changed"} in result["config"]
    result = ks_json("diff", tmp_path / "small.keras", tmp_path / "deeper.keras", no_tf=True)
    assert result["weights"]["added"] == ["extra[0]", "extra[1]"]  # matched by layer name, not by Keras 3's group names
    assert [r["name"] for r in result["weights"]["reshaped"]] == ["out[0]"]
    assert any(d["path"] == "config.layers[extra]" and d["change"] == "added" for d in result["config"])
    text = ks("diff", tmp_path / "small.keras", tmp_path / "deeper.keras", "--exit-code", no_tf=True)
    assert text.returncode == 1 and "added" in text.stdout and "config.layers[extra]" in text.stdout


# -- scan ---------------------------------------------------------------------------------------------


def test_scan(tmp_path: Path, files: Path, store: Path):
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2.0), keras.layers.Dense(2)])
    lam.save(tmp_path / "lambda.keras")
    report = ks_json("scan", tmp_path / "lambda.keras", no_tf=True, expect=1)
    assert not report["ok"] and report["findings"][0]["code"] == "lambda_bytecode"
    proc = ks("scan", tmp_path / "lambda.keras", no_tf=True)
    assert proc.returncode == 1 and "UNSAFE" in proc.stdout
    clean = ks_json("scan", files / "keras.keras", no_tf=True)
    assert clean["ok"] and clean["findings"] == []
    assert ks("scan", store / "mlp" / "savedmodel" / "v1", no_tf=True).returncode == 0  # an artifact version
    assert ks("scan", store / "mlp" / "weights" / "v1", no_tf=True).returncode == 0
    weights_only = ks("scan", files / "ckpt" / "weights", no_tf=True)
    assert weights_only.returncode == 0 and "weights only" in weights_only.stdout
    assert_one_line_error(ks("scan", tmp_path / "missing.keras", no_tf=True), "scan")


def test_scan_not_available(monkeypatch, capsys, files: Path):
    import kerasafe.registry

    monkeypatch.delattr(kerasafe.registry, "scan")
    assert cli.main(["scan", str(files / "keras.keras")]) == 2
    err = capsys.readouterr().err
    assert "not available" in err and len(err.strip().splitlines()) == 1


# -- convert ------------------------------------------------------------------------------------------


def _outputs(model) -> np.ndarray:
    return np.asarray(model(models.sample_input("mlp")[0], training=False))


def test_convert_full_models(files: Path, tmp_path: Path, mlp):
    expected = _outputs(mlp)
    for src, dst in (("keras.h5", "a.keras"), ("keras.keras", "b.h5"), ("ks_savedmodel", "c.keras"), ("keras.keras", "d.weights.h5"), ("ks.h5", "e/ckpt")):
        proc = ks("convert", files / src, tmp_path / dst)
        assert proc.returncode == 0, proc.stderr
        assert "passed" in proc.stdout and "max_abs_diff=0.000e+00" in proc.stdout
    for dst in ("a.keras", "b.h5", "c.keras"):
        assert kerasafe.inspect(tmp_path / dst)["contains"] == "model"
        np.testing.assert_allclose(_outputs(kerasafe.load_model(tmp_path / dst)), expected, atol=1e-6)
    for dst, fmt in (("d.weights.h5", "weights.h5"), ("e/ckpt", "checkpoint")):
        rebuilt = models.build("mlp", keras)
        kerasafe.load_weights(rebuilt, tmp_path / dst)
        np.testing.assert_allclose(_outputs(rebuilt), expected, atol=1e-6)
        assert kerasafe.inspect(tmp_path / dst)["format"] == fmt
    assert kerasafe.load_model(tmp_path / "a.keras").optimizer.__class__.__name__ == "Adam"
    # an existing target is refused, then replaced with --overwrite
    assert "--overwrite" in assert_one_line_error(ks("convert", files / "keras.h5", tmp_path / "a.keras"), "convert")
    assert ks("convert", files / "keras.h5", tmp_path / "a.keras", "--overwrite").returncode == 0


def test_convert_weights_needs_an_architecture(files: Path, store: Path, tmp_path: Path, mlp):
    line = assert_one_line_error(ks("convert", files / "ckpt" / "weights", tmp_path / "m.keras", no_tf=True), "convert")
    assert "weights only" in line and "--architecture" in line
    proc = ks("convert", files / "ckpt" / "weights", tmp_path / "m.keras", "--architecture", files / "keras.keras")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(_outputs(kerasafe.load_model(tmp_path / "m.keras")), _outputs(mlp), atol=1e-6)
    proc = ks("convert", files / "keras.weights.h5", tmp_path / "w" / "ckpt", "--architecture", store / "mlp" / "weights" / "v1" / "model_config.json")
    assert proc.returncode == 0, proc.stderr
    # an inference-only SavedModel holds no Keras model to convert
    assert "inference-only" in assert_one_line_error(ks("convert", files / "exported", tmp_path / "x.keras"), "convert")
    assert ".keras" in assert_one_line_error(ks("convert", files / "keras.keras", tmp_path / "y.keras", "--to", "h5", no_tf=True), "convert")


def test_convert_artifact(store: Path, tmp_path: Path, mlp):
    proc = ks("convert", store / "mlp" / "keras" / "v1", tmp_path / "from_artifact.h5")
    assert proc.returncode == 0 and "(artifact)" in proc.stdout, proc.stderr
    np.testing.assert_allclose(_outputs(kerasafe.load_model(tmp_path / "from_artifact.h5")), _outputs(mlp), atol=1e-6)


def test_convert_tf_keras_model(tmp_path: Path, tfkeras):
    tfkeras(
        f"""
        import numpy as np, tf_keras as keras
        exec(open({str(Path(models.__file__))!r}).read())
        model = build("mlp", keras)
        randomize(model)
        model.save("tfk.h5")
        np.save("expected.npy", predict(model, "mlp")[0])
        """,
        tmp_path,
    )
    proc = ks("convert", tmp_path / "tfk.h5", tmp_path / "from_tf_keras.keras")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(_outputs(kerasafe.load_model(tmp_path / "from_tf_keras.keras")), np.load(tmp_path / "expected.npy"), atol=1e-5)


# -- logging -----------------------------------------------------------------------------------------


def test_verbose_logs_through_the_kerasafe_logger(store: Path):
    proc = ks("-v", "inspect", store / "mlp" / "keras", no_tf=True)
    assert proc.returncode == 0
    assert "kerasafe: INFO:" in proc.stderr and "latest" in proc.stderr
