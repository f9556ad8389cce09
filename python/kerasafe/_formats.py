"""Where each artifact format keeps its model inside a version directory, and how to write and
read it there. Used by the artifact store; users call the functions in ``api``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import api, keras_bridge
from .errors import FormatError

MODEL_FILES = {"h5": "model.h5", "keras": "model.keras", "weights": "ckpt"}
WEIGHTS_CONFIG = "model_config.json"


def model_path(fmt: str, directory: Path) -> Path:
    """The SavedModel is the version directory itself (as the tutorial lays it out)."""
    return Path(directory) if fmt == "savedmodel" else Path(directory) / MODEL_FILES[fmt]


def save_into(model: Any, fmt: str, directory: Path) -> Path:
    path = model_path(fmt, directory)
    if fmt == "weights":
        api.save_weights(model, path)
        # The architecture rides along, so the weights can be loaded without the building code.
        (Path(directory) / WEIGHTS_CONFIG).write_text(model.to_json(), encoding="utf-8")
    else:
        api.save_model(model, path)
    return path


def load_from(
    fmt: str,
    directory: Path,
    *,
    custom_objects: Mapping[str, Any] | None = None,
    compile: bool = True,
    safe_mode: bool = True,
    model: Any = None,
    model_factory: Callable[[], Any] | None = None,
) -> Any:
    path = model_path(fmt, directory)
    if fmt != "weights":
        return api.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
    if model is None and model_factory is not None:
        model = model_factory()  # may run the model on sample input: its variables must hold values
    if model is not None:
        api.load_weights(model, path)
        return model
    from . import _keras_state

    # Built from the config, as load_model builds, and about to get every weight from the file:
    # its initializers need not run (a variable the file leaves alone still gets their value).
    with _keras_state.filled_from_file(), _keras_state.sequential_built_once():
        model = _model_from_config(directory, custom_objects)
        api.load_weights(model, path)
    return model


def _model_from_config(directory: Path, custom_objects: Mapping[str, Any] | None) -> Any:
    config_path = Path(directory) / WEIGHTS_CONFIG
    if not config_path.is_file():
        raise FormatError(f"{config_path}: missing; pass model= to load these weights into a model built from code")
    keras = keras_bridge.keras_module()
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FormatError(f"{config_path}: not valid JSON: {exc}") from None
    return keras.models.model_from_json(json.dumps(config), custom_objects=dict(custom_objects or {}))
