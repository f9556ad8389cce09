"""The pytest plugin: a passing artifact passes, a changed one fails with a readable report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kerasafe
from kerasafe import _core
from kerasafe.pytest_plugin import assert_artifact_reproduces

from . import models

keras = pytest.importorskip("keras")

pytest_plugins = ["pytester"]


def test_fixture_is_registered_through_the_entry_point(pytester, tmp_path: Path):
    model = models.build("cnn", keras)
    art = kerasafe.save_artifact(model, tmp_path, name="m", format="keras")
    pytester.makepyfile(
        f"""
        def test_it(assert_artifact_reproduces):
            assert_artifact_reproduces({str(art.path)!r})
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_damaged_file_is_named(tmp_path: Path):
    art = kerasafe.save_artifact(models.build("cnn", keras), tmp_path, name="m", format="keras")
    assert assert_artifact_reproduces(art.path).ok
    data = bytearray((art.path / "model.keras").read_bytes())
    data[len(data) // 2] ^= 1
    (art.path / "model.keras").write_bytes(bytes(data))
    with pytest.raises(AssertionError, match=r"does not reproduce:\n  file: model.keras"):
        assert_artifact_reproduces(art.path)


def test_different_outputs_show_the_worst_element(tmp_path: Path):
    art = kerasafe.save_artifact(models.build("cnn", keras), tmp_path, name="m", format="keras")
    # A consistent artifact (manifest rewritten) whose model no longer matches its reference.
    other = models.build("cnn", keras)
    models.randomize(other, seed=99)
    kerasafe.save_model(other, art.path / "model.keras")
    metadata = json.loads((art.path / "metadata.json").read_text())
    manifest = json.loads(_core.store_hash_files(str(art.path)))
    manifest["files"].pop("metadata.json", None)
    metadata["manifest"] = manifest
    (art.path / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(AssertionError) as info:
        assert_artifact_reproduces(art.path)
    text = str(info.value)
    assert "max abs diff" in text and "beyond tolerance" in text
