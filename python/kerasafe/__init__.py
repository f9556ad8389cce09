"""kerasafe: save and load Keras models with a Rust core.

``import kerasafe`` loads neither TensorFlow nor Keras; the functions that need Keras import it
when called.
"""

from __future__ import annotations

from . import checkpoint, errors
from ._core import __version__
from .api import load_weights, save_weights

__all__ = [
    "__version__",
    "checkpoint",
    "errors",
    "save_weights",
    "load_weights",
]
