"""Artifacts and model files in object storage, against a real S3 server (moto_server on
127.0.0.1, started by the ``s3_root`` fixture, or ``KERASAFE_TEST_S3_ENDPOINT``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import _core, errors

from .conftest import run_python

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.skipif(not getattr(_core, "HAS_OBJECT_STORAGE", False), reason="built without the s3 feature")

X = np.linspace(-1.0, 1.0, 32, dtype="float32").reshape(1, 32)


def _objects(s3_client, bucket: str, prefix: str = "") -> dict[str, int]:
    out: dict[str, int] = {}
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return out


@pytest.mark.parametrize("fmt", ["savedmodel", "h5", "keras", "weights"])
def test_artifact_lifecycle(s3_root, s3_client, tutorial_model, fmt: str):
    root, bucket = s3_root
    a1 = kerasafe.save_artifact(tutorial_model, root, name="my_model", format=fmt, metadata={"notes": "first"})
    a2 = kerasafe.save_artifact(tutorial_model, root, name="my_model", format=fmt)
    assert (a1.version, a2.version) == ("v1", "v2")
    assert a1.path == f"{root}/my_model/{fmt}/v1"
    assert a1.comparison is not None and a1.comparison.passed
    assert a1.metadata["version"] == "v1" and a1.metadata["notes"] == "first"

    keys = _objects(s3_client, bucket, f"artifacts/my_model/{fmt}/v1/")
    md = json.loads(s3_client.get_object(Bucket=bucket, Key=f"artifacts/my_model/{fmt}/v1/metadata.json")["Body"].read())
    stored = set(md["manifest"]["files"])
    assert stored and {k.split("/v1/", 1)[1] for k in keys} == stored | {"metadata.json", ".kerasafe-claim"}

    listed = kerasafe.list_versions(root, "my_model", fmt)
    assert [v.version for v in listed] == ["v1", "v2"] and listed[0].metadata["notes"] == "first"

    loaded = kerasafe.load_artifact(root, name="my_model", format=fmt)  # latest = v2, reference rerun
    np.testing.assert_allclose(loaded(X).numpy(), tutorial_model(X).numpy(), atol=1e-6)
    report = kerasafe.verify_artifact(a1.path)
    assert report.ok and report.checksums_ok and report.comparison is not None and report.comparison.passed, report

    assert kerasafe.prune(root, "my_model", fmt, keep_last=1) == [a1.path]
    assert [v.version for v in kerasafe.list_versions(root, "my_model", fmt)] == ["v2"]
    with pytest.raises(errors.ArtifactNotFoundError):
        kerasafe.load_artifact(a1.path)
    # Pruned numbers are never handed out again.
    assert kerasafe.save_artifact(tutorial_model, root, name="my_model", format=fmt).version == "v3"


def test_explicit_version_exists(s3_root, tutorial_model):
    root, _ = s3_root
    kerasafe.save_artifact(tutorial_model, root, name="m", format="keras", version="1.0.0")
    with pytest.raises(errors.ArtifactExistsError, match="1.0.0"):
        kerasafe.save_artifact(tutorial_model, root, name="m", format="keras", version="1.0.0")


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "saved_model_dir"])
def test_save_and_load_model_files(s3_root, s3_client, tutorial_model, name: str):
    root, bucket = s3_root
    url = f"{root}/files/{name}"
    kerasafe.save_model(tutorial_model, url)
    keys = _objects(s3_client, bucket, f"artifacts/files/{name}")
    if name == "saved_model_dir":
        assert f"artifacts/files/{name}/saved_model.pb" in keys and any("/variables/" in k for k in keys)
    else:
        assert list(keys) == [f"artifacts/files/{name}"]
    loaded = kerasafe.load_model(url)
    np.testing.assert_allclose(loaded(X).numpy(), tutorial_model(X).numpy(), atol=1e-6)
    with pytest.raises(errors.ArtifactExistsError):
        kerasafe.save_model(tutorial_model, url, overwrite=False)


@pytest.mark.parametrize("name", ["w.weights.h5", "ckpt/weights"])
def test_save_and_load_weights(s3_root, s3_client, tutorial_model, name: str):
    root, bucket = s3_root
    url = f"{root}/{name}"
    kerasafe.save_weights(tutorial_model, url)
    if not name.endswith(".h5"):
        keys = set(_objects(s3_client, bucket, "artifacts/ckpt/"))
        assert {"artifacts/ckpt/weights.index", "artifacts/ckpt/weights.data-00000-of-00001"} <= keys
    from kerasafe import demo

    fresh = demo.build_model()
    kerasafe.load_weights(fresh, url)
    np.testing.assert_allclose(fresh(X).numpy(), tutorial_model(X).numpy(), atol=1e-6)


def test_checkpoint_read_write(s3_root):
    root, _ = s3_root
    tensors = {"w": np.arange(12, dtype="float32").reshape(3, 4), "s": np.array([b"a", b"bc"], dtype=object)}
    kerasafe.checkpoint.write(f"{root}/raw/ckpt", tensors)
    back = kerasafe.checkpoint.read(f"{root}/raw/ckpt")
    np.testing.assert_array_equal(back["w"], tensors["w"])
    assert list(back["s"]) == [b"a", b"bc"]
    assert kerasafe.checkpoint.list_variables(f"{root}/raw/ckpt") == [("s", (2,), "string"), ("w", (3, 4), "float32")]
    with pytest.raises(errors.NotFoundError, match="raw/nope"):
        kerasafe.checkpoint.read(f"{root}/raw/nope")


def test_corrupted_object_is_detected(s3_root, s3_client, tutorial_model):
    root, bucket = s3_root
    art = kerasafe.save_artifact(tutorial_model, root, name="m", format="keras")
    key = "artifacts/m/keras/v1/model.keras"
    body = bytearray(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF  # same size, different bytes
    s3_client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    with pytest.raises(errors.ChecksumError, match="model.keras"):
        kerasafe.load_artifact(art.path)
    report = kerasafe.verify_artifact(art.path)
    assert not report.ok and not report.checksums_ok
    assert report.problems == ["model.keras: sha256 differs from the manifest"]
    s3_client.delete_object(Bucket=bucket, Key=key)
    report = kerasafe.verify_artifact(art.path)
    assert report.problems == ["missing file: model.keras"]


def test_missing_credentials_give_a_clear_error(s3_root, monkeypatch, tutorial_model):
    root, _ = s3_root
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(errors.StoragePermissionError, match="no S3 credentials") as info:
        kerasafe.list_versions(root, "m")
    assert isinstance(info.value, PermissionError) and root in str(info.value)
    # Explicit options work instead of the environment, and their values never show in errors.
    opts = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    assert kerasafe.list_versions(root, "m", storage_options=opts) == []
    with pytest.raises(errors.InvalidArgumentError, match="aws_secret_acces_key") as info:
        kerasafe.list_versions(root, "m", storage_options={"aws_secret_acces_key": "hunter2-secret"})
    assert "hunter2-secret" not in str(info.value)


def test_wrong_credentials_are_a_permission_error(s3_root, monkeypatch):
    root, _ = s3_root
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-a-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    # moto accepts any key unless its IAM checks are on; what matters is that no secret leaks
    # into whatever is raised or returned.
    try:
        kerasafe.list_versions(root, "m")
    except errors.KerasafeError as exc:
        assert "wrong-secret-value" not in str(exc)


PUBLISH = """
import json, os, sys, tempfile, threading
from kerasafe import _core
root, tag, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
def one(i):
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "payload.bin"), "wb") as f:
        f.write(os.urandom(200_000))
    p = json.loads(_core.remote_publish(root, "m", "weights", None, d, json.dumps({"writer": f"{tag}-{i}"})))
    out.append(p["version"])
ts = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(out))
"""


def test_concurrent_writers_get_distinct_complete_versions(s3_root):
    root, _ = s3_root
    procs = [
        subprocess.Popen([sys.executable, "-c", PUBLISH, root, f"p{i}", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    seen_bad: list[str] = []
    stop = threading.Event()

    def reader():  # readers during the writes: every listed version is complete
        while not stop.is_set():
            for info in kerasafe.list_versions(root, "m", "weights"):
                report = kerasafe.verify_artifact(info.path, check_outputs=False)
                if not report.checksums_ok:
                    seen_bad.append(f"{info.version}: {report.problems}")

    t = threading.Thread(target=reader)
    t.start()
    versions = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        versions += json.loads(out)
    stop.set()
    t.join()
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 10)]
    listed = kerasafe.list_versions(root, "m", "weights")
    assert len(listed) == 9 and len({v.metadata["writer"] for v in listed}) == 9
    assert all(kerasafe.verify_artifact(v.path, check_outputs=False).checksums_ok for v in listed)
    assert seen_bad == []


def test_interrupted_upload_leaves_no_visible_version(s3_root, s3_client, tmp_path: Path):
    root, bucket = s3_root
    big = tmp_path / "stage"
    big.mkdir()
    with open(big / "big.bin", "wb") as f:  # multipart: several 16 MiB parts
        f.write(os.urandom(96 << 20))
    code = textwrap.dedent(
        f"""
        from kerasafe import _core
        _core.remote_publish({root!r}, "m", "keras", None, {str(big)!r}, "{{}}")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    claim = "artifacts/m/keras/v1/.kerasafe-claim"
    deadline = time.monotonic() + 60
    while claim not in _objects(s3_client, bucket, "artifacts/m/") and time.monotonic() < deadline:
        assert proc.poll() is None, "the writer finished before it could be interrupted"
        time.sleep(0.02)
    assert claim in _objects(s3_client, bucket, "artifacts/m/")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "artifacts/m/keras/v1/metadata.json" not in _objects(s3_client, bucket)
    assert kerasafe.list_versions(root, "m") == []
    with pytest.raises(errors.ArtifactNotFoundError):
        kerasafe.load_artifact(root, name="m", format="keras")
    with pytest.raises(errors.ArtifactNotFoundError, match="never committed"):
        kerasafe.load_artifact(f"{root}/m/keras/v1")
    report = kerasafe.verify_artifact(f"{root}/m/keras/v1")
    assert not report.ok and "never committed" in report.problems[0]
    # The next writer takes the next number; the killed one's is never reused.
    small = tmp_path / "small"
    small.mkdir()
    (small / "f").write_bytes(b"x")
    published = json.loads(_core.remote_publish(root, "m", "keras", None, str(small), "{}"))
    assert published["version"] == "v2"


def test_cli_reads_object_storage(s3_root, tutorial_model):
    root, _ = s3_root
    art = kerasafe.save_artifact(tutorial_model, root, name="cli", format="h5")
    env = {k: v for k, v in os.environ.items()}
    ls = subprocess.run([sys.executable, "-m", "kerasafe.cli", "ls", root, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert ls.returncode == 0, ls.stderr
    assert any(row["version"] == "v1" and row["format"] == "h5" for row in json.loads(ls.stdout))
    ver = subprocess.run([sys.executable, "-m", "kerasafe.cli", "verify", art.path, "--json", "--import", "kerasafe.demo"], capture_output=True, text=True, env=env, timeout=300)
    assert ver.returncode == 0, ver.stderr + ver.stdout
    assert json.loads(ver.stdout)["ok"] is True


def test_without_keras_installed_urls_still_verify(s3_root, tutorial_model):
    root, _ = s3_root
    art = kerasafe.save_artifact(tutorial_model, root, name="nokeras", format="keras")
    proc = run_python(
        f"""
        import sys
        for mod in ("tensorflow", "keras"):
            sys.modules[mod] = None
        import kerasafe
        r = kerasafe.verify_artifact({art.path!r})
        assert r.checksums_ok and r.ok, r
        print("ok")
        """
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_inspect_reads_urls(s3_root, tutorial_model):
    root, _ = s3_root
    art = kerasafe.save_artifact(tutorial_model, root, name="insp", format="keras")
    info = kerasafe.inspect(art.path)
    assert info["path"] == art.path and info["artifact"]["version"] == "v1"
    assert info["parameters"]["total"] == sum(int(np.prod(w.shape)) for w in tutorial_model.weights)
    kerasafe.save_model(tutorial_model, f"{root}/plain/model.h5")
    info = kerasafe.inspect(f"{root}/plain/model.h5")
    assert info["format"] == "h5" and info["path"] == f"{root}/plain/model.h5"


def test_checkpoints_stream_without_a_temporary_copy(s3_root, s3_client, tutorial_model, monkeypatch):
    from kerasafe import _remote

    root, bucket = s3_root
    tensors = {f"t{i}": np.random.default_rng(i).standard_normal((64, 300)).astype("float32") for i in range(20)}
    kerasafe.checkpoint.write(f"{root}/stream/ckpt", tensors)
    kerasafe.save_weights(tutorial_model, f"{root}/stream/weights")

    def no_scratch():
        raise AssertionError("a temporary copy was made")

    monkeypatch.setattr(_remote, "scratch", no_scratch)
    back = kerasafe.checkpoint.read(f"{root}/stream/ckpt")
    assert set(back) == set(tensors) and all(np.array_equal(back[k], v) for k, v in tensors.items())
    from kerasafe import demo

    fresh = demo.build_model()
    kerasafe.load_weights(fresh, f"{root}/stream/weights")
    np.testing.assert_allclose(fresh(X).numpy(), tutorial_model(X).numpy(), atol=1e-6)

    # A flipped byte in the data object: the tensor's CRC fails, naming the object.
    key = "artifacts/stream/ckpt.data-00000-of-00001"
    body = bytearray(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[100] ^= 0x01
    s3_client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    with pytest.raises(errors.ChecksumError, match="ckpt.data-00000-of-00001"):
        kerasafe.checkpoint.read(f"{root}/stream/ckpt")
    # A truncated data object: a format error before any tensor is trusted.
    s3_client.put_object(Bucket=bucket, Key=key, Body=bytes(body[:1000]))
    with pytest.raises(errors.FormatError, match="ckpt.data-00000-of-00001"):
        kerasafe.checkpoint.read(f"{root}/stream/ckpt")


def test_cli_diff_scan_convert_take_urls(s3_root):
    root, _ = s3_root
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")], name="plain")
    model.compile(optimizer="adam", loss="mse")
    kerasafe.save_model(model, f"{root}/cli/a.h5")
    model.layers[0].kernel.assign(model.layers[0].kernel.numpy() + 1.0)
    kerasafe.save_model(model, f"{root}/cli/b.h5")

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kerasafe.cli", *argv], capture_output=True, text=True, timeout=300)

    diff = cli("diff", f"{root}/cli/a.h5", f"{root}/cli/b.h5", "--json")
    assert diff.returncode == 0, diff.stderr
    result = json.loads(diff.stdout)
    assert result["a"]["path"] == f"{root}/cli/a.h5" and result["weights"]["changed"] >= 1
    scan = cli("scan", f"{root}/cli/a.h5", "--json")
    assert scan.returncode == 0, scan.stderr + scan.stdout
    conv = cli("convert", f"{root}/cli/b.h5", f"{root}/cli/b.keras")
    assert conv.returncode == 0, conv.stderr + conv.stdout
    again = kerasafe.load_model(f"{root}/cli/b.keras")
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), atol=1e-6)
    refused = cli("convert", f"{root}/cli/b.h5", f"{root}/cli/b.keras")
    assert refused.returncode != 0 and "exists" in refused.stderr


@contextmanager
def _no_temporary_files(monkeypatch, tmp_path: Path):
    """Within the block, making a temporary file or directory fails: ``_remote.scratch`` and
    ``tempfile``'s makers raise, and TMPDIR / KERASAFE_TMPDIR / ``tempfile.tempdir`` point at an
    empty directory that must still be empty afterwards."""
    import tempfile

    from kerasafe import _remote

    empty = tmp_path / "tmp"
    empty.mkdir()

    def refuse(*args, **kwargs):
        raise AssertionError("a temporary file or directory was made")

    with monkeypatch.context() as m:
        m.setattr(_remote, "scratch", refuse)
        for maker in ("mkdtemp", "mkstemp", "NamedTemporaryFile", "TemporaryFile", "TemporaryDirectory"):
            m.setattr(tempfile, maker, refuse)
        m.setattr(tempfile, "tempdir", str(empty))
        m.setenv("TMPDIR", str(empty))
        m.setenv("KERASAFE_TMPDIR", str(empty))
        yield
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "w.weights.h5", "w.h5"])
def test_single_files_load_in_memory_without_a_temporary_copy(s3_root, tutorial_model, monkeypatch, tmp_path: Path, name: str):
    from kerasafe import demo

    root, _ = s3_root
    url = f"{root}/mem/{name}"
    weights_only = name.startswith("w.")
    if weights_only:
        kerasafe.save_weights(tutorial_model, url)
        loaded = demo.build_model()
        with _no_temporary_files(monkeypatch, tmp_path):
            kerasafe.load_weights(loaded, url, progress=True)
    else:
        kerasafe.save_model(tutorial_model, url)
        with _no_temporary_files(monkeypatch, tmp_path):
            loaded = kerasafe.load_model(url, progress=True)
    np.testing.assert_allclose(loaded(X).numpy(), tutorial_model(X).numpy(), atol=1e-6)


def test_fetched_objects_are_memory_files(s3_root, s3_client, tutorial_model):
    from kerasafe import _remote

    root, bucket = s3_root
    url = f"{root}/mem/model.keras"
    kerasafe.save_model(tutorial_model, url)
    fetched = _remote.fetch(url)
    size = s3_client.head_object(Bucket=bucket, Key="artifacts/mem/model.keras")["ContentLength"]
    assert (fetched.name, fetched.size, str(fetched)) == (url, size, url)
    assert repr(fetched) == f'MemoryFile("{url}", {size} bytes)'
    assert _core.sniff(fetched) == "zip"
    config_json, _, weights, assets = _core.keras_archive_read(fetched, False)
    assert json.loads(config_json)["class_name"] and weights is not None and assets == []


def test_missing_objects_are_not_found_as_before(s3_root):
    from kerasafe import demo

    root, _ = s3_root
    for name in ("model.keras", "model.h5"):
        with pytest.raises(errors.NotFoundError, match=f"{root}/nope/{name}") as info:
            kerasafe.load_model(f"{root}/nope/{name}")
        assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(errors.NotFoundError, match=f"{root}/nope/w.weights.h5"):
        kerasafe.load_weights(demo.build_model(), f"{root}/nope/w.weights.h5")


def test_damaged_objects_are_refused_naming_the_url(s3_root, s3_client, tutorial_model):
    import io
    import re
    import struct
    import zipfile

    root, bucket = s3_root
    url, key = f"{root}/bad/model.keras", "artifacts/bad/model.keras"
    kerasafe.save_model(tutorial_model, url)
    body = bytearray(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    member = zipfile.ZipFile(io.BytesIO(bytes(body))).getinfo("model.weights.h5")
    name_len, extra_len = struct.unpack("<HH", body[member.header_offset + 26 : member.header_offset + 30])
    start = member.header_offset + 30 + name_len + extra_len
    body[start + member.compress_size // 2] ^= 0xFF  # in the weights, same size
    s3_client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    with pytest.raises(errors.ChecksumError, match=re.escape(url)):
        kerasafe.load_model(url)

    url, key = f"{root}/bad/model.h5", "artifacts/bad/model.h5"
    kerasafe.save_model(tutorial_model, url)
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3_client.put_object(Bucket=bucket, Key=key, Body=body[: len(body) // 2])  # truncated
    with pytest.raises(errors.FormatError, match=re.escape(url)):
        kerasafe.load_model(url)


def test_keras_archives_with_assets_load_from_object_storage(s3_root, s3_client):
    import io
    import zipfile

    root, bucket = s3_root
    lookup = keras.layers.StringLookup(name="lookup")
    lookup.adapt(np.array(["a", "b", "b", "c", "c", "c"]))  # an adapted vocabulary is saved as an asset
    inputs = keras.Input((1,), dtype="string")
    model = keras.Model(inputs, lookup(inputs))
    url = f"{root}/assets/model.keras"
    kerasafe.save_model(model, url)
    body = s3_client.get_object(Bucket=bucket, Key="artifacts/assets/model.keras")["Body"].read()
    assert any(n.startswith("assets/") for n in zipfile.ZipFile(io.BytesIO(body)).namelist())
    loaded = kerasafe.load_model(url)
    words = np.array([["c"], ["a"], ["zz"]])
    np.testing.assert_array_equal(loaded(words).numpy(), model(words).numpy())


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_artifact_model_files_load_in_memory(s3_root, tutorial_model, monkeypatch, fmt: str):
    """load_artifact of a .keras / .h5 version keeps the model file in memory: only the version's
    small files (reference data) reach the scratch directory."""
    from kerasafe import _remote

    root, _ = s3_root
    kerasafe.save_artifact(tutorial_model, root, name="mem", format=fmt)
    seen: list[set[str]] = []
    real_scratch = _remote.scratch

    @contextmanager
    def watched():
        with real_scratch() as tmp:
            yield tmp
            seen.append({p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()})

    monkeypatch.setattr(_remote, "scratch", watched)
    loaded = kerasafe.load_artifact(root, name="mem", format=fmt)
    np.testing.assert_allclose(loaded(X).numpy(), tutorial_model(X).numpy(), atol=1e-6)
    assert seen, "the scratch directory was not used for the small files"
    model_file = {"keras": "model.keras", "h5": "model.h5"}[fmt]
    assert all(model_file not in files for files in seen), seen
    assert any(f.startswith("reference") for files in seen for f in files), seen
