"""The README's main job, run as the README says."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def test_kerasafe_demo_runs_and_checks_everything(tmp_path: Path):
    exe = shutil.which("kerasafe")
    assert exe, "the kerasafe console script is installed by `pip install .`"
    proc = subprocess.run([exe, "demo", str(tmp_path / "out")], capture_output=True, text=True, timeout=900, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    out = proc.stdout
    for fmt in ("savedmodel", "h5", "keras", "weights"):
        assert fmt in out
        assert (tmp_path / "out" / "my_model" / fmt / "v1" / "metadata.json").is_file()
    assert "fresh process: keras artifact reloaded with loss WeightedMSE" in out
    assert "training resumes exactly" in out
    assert "serving signature: tf.saved_model.load(...).signatures['serving_default'] max_abs_diff 0.00e+00" in out
    # a second run adds v2 and never overwrites v1
    proc = subprocess.run([exe, "demo", str(tmp_path / "out")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0
    assert (tmp_path / "out" / "my_model" / "keras" / "v2").is_dir()


def test_cli_errors_are_one_line(tmp_path: Path):
    exe = shutil.which("kerasafe")
    assert exe
    proc = subprocess.run([exe, "demo", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "example:" in proc.stdout


def test_kerasafe_demo_under_tf_keras(tmp_path: Path, tfkeras):
    """The same main job with tf-keras models: four artifacts, each reloaded and resumed."""
    from .conftest import REPO

    python = str(REPO / "python")
    out = tfkeras(
        f"""
        import os, sys
        sys.path.insert(0, {python!r})
        os.environ["PYTHONPATH"] = {python!r}  # the demo's fresh-process check imports this kerasafe
        from kerasafe import cli
        code = cli.main(["demo", {str(tmp_path / "out")!r}])
        print("exit", code)
        """,
        tmp_path,
    )
    assert "with Keras 2." in out and out.strip().endswith("exit 0"), out
    assert "fresh process: keras artifact reloaded with loss WeightedMSE" in out
    assert "training resumes exactly from every full model" in out
