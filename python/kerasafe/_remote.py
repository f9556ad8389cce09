"""Object storage paths (``s3://``, ``gs://``, ``az://``) for every path argument.

The Rust core does the transfers (``object_store``: parallel, multipart for large files,
checksums checked while downloading). Single-file models and weights (``.keras``, ``.h5``) are
read from memory (:func:`fetch`), TF checkpoints with ranged GETs; formats that Keras or TF must
write or read as local files go through one temporary directory, removed afterwards.

Credentials and endpoints come from the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``,
``AZURE_STORAGE_ACCOUNT_NAME`` …) or an explicit ``storage_options`` mapping of ``object_store``
configuration keys (``{"aws_endpoint": "http://127.0.0.1:9000", "aws_region": "us-east-1"}``).
Option values never appear in errors, logs or reprs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import _core
from .errors import InvalidArgumentError

SCHEMES = ("s3://", "s3a://", "gs://", "az://", "abfs://")

StorageOptions = Mapping[str, Any] | None


def is_remote(path: Any) -> bool:
    """Whether ``path`` is an object-storage URL rather than a local path."""
    return isinstance(path, str) and path.startswith(SCHEMES)


def options(storage_options: StorageOptions) -> dict[str, str] | None:
    """``storage_options`` as the string mapping the core takes; ``None`` for none."""
    if not storage_options:
        return None
    if not isinstance(storage_options, Mapping):
        raise InvalidArgumentError("storage_options must be a mapping of option names to values")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in storage_options.items()}


def native() -> Any:
    """The core, checked to have been built with object storage."""
    if not getattr(_core, "HAS_OBJECT_STORAGE", False):
        raise InvalidArgumentError("this kerasafe build has no object storage support (built without the 's3' cargo feature)")
    return _core


def basename(url: str) -> str:
    """The last key component: ``s3://b/models/m.keras`` → ``m.keras``."""
    rest = url.split("://", 1)[-1].strip("/")
    if "/" not in rest:
        raise InvalidArgumentError(f"{url}: the URL names a bucket, not an object or prefix in it")
    return rest.rsplit("/", 1)[1]


def parent(url: str) -> str:
    head, _, _ = url.rstrip("/").rpartition("/")
    return head


@contextmanager
def scratch() -> Iterator[Path]:
    """A private temporary directory, removed on exit (``KERASAFE_TMPDIR`` chooses where)."""
    directory = Path(tempfile.mkdtemp(prefix="kerasafe-", dir=os.environ.get("KERASAFE_TMPDIR")))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def writing(url: str, storage_options: StorageOptions = None) -> Iterator[str]:
    """A local path named like ``url``'s last component; whatever is written there (a file or a
    directory) is uploaded to ``url`` when the block ends without error."""
    core, opts = native(), options(storage_options)
    with scratch() as tmp:
        local = tmp / basename(url)
        yield str(local)
        core.remote_upload(str(local), url, opts)


@contextmanager
def reading(url: str, storage_options: StorageOptions = None) -> Iterator[str]:
    """The object at ``url`` (or the objects under ``url/``) downloaded to a local path."""
    core, opts = native(), options(storage_options)
    with scratch() as tmp:
        local = tmp / basename(url)
        core.remote_download(url, str(local), opts)
        yield str(local)


@contextmanager
def writing_prefix(url: str, storage_options: StorageOptions = None) -> Iterator[str]:
    """A local checkpoint prefix; every file written next to it (``PREFIX.index``,
    ``PREFIX.data-*``, a ``checkpoint`` state file) is uploaded beside ``url``."""
    core, opts = native(), options(storage_options)
    with scratch() as tmp:
        yield str(tmp / basename(url))
        target = parent(url)
        for entry in sorted(tmp.iterdir()):
            core.remote_upload(str(entry), f"{target}/{entry.name}", opts)


@contextmanager
def reading_prefix(url: str, storage_options: StorageOptions = None) -> Iterator[str]:
    """A checkpoint prefix's files (``url.index``, ``url.data-*``) downloaded; yields the local
    prefix."""
    core, opts = native(), options(storage_options)
    with scratch() as tmp:
        core.remote_download_siblings(url, str(tmp), opts)
        yield str(tmp / basename(url))


@contextmanager
def local_copy(url: str, storage_options: StorageOptions = None) -> Iterator[str]:
    """Whatever ``url`` names, downloaded: an artifact version (every file checked against its
    manifest), a model file or directory, or a checkpoint prefix's files; yields the local path."""
    from .errors import NotFoundError

    core, opts = native(), options(storage_options)
    with scratch() as tmp:
        if exists(f"{url.rstrip('/')}/metadata.json", storage_options):
            core.remote_download_version(url.rstrip("/"), str(tmp), opts)
            local = str(tmp)
        else:
            local = str(tmp / basename(url))
            try:
                core.remote_download(url, local, opts)
            except NotFoundError:
                core.remote_download_siblings(url, str(tmp), opts)  # a checkpoint prefix
        yield local


def fetch(url: str, storage_options: StorageOptions = None) -> _core.MemoryFile:
    """The object at ``url``, whole, in memory: a ``_core.MemoryFile`` that the ``.keras`` and
    HDF5 readers take in place of a path, so no temporary file is written. A missing object is a
    :class:`~kerasafe.errors.NotFoundError`, as from :func:`reading`."""
    return native().remote_fetch(url, options(storage_options))


def name_of(source: str | os.PathLike[str] | _core.MemoryFile) -> str:
    """How messages name a reader's input: a path as given, a fetched object by its URL."""
    return source.name if isinstance(source, _core.MemoryFile) else os.fspath(source)


def exists(url: str, storage_options: StorageOptions = None) -> bool:
    """Whether an object exists at ``url`` or any object under ``url/``."""
    return bool(native().remote_exists(url, options(storage_options)))
