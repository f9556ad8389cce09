"""Versioned, validated artifacts: the tutorial end to end, checksums, atomicity, concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import errors

from . import models

keras = pytest.importorskip("keras")
FULL = ("savedmodel", "h5", "keras")


X_TEST = np.linspace(-1.0, 1.0, 32, dtype="float32").reshape(1, 32)


@pytest.mark.parametrize("fmt", ["savedmodel", "h5", "keras", "weights"])
def test_tutorial_end_to_end(tmp_path: Path, tutorial_model, fmt: str):
    meta = {"training": {"batch_size": 64, "epochs": 10, "seed": 123}, "data": {"dataset_id": "internal-dataset-2026-01-15"}, "notes": "first export"}
    a1 = kerasafe.save_artifact(tutorial_model, tmp_path / "artifacts", name="my_model", format=fmt, metadata=meta)
    a2 = kerasafe.save_artifact(tutorial_model, tmp_path / "artifacts", name="my_model", format=fmt, metadata={"batch_size": 32, "epochs": 3, "seed": 7})
    assert (a1.version, a2.version) == ("v1", "v2")
    # Run settings given at the top level are kept there and recorded with the training too.
    assert a2.metadata["training"]["batch_size"] == 32 and a2.metadata["training"]["seed"] == 7 and a2.metadata["epochs"] == 3
    assert a1.path == tmp_path / "artifacts" / "my_model" / fmt / "v1"
    assert a1.comparison is not None and a1.comparison.passed and a1.comparison.max_abs_diff < 1e-6

    md = json.loads((a1.path / "metadata.json").read_text())
    for key in ("model_name", "format", "version", "created_at", "tensorflow_version", "keras_version", "backend", "kerasafe_version", "input_signature", "output_signature", "training", "data", "notes", "parameters", "validation", "custom_objects", "manifest"):
        assert key in md, key
    assert md["model_name"] == "my_model" and md["format"] == fmt and md["version"] == "v1"
    assert md["created_at"].endswith("Z")
    assert md["input_signature"] == [{"name": "features", "shape": [None, 32], "dtype": "float32"}]
    assert md["training"]["optimizer"] == "Adam" and md["training"]["loss"] == "WeightedMSE" and md["training"]["seed"] == 123
    assert md["training"]["metrics"] == ["mae"]
    assert md["data"]["dataset_id"] == "internal-dataset-2026-01-15" and md["notes"] == "first export"
    assert md["custom_objects"] == ["Course>ScaledDense", "Course>WeightedMSE"]
    assert md["validation"]["passed"] is True and md["validation"]["device"]["device_kind"] in ("cpu", "gpu")
    assert md["parameters"]["total"] == tutorial_model.count_params()
    assert list(md) == sorted(md)  # sorted keys
    for rel, entry in md["manifest"]["files"].items():
        assert (a1.path / rel).stat().st_size == entry["size"]

    loaded = kerasafe.load_artifact(tmp_path / "artifacts", name="my_model", format=fmt)  # latest = v2
    diff = np.max(np.abs(np.asarray(tutorial_model(X_TEST, training=False)) - np.asarray(loaded(X_TEST, training=False))))
    assert diff < 1e-6
    assert [v.version for v in kerasafe.list_versions(tmp_path / "artifacts", "my_model", fmt)] == ["v1", "v2"]
    report = kerasafe.verify_artifact(a1.path)
    assert report.ok and report.checksums_ok and report.comparison is not None and report.comparison.passed


def test_semantic_versions_and_existing_version(tmp_path: Path, tutorial_model):
    a = kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format="keras", version="1.2.0")
    assert a.version == "1.2.0"
    with pytest.raises(errors.ArtifactExistsError):
        kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format="keras", version="1.2.0")
    with pytest.raises(FileExistsError):
        kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format="keras", version="1.2.0")


@pytest.mark.parametrize("fmt", FULL)
def test_flipped_byte_in_any_file_is_detected(tmp_path: Path, tutorial_model, fmt: str):
    a = kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format=fmt)
    files = [p for p in a.path.rglob("*") if p.is_file() and p.name != "metadata.json"]
    assert files
    for victim in files:
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
        with pytest.raises(errors.ChecksumError, match=str(victim.name)):
            kerasafe.load_artifact(a.path)
        report = kerasafe.verify_artifact(a.path)
        assert not report.ok and not report.checksums_ok and any(victim.name in p for p in report.problems)
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
    assert kerasafe.verify_artifact(a.path).ok


def test_failed_validation_publishes_nothing(tmp_path: Path, tutorial_model, monkeypatch):
    from kerasafe import _formats

    real = _formats.load_from

    def corrupting_load(*args, **kwargs):
        model = real(*args, **kwargs)
        model.layers[-1].bias.assign(model.layers[-1].bias + 1.0)  # the "reloaded" copy differs
        return model

    monkeypatch.setattr(_formats, "load_from", corrupting_load)
    with pytest.raises(errors.ValidationError, match="differ"):
        kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format="keras")
    assert kerasafe.list_versions(tmp_path, "m") == []
    assert not any(p.name.startswith("v") for p in (tmp_path / "m" / "keras").iterdir())


def test_load_checks_reference_outputs(tmp_path: Path, tutorial_model):
    a = kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format="keras")
    model = kerasafe.load_artifact(a.path)  # verify + reference rerun pass
    assert model is not None
    # Swap in another model under the same manifest: checksums pass, outputs do not.
    other = keras.models.clone_model(tutorial_model)
    kerasafe.save_model(other, a.path / "model.keras")
    with pytest.raises(errors.ChecksumError):
        kerasafe.load_artifact(a.path)
    with pytest.raises(errors.ValidationError):
        kerasafe.load_artifact(a.path, verify=False)
    kerasafe.load_artifact(a.path, verify=False, check_outputs=False)


def test_prune_keeps_released(tmp_path: Path, tutorial_model):
    kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format="h5", metadata={"released": True})
    for _ in range(3):
        kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format="h5")
    removed = kerasafe.prune(tmp_path, "m", "h5", keep_last=1)
    assert sorted(p.name for p in removed) == ["v2", "v3"]
    assert [v.version for v in kerasafe.list_versions(tmp_path, "m", "h5")] == ["v1", "v4"]
    assert kerasafe.list_versions(tmp_path, "m", "h5")[0].released


def test_prune_refuses_keeping_fewer_than_one(tmp_path: Path, tutorial_model):
    kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format="h5")
    for bad in (-1, 0, 1.5, True):
        with pytest.raises(errors.InvalidArgumentError, match="at least the newest"):
            kerasafe.prune(tmp_path, "m", "h5", keep_last=bad)
    assert [v.version for v in kerasafe.list_versions(tmp_path, "m", "h5")] == ["v1"]


@pytest.mark.parametrize(
    "metadata",
    ['{"format": "h5"}', '{"format": "h5", "manifest": 5}', '{"format": "h5", "manifest": {"files": {"../../secret": {"size": 1, "sha256": "00"}}}}', "[1, 2]", '{"format": '],
    ids=["no-manifest", "manifest-not-an-object", "manifest-escapes", "not-an-object", "not-json"],
)
def test_damaged_metadata_is_reported_by_verify_and_refused_by_load(tmp_path: Path, tutorial_model, metadata: str):
    a = kerasafe.save_artifact(tutorial_model, tmp_path, name="m", format="h5")
    (a.path / "metadata.json").write_text(metadata)
    report = kerasafe.verify_artifact(a.path)  # a report, never an exception
    assert not report.ok and report.problems
    assert any("metadata.json" in p for p in report.problems), report.problems
    with pytest.raises(errors.FormatError, match="metadata.json"):
        kerasafe.load_artifact(a.path)


def test_missing_artifact(tmp_path: Path):
    with pytest.raises(errors.ArtifactNotFoundError):
        kerasafe.load_artifact(tmp_path, name="nope", format="keras")
    with pytest.raises(FileNotFoundError):
        kerasafe.load_artifact(tmp_path / "not-a-version")


def test_weights_artifact_rebuilds_or_loads_into_given_model(tmp_path: Path):
    model = models.build("two_in_two_out", keras)
    models.randomize(model)
    a = kerasafe.save_artifact(model, tmp_path, name="w", format="weights")
    assert {"ckpt.index", "ckpt.data-00000-of-00001", "model_config.json", "metadata.json"} <= {p.name for p in a.path.iterdir()}
    rebuilt = kerasafe.load_artifact(a.path)
    into = models.build("two_in_two_out", keras)
    kerasafe.load_artifact(a.path, model=into)
    for m in (rebuilt, into):
        for x, y in zip(models.predict(model, "two_in_two_out"), models.predict(m, "two_in_two_out")):
            np.testing.assert_array_equal(x, y)
    # the default reference input keeps integer inputs inside the embedding's vocabulary
    ref = a.metadata["validation"]["reference"]["inputs"]
    assert ref[0]["dtype"] == "int32"


def test_weights_are_checked_in_an_uncompiled_copy(tmp_path: Path, tutorial_model):
    """The copy a weights artifact is reloaded into has the model's structure (custom layers
    included) but no optimizer: Keras 3's clone_model would compile it and build Adam's slots."""
    from kerasafe import keras_bridge

    assert tutorial_model.optimizer is not None
    clone = keras_bridge.clone_structure(tutorial_model)
    assert getattr(clone, "optimizer", None) is None
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in tutorial_model.layers]
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in tutorial_model.weights]
    a = kerasafe.save_artifact(tutorial_model, tmp_path, name="w", format="weights")
    assert a.comparison is not None and a.comparison.passed and a.comparison.max_abs_diff == 0


def test_a_config_that_does_not_rebuild_falls_back_to_clone_model(monkeypatch: pytest.MonkeyPatch):
    from kerasafe import keras_bridge

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    def refuse(cls, config, custom_objects=None):
        raise ValueError("this config does not rebuild")

    monkeypatch.setattr(keras.Sequential, "from_config", classmethod(refuse))
    cloned: list[object] = []
    real_clone_model = keras.models.clone_model
    monkeypatch.setattr(keras.models, "clone_model", lambda m, **kw: cloned.append(m) or real_clone_model(m, **kw))
    clone = keras_bridge.clone_structure(model)
    assert cloned == [model]
    assert clone is not model and clone.built
    assert [tuple(v.shape) for v in clone.weights] == [(4, 3), (3,)]


def test_comparison_repr_and_compare_outputs():
    c = kerasafe.compare_outputs(np.array([1.0, 2.0, np.nan], np.float32), np.array([1.0, 2.5, np.nan], np.float32))
    assert not c.passed and c.max_abs_diff == pytest.approx(0.5)
    assert c.worst["worst_multi_index"] == [1]
    assert "FAILED" in repr(c) and "<table>" in c._repr_html_()
    ok = kerasafe.compare_outputs([np.ones((2, 2))], [np.ones((2, 2)) + 1e-14])
    assert ok.passed and ok.max_abs_diff < 1e-13
    assert kerasafe.compare_outputs(np.zeros(3, np.float32), np.full(3, 1e-3, np.float32), atol=1e-2).passed
    with pytest.raises(errors.InvalidArgumentError):
        kerasafe.compare_outputs(np.zeros(3), np.zeros(4))


SAVER = """
import sys, keras, kerasafe
sys.path.insert(0, {tests!r})
import models
model = models.build("cnn", keras)
a = kerasafe.save_artifact(model, {root!r}, name="m", format="keras")
print(a.version)
"""


def test_concurrent_savers_get_distinct_versions(tmp_path: Path):
    script = SAVER.format(tests=str(Path(__file__).parent), root=str(tmp_path))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    versions = sorted(o[0].strip().splitlines()[-1] for o in outs)
    assert versions == ["v1", "v2", "v3"]
    for v in versions:
        assert kerasafe.verify_artifact(tmp_path / "m" / "keras" / v, check_outputs=False).ok


KILLED = """
import sys, time, numpy as np, keras, kerasafe
from kerasafe import _formats
sys.path.insert(0, {tests!r})
import models
real = _formats.save_into
def slow(*a, **k):
    out = real(*a, **k)
    print("written", flush=True)
    time.sleep(60)  # killed here: files written, version not yet published
    return out
_formats.save_into = slow
kerasafe.save_artifact(models.build("cnn", keras), {root!r}, name="m", format="h5")
"""


def test_killed_save_leaves_no_visible_version(tmp_path: Path):
    script = KILLED.format(tests=str(Path(__file__).parent), root=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    deadline = time.time() + 300
    line = ""
    while time.time() < deadline and "written" not in line:
        line = proc.stdout.readline() if proc.stdout else ""
        if proc.poll() is not None:
            break
    assert "written" in line, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert kerasafe.list_versions(tmp_path, "m") == []
    with pytest.raises(errors.ArtifactNotFoundError):
        kerasafe.load_artifact(tmp_path, name="m", format="h5")
    a = kerasafe.save_artifact(models.build("cnn", keras), tmp_path, name="m", format="h5")
    assert a.version == "v1" and kerasafe.verify_artifact(a.path).ok



def test_reference_inputs_stay_inside_a_wrapped_embeddings_vocabulary(tmp_path: Path):
    # The Embedding sits inside TimeDistributed (not in any `.layers`): its input_dim of 5 still
    # bounds the integer reference input, so the validator's run does not index past the table.
    keras = pytest.importorskip("keras")
    from kerasafe import artifacts

    inputs = keras.Input((3, 4), dtype="int32")
    model = keras.Model(inputs, keras.layers.TimeDistributed(keras.layers.Embedding(5, 2))(inputs))
    (reference,) = artifacts.default_reference_input(model)
    assert reference.shape == (1, 3, 4) and reference.max() == 4
    artifact = kerasafe.save_artifact(model, tmp_path / "artifacts", name="wrapped", format="keras")
    assert artifact.comparison is not None and artifact.comparison.passed
    assert kerasafe.verify_artifact(artifact.path).ok
