"""The drop-in functions users call instead of ``model.save`` / ``load_model`` / ``save_weights``."""

from __future__ import annotations

import os
from typing import Any, Union

from . import _weights

PathLike = Union[str, "os.PathLike[str]"]

_H5_SUFFIXES = (".h5", ".hdf5")


def _is_h5(path: str) -> bool:
    return path.lower().endswith(_H5_SUFFIXES)


def save_weights(model: Any, filepath: PathLike) -> None:
    """Save a model's weights.

    ``*.weights.h5`` / ``*.h5`` write HDF5; any other path is a TF checkpoint prefix
    (``PREFIX.index`` + ``PREFIX.data-00000-of-00001``) keyed exactly as tf-keras keys
    ``model.save_weights(prefix)``, so either Keras can load it.
    """
    path = os.fspath(filepath)
    if _is_h5(path):
        from . import _h5

        _h5.save_weights(model, path)
        return
    _weights.save_tf_checkpoint(model, path)


def load_weights(model: Any, filepath: PathLike) -> None:
    """Load weights saved by :func:`save_weights`, tf-keras or Keras into a built ``model``.

    Every value is read and checked against the model (names and shapes) before the first
    variable is assigned: on error the model is left untouched.
    """
    path = os.fspath(filepath)
    if _is_h5(path):
        from . import _h5

        _h5.load_weights(model, path)
        return
    _weights.load_tf_checkpoint(model, path)
