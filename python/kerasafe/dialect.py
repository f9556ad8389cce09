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
