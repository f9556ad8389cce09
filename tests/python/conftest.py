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


@pytest.fixture(scope="module")
def tutorial_model():
    """The tutorial's model (custom ScaledDense layer, WeightedMSE loss), compiled and trained a
    little, so optimizer state exists."""
    keras = pytest.importorskip("keras")
    import numpy as np

    from kerasafe import demo

    keras.utils.set_random_seed(1)
    model = demo.build_model()
    model.compile(optimizer="adam", loss=demo.WeightedMSE(weight=2.0), metrics=["mae"])
    x = np.random.default_rng(0).standard_normal((64, 32)).astype("float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    return model


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter of this environment."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API on 127.0.0.1: ``KERASAFE_TEST_S3_ENDPOINT``, else a ``moto_server`` started
    here (pip ``moto[server]``). Skipped without either, unless ``KERASAFE_REQUIRE_S3`` is set."""
    import shutil
    import time
    import urllib.request

    endpoint = os.environ.get("KERASAFE_TEST_S3_ENDPOINT")
    if endpoint:
        yield endpoint
        return
    exe = shutil.which("moto_server")
    if exe is None:
        if os.environ.get("KERASAFE_REQUIRE_S3"):
            pytest.fail("KERASAFE_REQUIRE_S3 is set but moto_server is not installed")
        pytest.skip("no S3 server: pip install 'moto[server]' or set KERASAFE_TEST_S3_ENDPOINT")
    port = _free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto_server did not start on {endpoint}")
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_client(s3_endpoint):
    boto3 = pytest.importorskip("boto3")
    return boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


@pytest.fixture
def s3_root(s3_endpoint, s3_client, monkeypatch, request):
    """``(s3://<fresh bucket>/artifacts, bucket)`` with credentials and endpoint in the environment."""
    import re
    import uuid

    bucket = "t-" + re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + uuid.uuid4().hex[:8]
    s3_client.create_bucket(Bucket=bucket)
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(var, value)
    return f"s3://{bucket}/artifacts", bucket
