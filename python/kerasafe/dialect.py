"""Fixes for stored Keras configs that the installed Keras cannot read as written.

One table per difference, each entry with a test (tests/python/test_dialect.py).
"""

from __future__ import annotations

import copy
from typing import Any

# Keras 3 writes ``loss="mse"`` into a legacy .h5 training_config as a reference to the function
# ``keras.metrics.mse``, which its own deserializer then cannot find ("Could not deserialize
# 'keras.metrics.mse'"). Short aliases map to the canonical names both Kerases accept.
LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "MSE": "mean_squared_error",
    "mae": "mean_absolute_error",
    "MAE": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "MAPE": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "MSLE": "mean_squared_logarithmic_error",
}


def _fix_function_ref(value: Any) -> Any:
    """``{"module": "keras.metrics", "class_name": "function", "config": "mse"}`` → ``"mean_squared_error"``."""
    if isinstance(value, dict) and value.get("class_name") == "function":
        name = value.get("config")
        if isinstance(name, str) and str(value.get("module", "")).startswith(("keras.metrics", "keras.losses", "keras.src.metrics", "keras.src.losses")):
            return LOSS_ALIASES.get(name, name)
    if isinstance(value, str):
        return LOSS_ALIASES.get(value, value)
    if isinstance(value, list):
        return [_fix_function_ref(v) for v in value]
    if isinstance(value, dict) and "class_name" not in value:
        return {k: _fix_function_ref(v) for k, v in value.items()}
    return value


def fix_training_config(training_config: dict[str, Any]) -> dict[str, Any]:
    """Loss and metric references in a legacy ``training_config`` made loadable by Keras 3."""
    fixed = copy.deepcopy(training_config)
    for key in ("loss", "metrics", "weighted_metrics"):
        if key in fixed and fixed[key] is not None:
            fixed[key] = _fix_function_ref(fixed[key])
    return fixed


# Keras 2 layer arguments Keras 3 rejects ("Unrecognized keyword arguments"), by class name.
# Each is dropped only where Keras 3 behaves as Keras 2 did with its default value.
KERAS2_ONLY_ARGS = {
    "LSTM": {"time_major": False},
    "GRU": {"time_major": False},
    "SimpleRNN": {"time_major": False},
    "Embedding": {"input_length": None},
}


def keras2_to_keras3(config: Any) -> Any:
    """A Keras 2 model config made buildable by Keras 3 (a Keras 3 config passes unchanged)."""
    return keras2_nested_node_indices(_drop_keras2_args(config))


def _drop_keras2_args(config: Any) -> Any:
    """Drop Keras-2-only layer arguments from a model config (recursively, nested models too).

    A value other than the harmless default is kept, so Keras 3 names the layer it cannot build.
    """
    if isinstance(config, list):
        return [_drop_keras2_args(c) for c in config]
    if not isinstance(config, dict):
        return config
    out = {k: _drop_keras2_args(v) for k, v in config.items()}
    drop = KERAS2_ONLY_ARGS.get(str(out.get("class_name", "")))
    inner = out.get("config")
    if drop and isinstance(inner, dict):
        for key, harmless in drop.items():
            if key in inner and (inner[key] == harmless or harmless is None):
                del inner[key]
    return out


_MODEL_CLASSES = ("Sequential", "Functional", "Model")


def _shift_ref(ref: Any, nested: set[str]) -> Any:
    if isinstance(ref, list) and len(ref) >= 3 and isinstance(ref[0], str) and isinstance(ref[1], int):
        if ref[0] in nested and ref[1] >= 1:
            return [ref[0], ref[1] - 1, *ref[2:]]
        return ref
    if isinstance(ref, list):
        return [_shift_ref(r, nested) for r in ref]
    return ref


def keras2_nested_node_indices(config: Any) -> Any:
    """Keras 2 gives a nested model one graph node of its own before it is first called, so
    outer layers reference it as node 1; Keras 3 counts from 0. Shift those references."""
    if isinstance(config, list):
        return [keras2_nested_node_indices(c) for c in config]
    if not isinstance(config, dict):
        return config
    out = {k: keras2_nested_node_indices(v) for k, v in config.items()}
    inner = out.get("config")
    if out.get("class_name") in ("Functional", "Model") and isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        nested = {
            layer.get("config", {}).get("name") or layer.get("name")
            for layer in inner["layers"]
            if isinstance(layer, dict) and layer.get("class_name") in _MODEL_CLASSES
        }
        nested.discard(None)
        if nested:
            for layer in inner["layers"]:
                if isinstance(layer, dict) and "inbound_nodes" in layer:
                    layer["inbound_nodes"] = _shift_ref(layer["inbound_nodes"], nested)  # type: ignore[arg-type]
            for key in ("input_layers", "output_layers"):
                if key in inner:
                    inner[key] = _shift_ref(inner[key], nested)  # type: ignore[arg-type]
    return out
