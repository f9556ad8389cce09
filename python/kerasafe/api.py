"""The drop-in functions users call instead of ``model.save`` / ``load_model`` / ``save_weights``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Union

from . import _core, _h5tree, _progress, _remote, _weights
from .errors import ArtifactExistsError, ArtifactNotFoundError, FormatError, KerasafeError, NotFoundError, _brief

PathLike = Union[str, "os.PathLike[str]"]

_H5_SUFFIXES = (".h5", ".hdf5")


def _is_h5(path: str) -> bool:
    return path.lower().endswith(_H5_SUFFIXES)


def _kind_for_save(path: str) -> str:
    lower = path.lower()
    if lower.endswith(_H5_SUFFIXES):
        return "h5"
    if lower.endswith(".keras"):
        return "keras"
    return "savedmodel"


def save_model(
    model: Any,
    filepath: PathLike,
    *,
    overwrite: bool = True,
    include_optimizer: bool = True,
    progress: bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Save architecture, weights, optimizer state and compile config.

    ``*.h5`` / ``*.hdf5`` write the legacy HDF5 full model, ``*.keras`` the Keras 3 archive, any
    other path a SavedModel directory. Files are written under temporary names and renamed, so
    a failed save never leaves half a model behind.

    Under tf-keras (``TF_USE_LEGACY_KERAS=1``) tf-keras's own ``model.save`` writes each format
    (the SavedModel with its ``keras_metadata.pb``), into a temporary sibling renamed into place;
    its errors are raised as :mod:`kerasafe.errors` exceptions naming the path.

    ``progress``: a progress bar (bytes, rate) on stderr: True always, False never, None (the
    default) as ``KERASAFE_PROGRESS`` says, else only when stderr is a terminal and the job moves
    at least 1 GiB. For a SavedModel it counts the variables' bytes, written once TensorFlow has
    traced the model.

    ``filepath`` may be an ``s3://``, ``gs://`` or ``az://`` URL: the model is written to a
    temporary directory and uploaded (``storage_options`` as in :func:`kerasafe.save_artifact`).
    """
    from . import registry

    path = os.fspath(filepath)
    remote = _remote.is_remote(path)
    if not overwrite and (_remote.exists(path, storage_options) if remote else os.path.exists(path)):
        raise ArtifactExistsError(f"{path}: exists and overwrite=False")
    # Every custom object registered, get_config() JSON-able and from_config() rebuilding it:
    # checked before anything is written.
    registry.check_on_save(model)
    if remote:
        with _remote.writing(path, storage_options) as local:
            _save_local(model, local, include_optimizer, progress)
        return
    _save_local(model, path, include_optimizer, progress)


def _save_local(model: Any, path: str, include_optimizer: bool, progress: bool | None) -> None:
    kind = _kind_for_save(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with _progress.task(progress, _progress.describe("saving", path), lambda: _progress.model_bytes(model)):
        _save_model(model, path, kind, include_optimizer)


def _save_model(model: Any, path: str, kind: str, include_optimizer: bool) -> None:
    from . import _tf_keras

    if _tf_keras.active():
        _tf_keras.save_model(model, path, kind, include_optimizer)
    elif kind == "h5":
        from . import _h5

        _h5.save_model(model, path, include_optimizer=include_optimizer)
    elif kind == "keras":
        from . import _keras_format

        _keras_format.save(model, path)
    else:
        from . import _savedmodel

        _savedmodel.save(model, path, include_optimizer=include_optimizer)


def detect_format(path: str | _core.MemoryFile) -> str:
    """``"savedmodel"``, ``"keras"`` (zip or unzipped directory) or ``"h5"``, from content (of a
    file, or of an object fetched into memory)."""
    if not isinstance(path, _core.MemoryFile) and not os.path.exists(path):
        raise ArtifactNotFoundError(f"{path}: no such file or directory")
    kind = _core.sniff(path)
    if kind == "directory":
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return "savedmodel"
        raise FormatError(f"{path}: a directory without saved_model.pb is not a SavedModel")
    if kind == "zip":
        return "keras"
    if kind == "hdf5":
        return "h5"  # also the HDF5 models TF <= 2.12 wrote under a .keras name
    raise FormatError(f"{path}: not a Keras model: neither a .keras zip, an HDF5 file nor a SavedModel directory")


def load_model(
    filepath: PathLike,
    *,
    custom_objects: Any = None,
    compile: bool = True,
    safe_mode: bool = True,
    progress: bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Load a model saved by :func:`save_model`, Keras or tf-keras, into the installed Keras.

    The format is detected from the content, not the name. ``filepath`` may be an object-storage
    URL: a ``.keras`` or ``.h5`` object is fetched into memory and read there, with no temporary
    file; a SavedModel directory (TensorFlow reads files) is downloaded to one temporary
    directory, removed after loading.

    ``progress``: a progress bar (bytes, rate) on stderr: True always, False never, None (the
    default) as ``KERASAFE_PROGRESS`` says, else only when stderr is a terminal and the job moves
    at least 1 GiB.
    """
    path = os.fspath(filepath)
    source: str | _core.MemoryFile = path
    if _remote.is_remote(path):
        try:
            source = _remote.fetch(path, storage_options)  # one object: read in memory
        except NotFoundError:
            # No object at the URL: objects under it (a SavedModel directory), which TensorFlow
            # reads as files; NotFoundError again when there are none.
            with _remote.reading(path, storage_options) as local:
                return load_model(local, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode, progress=progress)
    return load_source(source, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode, progress=progress)


def load_source(source: str | _core.MemoryFile, *, custom_objects: Any, compile: bool, safe_mode: bool, progress: bool | None) -> Any:
    """:func:`load_model` of a local path or of a file already fetched into memory."""
    from . import registry

    kind = detect_format(source)
    name = _remote.name_of(source)
    with _progress.task(progress, _progress.describe("loading", name), lambda: _progress.path_bytes(source)), _as_format_error(name):
        # Before anything is deserialized: refuse references to code outside Keras and the
        # registry, and name every custom object nobody provided, at once. An .h5 file is read
        # once (its large values stay in the file) for both the check and the load.
        h5_root = _h5tree.read(source, deferred=True) if kind == "h5" else None
        if h5_root is not None:
            custom_objects = registry.preflight(registry.h5_document(h5_root, name), custom_objects, safe_mode, source=name)
        else:
            custom_objects = registry.preflight_file(source, custom_objects, safe_mode)
        return _load_model(source, kind, custom_objects, compile, safe_mode, h5_root)


@contextmanager
def _as_format_error(name: str) -> Iterator[None]:
    """What Keras raises on a stored config it cannot use (a damaged or hand-edited file: a
    misspelt key, a shape that does not fit, text that is not UTF-8) becomes a FormatError naming
    the file; Keras's own error stays attached as the cause."""
    try:
        yield
    except KerasafeError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise FormatError(f"{name}: cannot load the model: {_brief(exc)}") from exc


def _load_model(path: str | _core.MemoryFile, kind: str, custom_objects: Any, compile: bool, safe_mode: bool, h5_root: Any) -> Any:
    from . import _keras_state

    # Keras's initializers would only fill variables that the file's values then overwrite.
    with _keras_state.filled_from_file(), _keras_state.sequential_built_once():
        model = _load_model_filled(path, kind, custom_objects, compile, safe_mode, h5_root)
    # Every variable now holds its value (the file's, or its initializer's): rebuild the state
    # layers derive from them, which they derived while the variables were still unfilled.
    _keras_state.finalize_loaded_state(model)
    return model


def _load_model_filled(path: str | _core.MemoryFile, kind: str, custom_objects: Any, compile: bool, safe_mode: bool, h5_root: Any) -> Any:
    if kind == "h5":
        from . import _h5

        return _h5.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode, root=h5_root)
    if kind == "keras":
        from . import _keras_format

        return _keras_format.load(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
    from . import _savedmodel

    return _savedmodel.load(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def save_weights(model: Any, filepath: PathLike, *, progress: bool | None = None, storage_options: Mapping[str, Any] | None = None) -> None:
    """Save a model's weights.

    ``*.weights.h5`` / ``*.h5`` write HDF5; any other path is a TF checkpoint prefix
    (``PREFIX.index`` + ``PREFIX.data-00000-of-00001``) keyed exactly as tf-keras keys
    ``model.save_weights(prefix)``, so either Keras can load it. Object-storage URLs work too.
    Under tf-keras the HDF5 files are written by tf-keras's ``model.save_weights`` (same layouts),
    into a temporary sibling renamed into place.

    ``progress``: a progress bar (bytes, rate) on stderr: True always, False never, None (the
    default) as ``KERASAFE_PROGRESS`` says, else only when stderr is a terminal and the job moves
    at least 1 GiB.
    """
    path = os.fspath(filepath)
    if _remote.is_remote(path):
        with (_remote.writing if _is_h5(path) else _remote.writing_prefix)(path, storage_options) as local:
            save_weights(model, local, progress=progress)
        return
    with _progress.task(progress, _progress.describe("saving", path), lambda: _progress.model_bytes(model)):
        if _is_h5(path):
            from . import _h5, _tf_keras

            (_tf_keras.save_weights if _tf_keras.active() else _h5.save_weights)(model, path)
            return
        _weights.save_tf_checkpoint(model, path)


def load_weights(model: Any, filepath: PathLike, *, progress: bool | None = None, storage_options: Mapping[str, Any] | None = None) -> None:
    """Load weights saved by :func:`save_weights`, tf-keras or Keras into a built ``model``.

    Every value is read and checked against the model (names and shapes) before the first
    variable is assigned: on error the model is left untouched. Object-storage URLs work too.

    ``progress``: a progress bar (bytes, rate) on stderr: True always, False never, None (the
    default) as ``KERASAFE_PROGRESS`` says, else only when stderr is a terminal and the job moves
    at least 1 GiB.
    """
    from . import _keras_state

    # Values are read into buffers of their own that the variables then keep (on TensorFlow),
    # rather than copied into new tensors first.
    with _keras_state.filled_from_file():
        _load_weights(model, os.fspath(filepath), progress, storage_options)
    _keras_state.finalize_loaded_state(model)  # Normalization's mean and variance, and the like


def _load_weights(model: Any, path: str, progress: bool | None, storage_options: Mapping[str, Any] | None) -> None:
    source: str | _core.MemoryFile = path
    if _remote.is_remote(path):
        if not _is_h5(path):
            # TF checkpoints stream: ranged GETs straight into the arrays.
            reader = _remote.native().RemoteCheckpointReader(path, _remote.options(storage_options))
            with _progress.task(progress, _progress.describe("loading", path), reader.data_bytes):
                _weights.load_tf_checkpoint(model, path, reader=reader)
            return
        source = _remote.fetch(path, storage_options)  # HDF5 read in memory: no temporary copy
    with _progress.task(progress, _progress.describe("loading", path), lambda: _progress.path_bytes(source)):
        if _is_h5(path):
            from . import _h5

            _h5.load_weights(model, source)
            return
        _weights.load_tf_checkpoint(model, path, in_place=True)
