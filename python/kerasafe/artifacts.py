"""Versioned, validated artifacts: ``root/<name>/<format>/vN/`` with metadata and reference outputs.

A version is written into a temporary directory, reloaded and checked against reference outputs
computed before saving, then published atomically by the Rust store (manifest of SHA-256s in
``metadata.json``, fsync, rename). Versions are never overwritten.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _artifact_writes, _core, _formats, _progress, _remote, checkpoint, keras_bridge
from .errors import ArtifactExistsError, ArtifactNotFoundError, ChecksumError, FormatError, InvalidArgumentError, KerasafeError, ValidationError
from .validation import Comparison, as_output_list, compare_outputs, comparison_from_dict

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["Artifact", "Report", "VersionInfo", "save_artifact", "load_artifact", "verify_artifact", "list_versions", "prune"]

FORMATS = ("savedmodel", "h5", "keras", "weights")
REFERENCE_PREFIX = "reference/reference"
# Across device classes (say, saved on a GPU with TF32 matmuls, checked on a CPU) outputs of a
# correct artifact differ by up to ~1e-3 (measured: 1.3e-3 abs for attention on an H200); the
# load-time check then uses this looser tolerance and says so in the report.
CROSS_DEVICE_TOLERANCE = {"atol": 2e-3, "rtol": 1e-2}


@dataclass
class Artifact:
    """A published version. ``path`` is a local :class:`~pathlib.Path`, or a ``str`` URL for
    versions in object storage."""

    name: str
    format: str
    version: str
    path: Path | str
    metadata: dict[str, Any]
    comparison: Comparison | None = None

    @property
    def model_path(self) -> Path | str:
        if isinstance(self.path, str):
            rel = _formats.model_path(self.format, Path("."))
            return self.path if str(rel) == "." else f"{self.path}/{rel}"
        return _formats.model_path(self.format, self.path)

    def __repr__(self) -> str:
        check = self.comparison.summary() if self.comparison else "not validated"
        return f"Artifact({self.name}/{self.format}/{self.version} at {self.path}; {check})"

    def _repr_html_(self) -> str:
        import html  # only notebooks render it

        rows = [
            ("path", str(self.path)),
            ("files", str(len(self.metadata.get("manifest", {}).get("files", {})))),
            ("size", f"{_total_size(self.metadata):,} bytes"),
            ("created", str(self.metadata.get("created_at"))),
            ("validation", self.comparison.summary() if self.comparison else "not validated"),
        ]
        body = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<p><b>{html.escape(self.name)}</b> {self.format} {self.version}</p><table>{body}</table>"


@dataclass
class Report:
    """What :func:`verify_artifact` found."""

    path: Path | str
    ok: bool
    checksums_ok: bool
    problems: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "checksums_ok": self.checksums_ok,
            "problems": self.problems,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "notes": self.notes,
        }

    def __repr__(self) -> str:
        status = "ok" if self.ok else "FAILED"
        detail = "; ".join(self.problems) or (self.comparison.summary() if self.comparison else "checksums ok")
        return f"Report({status}: {self.path}: {detail})"

    def _repr_html_(self) -> str:
        import html  # only notebooks render it

        items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems + self.notes)
        cmp = self.comparison._repr_html_() if self.comparison else ""
        return f"<p><b>{'ok' if self.ok else 'FAILED'}</b> {html.escape(str(self.path))}</p><ul>{items}</ul>{cmp}"


def _total_size(metadata: Mapping[str, Any]) -> int:
    return sum(int(f.get("size", 0)) for f in metadata.get("manifest", {}).get("files", {}).values())


# -- reference inputs ------------------------------------------------------------------------------


def default_reference_input(model: Any) -> list[np.ndarray]:
    """A deterministic input per model input: ``linspace(-1, 1)`` for floats, integers inside
    the smallest embedding vocabulary (else 0..9) for integer inputs; unknown dims become 1."""
    specs = keras_bridge.input_specs(model)
    vocab = keras_bridge.smallest_vocabulary(model)
    out = []
    for _, shape, dtype in specs:
        concrete = tuple(1 if d is None else int(d) for d in shape)
        n = int(np.prod(concrete)) if concrete else 1
        if np.issubdtype(np.dtype(dtype), np.integer):
            out.append((np.arange(n) % (vocab or 10)).astype(dtype).reshape(concrete))
        elif np.dtype(dtype) == np.bool_:
            out.append((np.arange(n) % 2 == 0).reshape(concrete))
        else:
            out.append(np.linspace(-1.0, 1.0, n).astype(dtype).reshape(concrete))
    return out


def _run(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return as_output_list(model(inputs[0] if len(inputs) == 1 else inputs, training=False))


def _write_reference(directory: Path, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    tensors = {f"inputs/{i}": a for i, a in enumerate(inputs)}
    tensors.update({f"outputs/{i}": a for i, a in enumerate(outputs)})
    checkpoint.write(directory / REFERENCE_PREFIX, tensors)


def read_reference(directory: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    data = checkpoint.read(Path(directory) / REFERENCE_PREFIX)
    pick = lambda kind: [data[f"{kind}/{i}"] for i in range(sum(1 for k in data if k.startswith(kind + "/")))]  # noqa: E731
    return pick("inputs"), pick("outputs")


def _device_info() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine()}
    try:
        keras = keras_bridge.keras_module()
        info["backend"] = keras_bridge.backend_name(keras)
    except ImportError:
        return info
    info["device_kind"] = "cpu"
    try:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            info["device_kind"] = "gpu"
        info["tf32_execution"] = bool(tf.config.experimental.tensor_float_32_execution_enabled())
    except Exception:
        pass
    return info


# -- metadata --------------------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"kerasafe_version": _core.__version__}
    keras = keras_bridge.keras_module()
    out["keras_version"] = getattr(keras, "__version__", None)
    try:
        import tensorflow as tf

        out["tensorflow_version"] = tf.__version__
    except ImportError:
        out["tensorflow_version"] = None
    out["backend"] = keras_bridge.backend_name(keras)
    return out


# User metadata keys that describe the training run: recorded under "training" too.
TRAINING_RUN_KEYS = ("batch_size", "epochs", "seed")


def _build_metadata(model: Any, name: str, fmt: str, user: Mapping[str, Any] | None, comparison: Comparison, ref_inputs: list[np.ndarray], device: dict[str, Any]) -> dict[str, Any]:
    user = dict(user or {})
    compile_info = keras_bridge.compile_summary(model)
    training = {**compile_info, **(user.pop("training", None) or {})}
    # Run settings given at the top level also belong to the training record (and stay as given).
    training.update({k: user[k] for k in TRAINING_RUN_KEYS if k in user and k not in training})
    trainable, non_trainable = keras_bridge.parameter_counts(model)
    meta: dict[str, Any] = {
        "model_name": name,
        "format": fmt,
        "created_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        **_versions(),
        "input_signature": [{"name": n, "shape": list(s), "dtype": d} for n, s, d in keras_bridge.input_specs(model)],
        "output_signature": [{"name": n, "shape": list(s), "dtype": d} for n, s, d in keras_bridge.output_specs(model)],
        "training": training,
        "data": user.pop("data", None),
        "notes": user.pop("notes", None),
        "released": bool(user.pop("released", False)),
        "parameters": {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable},
        "custom_objects": keras_bridge.custom_object_names(model),
        "validation": {
            **comparison.to_dict(),
            "reference": {"path": REFERENCE_PREFIX, "inputs": [{"shape": list(a.shape), "dtype": a.dtype.name} for a in ref_inputs]},
            "device": device,
        },
    }
    meta.update(user)  # anything else the user recorded, kept as given
    return meta


# -- public API ------------------------------------------------------------------------------------


def save_artifact(
    model: Any,
    root: PathLike,
    *,
    name: str,
    format: str = "savedmodel",
    version: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    reference_input: Any = None,
    progress: bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Artifact:
    """Save ``model`` as a new version under ``root/name/format/``, validated and published atomically.

    The reference input (given, or derived from the model's inputs) is run before saving; the
    saved copy is reloaded and run again; a difference beyond the dtype's tolerance raises
    :class:`~kerasafe.errors.ValidationError` and publishes nothing.

    ``metadata``: recorded in ``metadata.json`` as given; ``data``, ``notes`` and ``training``
    (merged over the compile config: optimizer, loss, metrics) have their own keys, and
    ``batch_size``, ``epochs`` and ``seed`` given at the top level are recorded under
    ``training`` too. ``released: True`` keeps the version from :func:`prune`.

    ``root`` may be an ``s3://``, ``gs://`` or ``az://`` URL. The version is then built in a
    local temporary directory, claimed with a create-only put, uploaded, and committed by its
    ``metadata.json`` landing last. Credentials come from the environment or
    ``storage_options`` (``object_store`` keys such as ``aws_endpoint``, ``aws_region``).

    ``progress``: a progress bar (bytes, rate) on stderr over the writing, reading and hashing:
    True always, False never, None (the default) as ``KERASAFE_PROGRESS`` says, else only when
    stderr is a terminal and the job moves at least 1 GiB.
    """
    if format not in FORMATS:
        raise InvalidArgumentError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    with _progress.task(progress, f"kerasafe: saving {name}/{format}", lambda: _progress.model_bytes(model)):
        return _save_artifact(model, root, name, format, version, metadata, reference_input, storage_options)


def _save_artifact(
    model: Any, root: PathLike, name: str, format: str, version: str | None, metadata: Mapping[str, Any] | None, reference_input: Any, storage_options: Mapping[str, Any] | None
) -> Artifact:
    remote = _remote.is_remote(root)
    if remote and version is not None and _remote.exists(f"{str(root).rstrip('/')}/{name}/{format}/{version}", storage_options):
        raise ArtifactExistsError(f"{root}/{name}/{format}/{version}: exists; versions are never overwritten")
    inputs = as_output_list(reference_input) if reference_input is not None else default_reference_input(model)
    expected = _run(model, inputs)
    device = _device_info()

    def build(directory: Path) -> tuple[Comparison, dict[str, Any]]:
        with _artifact_writes.hashing():
            _formats.save_into(model, format, directory)
        if not remote:
            _core.store_start_writeback(str(directory))  # the disk works while the model reloads
        _write_reference(directory, inputs, expected)
        reloaded = _formats.load_from(format, directory, custom_objects=keras_bridge.custom_objects_of(model), compile=False, model_factory=lambda: keras_bridge.clone_structure(model))
        comparison = compare_outputs(expected, _run(reloaded, inputs))
        comparison.raise_if_failed(f"{name}/{format}: reloaded outputs")
        return comparison, _build_metadata(model, name, format, metadata, comparison, inputs, device)

    if remote:
        with _remote.scratch() as tmp:
            directory = tmp / "version"
            directory.mkdir()
            try:
                comparison, meta = build(directory)
                published = json.loads(
                    _remote.native().remote_publish(str(root), name, format, version, str(directory), json.dumps(meta), _remote.options(storage_options))
                )
            except BaseException:
                _core.store_forget_written(str(directory))  # its files are about to be deleted
                raise
        return Artifact(name, format, _version_str(published["version"]), published["path"], published["metadata"], comparison)

    staged = _core.store_begin(os.fspath(root), name, format, version)
    try:
        comparison, meta = build(Path(staged.path))
        published = json.loads(staged.commit(json.dumps(meta), progress=_progress.current()))
    except BaseException:
        staged.abort()
        raise
    return Artifact(name, format, _version_str(published["version"]), Path(published["path"]), published["metadata"], comparison)


def _version_str(v: Any) -> str:
    return str(v)  # the core serialises versions as their names ("v3", "1.2.0")


def _resolve(path_or_root: PathLike, name: str | None, format: str | None, version: str, storage_options: Mapping[str, Any] | None = None) -> Path | str:
    if _remote.is_remote(path_or_root):
        url = str(path_or_root).rstrip("/")
        if name is None:
            return url
        return str(_remote.native().remote_resolve(url, name, format, version, _remote.options(storage_options)))
    if name is None:
        path = Path(path_or_root)
        if not (path / "metadata.json").is_file():
            raise ArtifactNotFoundError(f"{path}: not a kerasafe artifact version (no metadata.json); pass name= to resolve a version under a root")
        return path
    return Path(_core.store_resolve(os.fspath(path_or_root), name, format, version))


def _check_reference(model: Any, directory: Path, metadata: Mapping[str, Any]) -> tuple[Comparison, list[str]]:
    inputs, expected = read_reference(directory)
    stored = metadata.get("validation", {})
    notes: list[str] = []
    atol = rtol = None
    saved_on = stored.get("device", {})
    here = _device_info()
    if saved_on.get("device_kind") and saved_on.get("device_kind") != here.get("device_kind"):
        atol, rtol = CROSS_DEVICE_TOLERANCE["atol"], CROSS_DEVICE_TOLERANCE["rtol"]
        notes.append(f"reference computed on {saved_on.get('device_kind')}, checked on {here.get('device_kind')}: using cross-device tolerance atol={atol}, rtol={rtol}")
    return compare_outputs(expected, _run(model, inputs), atol=atol, rtol=rtol), notes


def load_artifact(
    path_or_root: PathLike,
    *,
    name: str | None = None,
    format: str | None = None,
    version: str = "latest",
    custom_objects: Mapping[str, Any] | None = None,
    verify: bool = True,
    check_outputs: bool = True,
    model: Any = None,
    progress: bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Load a version: resolve ``latest``, verify every file's SHA-256 before deserializing,
    load, and rerun the stored reference input (``check_outputs``). Returns the Keras model.

    ``path_or_root`` is a version directory, or a root when ``name`` is given; either may be an
    object-storage URL: every file is checked against the manifest as it streams in; a ``.keras``
    or ``.h5`` model file is read in memory, the version's other files (or a SavedModel or
    checkpoint's) go to a temporary directory removed after loading. For the ``weights``
    format, pass ``model`` to load into a model built from code (else the stored architecture is
    rebuilt).

    ``progress``: a progress bar (bytes, rate) on stderr over the writing, reading and hashing:
    True always, False never, None (the default) as ``KERASAFE_PROGRESS`` says, else only when
    stderr is a terminal and the job moves at least 1 GiB.
    """
    location = _resolve(path_or_root, name, format, version, storage_options)
    if isinstance(location, str):
        native, opts = _remote.native(), _remote.options(storage_options)
        fmt = json.loads(native.remote_read_metadata(location, opts)).get("format") or format
        with _remote.scratch() as tmp:
            # The download checks every file's size and SHA-256 against the manifest. A .keras or
            # .h5 model file stays in memory (no temporary copy); the small files land in tmp.
            if fmt in ("keras", "h5"):
                _, model_file = native.remote_download_version_keeping(location, str(tmp), _formats.MODEL_FILES[fmt], opts)
                return _load_artifact(tmp, format, custom_objects, False, check_outputs, model, model_file=model_file, progress=progress)
            native.remote_download_version(location, str(tmp), opts)
            return load_artifact(tmp, format=format, custom_objects=custom_objects, verify=False, check_outputs=check_outputs, model=model, progress=progress)
    with _progress.task(progress, _progress.describe("loading", location), lambda: _progress.path_bytes(location)):
        return _load_artifact(location, format, custom_objects, verify, check_outputs, model)


def _load_artifact(
    directory: Path, format: str | None, custom_objects: Mapping[str, Any] | None, verify: bool, check_outputs: bool, model: Any, model_file: Any = None, progress: bool | None = None
) -> Any:
    """Load the version in ``directory``; ``model_file`` (a fetched ``MemoryFile``) stands in for
    its model file, which is then not in the directory."""
    metadata = json.loads(_core.store_read_metadata(os.fspath(directory)))
    fmt = metadata.get("format") or format
    if fmt not in FORMATS:
        raise FormatError(f"{directory}/metadata.json: unknown format {fmt!r}")
    if verify:
        _core.store_verify_strict(os.fspath(directory), progress=_progress.current())
    if model_file is not None:
        from . import api

        loaded = api.load_source(model_file, custom_objects=custom_objects, compile=True, safe_mode=True, progress=progress)
    else:
        loaded = _formats.load_from(fmt, directory, custom_objects=custom_objects, compile=True, model=model)
    if check_outputs:
        comparison, _ = _check_reference(loaded, directory, metadata)
        comparison.raise_if_failed(f"{directory}: outputs of the loaded model")
    return loaded


def verify_artifact(
    path: PathLike,
    *,
    check_outputs: bool = True,
    custom_objects: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Report:
    """Check a version: manifest checksums, structure, and (when Keras is importable) the
    reference outputs. Never raises for a damaged artifact: the report says what is wrong.
    ``path`` may be an object-storage URL (objects are hashed as they stream; the reference
    rerun downloads the version to a temporary directory).

    ``progress``: a progress bar (bytes, rate) on stderr over the writing, reading and hashing:
    True always, False never, None (the default) as ``KERASAFE_PROGRESS`` says, else only when
    stderr is a terminal and the job moves at least 1 GiB.
    """
    if _remote.is_remote(path):
        return _verify_remote(str(path).rstrip("/"), check_outputs, custom_objects, storage_options)
    directory = Path(path)
    with _progress.task(progress, _progress.describe("verifying", directory), lambda: _progress.path_bytes(directory)):
        return _verify_local(directory, check_outputs, custom_objects)


def _verify_local(directory: Path, check_outputs: bool, custom_objects: Mapping[str, Any] | None) -> Report:
    try:
        metadata = json.loads(_core.store_read_metadata(os.fspath(directory)))
        report = json.loads(_core.store_verify(os.fspath(directory), progress=_progress.current()))
    except KerasafeError as exc:  # unreadable metadata, or a manifest that is not one
        return Report(directory, False, False, [str(exc)])
    return _finish_verify(directory, directory, metadata, report, check_outputs, custom_objects)


def _verify_remote(url: str, check_outputs: bool, custom_objects: Mapping[str, Any] | None, storage_options: Mapping[str, Any] | None) -> Report:
    core, opts = _remote.native(), _remote.options(storage_options)
    try:
        metadata = json.loads(core.remote_read_metadata(url, opts))
        report = json.loads(core.remote_verify(url, opts))
    except KerasafeError as exc:
        return Report(url, False, False, [str(exc)])
    checksums_ok = not (report["missing"] or report["extra"] or report["size_mismatches"] or report["hash_mismatches"])
    if not (checksums_ok and check_outputs):
        return _finish_verify(url, None, metadata, report, False, custom_objects)
    with _remote.scratch() as tmp:
        try:
            core.remote_download_version(url, str(tmp), opts)
        except KerasafeError as exc:  # changed between the two reads
            return Report(url, False, False, [str(exc)])
        return _finish_verify(url, tmp, metadata, report, True, custom_objects)


def _finish_verify(
    shown: Path | str, directory: Path | None, metadata: dict[str, Any], report: dict[str, Any], check_outputs: bool, custom_objects: Mapping[str, Any] | None
) -> Report:
    problems: list[str] = []
    notes: list[str] = []
    checksums_ok = not (report["missing"] or report["extra"] or report["size_mismatches"] or report["hash_mismatches"])
    problems += [f"missing file: {p}" for p in report["missing"]]
    problems += [f"file not in the manifest: {p}" for p in report["extra"]]
    problems += [f"{m['path']}: size {m['actual']} bytes, manifest says {m['expected']}" for m in report["size_mismatches"]]
    problems += [f"{m['path']}: sha256 differs from the manifest" for m in report["hash_mismatches"]]
    comparison = None
    fmt = metadata.get("format")
    if fmt not in FORMATS:
        problems.append(f"metadata.json: unknown format {fmt!r}")
    elif checksums_ok and check_outputs and directory is not None:
        try:
            keras_bridge.keras_module()
        except ImportError:
            notes.append("Keras is not installed: reference outputs not rerun")
        else:
            try:
                model = _formats.load_from(fmt, directory, custom_objects=custom_objects, compile=False)
                comparison, more = _check_reference(model, directory, metadata)
                notes += more
                if not comparison.passed:
                    problems.append(f"reference outputs: {comparison.summary()}")
            except (KerasafeError, OSError, ValueError) as exc:
                problems.append(f"cannot rerun the reference: {exc}")
    stored = metadata.get("validation")
    if stored and comparison is None:
        comparison = comparison_from_dict(stored)
    return Report(shown, not problems, checksums_ok, problems, comparison, notes)


@dataclass
class VersionInfo:
    """One published version as :func:`list_versions` reports it."""

    name: str
    format: str
    version: str
    path: Path | str
    metadata: dict[str, Any]

    @property
    def released(self) -> bool:
        return bool(self.metadata.get("released"))

    @property
    def created_at(self) -> str | None:
        return self.metadata.get("created_at")

    @property
    def size(self) -> int:
        return _total_size(self.metadata)


def list_versions(root: PathLike, name: str, format: str | None = None, *, storage_options: Mapping[str, Any] | None = None) -> list[VersionInfo]:
    """Published versions of ``name`` (in one format, or all), oldest first. In object storage,
    only committed versions (their ``metadata.json`` landed) are listed."""
    if _remote.is_remote(root):
        entries = json.loads(_remote.native().remote_list_versions(str(root).rstrip("/"), name, format, _remote.options(storage_options)))
        return [VersionInfo(e["name"], e["format"], _version_str(e["version"]), e["path"], e.get("metadata") or {}) for e in entries]
    entries = json.loads(_core.store_list_versions(os.fspath(root), name, format))
    return [VersionInfo(e["name"], e["format"], _version_str(e["version"]), Path(e["path"]), e.get("metadata") or {}) for e in entries]


def prune(root: PathLike, name: str, format: str, *, keep_last: int, storage_options: Mapping[str, Any] | None = None) -> list[Path] | list[str]:
    """Delete all but the newest ``keep_last`` versions, never one marked ``released``."""
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise InvalidArgumentError(f"prune must keep at least the newest version: keep_last must be a whole number >= 1, not {keep_last!r}")
    if _remote.is_remote(root):
        return list(_remote.native().remote_prune(str(root).rstrip("/"), name, format, keep_last, _remote.options(storage_options)))
    return [Path(p) for p in _core.store_prune(os.fspath(root), name, format, keep_last)]


