"""Shared fixtures: quiet TensorFlow, the tf-keras interpreter, small Keras models."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parents[2]


def tf_keras_python() -> str | None:
    """The interpreter of the second environment that has `tensorflow` + `tf-keras` (Keras 2)."""
    candidate = os.environ.get("KERASAFE_TFKERAS_PYTHON") or str(REPO / ".venv-tfkeras" / "bin" / "python")
    return candidate if Path(candidate).exists() else None


@pytest.fixture(scope="session")
def tfkeras():
    """Run a script under tf-keras; skipped where that environment is absent, unless CI demands it."""
    python = tf_keras_python()
    if python is None:
        if os.environ.get("KERASAFE_REQUIRE_TFKERAS"):
            pytest.fail("KERASAFE_REQUIRE_TFKERAS is set but no tf-keras environment was found")
        pytest.skip("no tf-keras environment (.venv-tfkeras); .ci/run creates one")

    def run(script: str, cwd: Path) -> str:
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(
            [python, "-c", textwrap.dedent(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0:
            raise AssertionError(f"tf-keras script failed:\n{proc.stdout}\n{proc.stderr[-4000:]}")
        return proc.stdout

    return run


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter of this environment."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
