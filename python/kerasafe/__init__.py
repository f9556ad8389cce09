"""kerasafe: save and load Keras models with a Rust core.

``import kerasafe`` loads neither TensorFlow nor Keras; the functions that need Keras import it
when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import checkpoint, errors
from ._core import __version__
from .api import load_model, load_weights, save_model, save_weights
from .artifacts import Artifact, Report, list_versions, load_artifact, prune, save_artifact, verify_artifact
from .registry import custom_object_scope, get_registered_name, get_registered_object, register_serializable, scan
from .validation import Comparison, compare_outputs

if TYPE_CHECKING:
    from ._inspect import inspect


def __getattr__(name: str) -> object:
    # kerasafe.inspect is imported on first use: its module is the largest one that
    # `import kerasafe` would otherwise load for nothing (about 6 ms).
    if name == "inspect":
        from ._inspect import inspect

        return inspect
    raise AttributeError(f"module 'kerasafe' has no attribute {name!r}")


__all__ = [
    "__version__",
    "checkpoint",
    "errors",
    "save_model",
    "load_model",
    "save_weights",
    "load_weights",
    "save_artifact",
    "load_artifact",
    "verify_artifact",
    "list_versions",
    "prune",
    "compare_outputs",
    "inspect",
    "register_serializable",
    "custom_object_scope",
    "get_registered_object",
    "get_registered_name",
    "scan",
    "Artifact",
    "Report",
    "Comparison",
]
