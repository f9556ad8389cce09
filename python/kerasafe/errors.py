"""Exceptions raised by kerasafe.

Every class derives from :class:`KerasafeError` and, where one fits, from the standard exception
users already catch: a corrupt file is a ``ValueError``, a missing one a ``FileNotFoundError``.
The Rust core maps each of its error variants to exactly one class here.
"""

from __future__ import annotations

__all__ = [
    "KerasafeError",
    "KerasafeWarning",
    "FormatError",
    "ChecksumError",
    "InvalidArgumentError",
    "StorageError",
    "StoragePermissionError",
    "NotFoundError",
    "ArtifactNotFoundError",
    "ArtifactExistsError",
    "MissingCustomObjectError",
    "UnsafeArtifactError",
    "ValidationError",
    "IncompatibleModelError",
]


class KerasafeError(Exception):
    """Base class of every kerasafe error."""


class KerasafeWarning(UserWarning):
    """Warnings kerasafe emits (fallbacks, dropped optimizer state, unsafe opt-ins)."""


class FormatError(KerasafeError, ValueError):
    """A file that does not follow its format: truncated, wrong magic, bad lengths, bad JSON."""


class ChecksumError(KerasafeError, ValueError):
    """Stored and computed checksums differ: the named file or tensor was damaged or altered."""


class InvalidArgumentError(KerasafeError, ValueError):
    """An argument kerasafe cannot use (unsupported dtype, bad name, mismatched lengths)."""


class StorageError(KerasafeError, OSError):
    """The operating system refused a read or write."""


class StoragePermissionError(StorageError, PermissionError):
    """Permission denied on a file or directory."""


class NotFoundError(StorageError, FileNotFoundError):
    """Something kerasafe was asked to read does not exist; raised as :class:`ArtifactNotFoundError`."""


class ArtifactNotFoundError(NotFoundError):
    """No such model file, checkpoint, directory or object, or no such versioned artifact, model,
    format or version."""


class ArtifactExistsError(KerasafeError, FileExistsError):
    """The version exists already; versions are never overwritten."""


class MissingCustomObjectError(KerasafeError, KeyError, TypeError):
    """Custom objects a stored model needs and nobody registered or passed; names all of them."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnsafeArtifactError(KerasafeError, ValueError):
    """A file that would run code (Lambda bytecode, references outside Keras) under safe_mode."""


class ValidationError(KerasafeError, AssertionError):
    """A reloaded model's outputs differ from the reference beyond tolerance."""


class IncompatibleModelError(KerasafeError, ValueError):
    """A stored model the installed Keras cannot represent as written: the message names the
    layer, the Keras version that wrote the file, and what to do instead."""


def _brief(exc: BaseException, limit: int = 500) -> str:
    """``Type: first line`` of another library's exception, for a kerasafe message that names
    the file and keeps the exception itself as ``__cause__``."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:limit] if lines else ''}"
