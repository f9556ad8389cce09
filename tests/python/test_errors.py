"""The exception hierarchy is a contract: users catch the stdlib classes too."""

from __future__ import annotations

import pickle

import pytest

from kerasafe import errors


@pytest.mark.parametrize(
    ("cls", "stdlib"),
    [
        (errors.FormatError, ValueError),
        (errors.ChecksumError, ValueError),
        (errors.InvalidArgumentError, ValueError),
        (errors.NotFoundError, FileNotFoundError),
        (errors.ArtifactNotFoundError, FileNotFoundError),
        (errors.ArtifactExistsError, FileExistsError),
        (errors.StoragePermissionError, PermissionError),
        (errors.MissingCustomObjectError, KeyError),
        (errors.MissingCustomObjectError, TypeError),
        (errors.UnsafeArtifactError, ValueError),
        (errors.ValidationError, AssertionError),
    ],
)
def test_each_error_is_also_the_stdlib_error(cls, stdlib):
    assert issubclass(cls, errors.KerasafeError)
    assert issubclass(cls, stdlib)


@pytest.mark.parametrize("name", errors.__all__)
def test_errors_pickle_and_live_in_the_public_module(name):
    cls = getattr(errors, name)
    assert cls.__module__ == "kerasafe.errors"
    if issubclass(cls, BaseException):
        exc = cls("some/file: broken")
        again = pickle.loads(pickle.dumps(exc))
        assert type(again) is cls and str(again) == str(exc)


def test_missing_custom_object_message_is_not_quoted():
    assert str(errors.MissingCustomObjectError("Course>ScaledDense")) == "Course>ScaledDense"
