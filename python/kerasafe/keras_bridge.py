"""The only module that touches Keras objects: it walks a live model into names and arrays and
puts arrays back. Keras is imported lazily, so ``import kerasafe`` never loads it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np


def keras_module() -> Any:
    """The Keras users run: tf-keras when ``TF_USE_LEGACY_KERAS=1``, else Keras 3."""
    if os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes"):
        import tf_keras

        return tf_keras
    import keras

    return keras


def is_graph_network(obj: Any) -> bool:
    """Sequential and Functional models track layers as ``layer_with_weights-N``."""
    return any(c.__name__ in ("Functional", "Sequential") for c in type(obj).__mro__)


def _is_layer(obj: Any) -> bool:
    return any(c.__name__ == "Layer" for c in type(obj).__mro__) and hasattr(obj, "weights")


def short_name(variable: Any) -> str:
    """``kernel`` for Keras 3's ``kernel`` and tf-keras's ``dense/kernel:0``."""
    return str(variable.name).split("/")[-1].split(":")[0]


def _own_variables(layer: Any) -> list[Any]:
    for attrs in (("_trainable_variables", "_non_trainable_variables"), ("_trainable_weights", "_non_trainable_weights")):
        if all(hasattr(layer, a) for a in attrs):
            return [v for a in attrs for v in getattr(layer, a)]
    return []


def _sublayers(layer: Any) -> Iterator[tuple[str, Any]]:
    """Public attributes holding weighted layers (or lists of them), in assignment order; these
    are the edge names TF's object graph gives them."""
    seen: set[int] = set()
    for attr, value in vars(layer).items():
        if attr.startswith("_"):
            continue
        items = [(attr, value)] if _is_layer(value) else []
        if isinstance(value, (list, tuple)) and value and all(_is_layer(v) for v in value):
            items = [(f"{attr}/{i}", v) for i, v in enumerate(value)]
        for name, sub in items:
            if id(sub) not in seen and sub.weights:
                seen.add(id(sub))
                yield name, sub


def _escape(edge: str) -> str:
    return edge.replace(".", "..").replace("/", ".S")


def _walk(obj: Any, path: list[str], out: list[tuple[str, Any]]) -> None:
    if is_graph_network(obj):
        weighted = [layer for layer in obj.layers if layer.weights]
        for k, layer in enumerate(weighted):
            _walk(layer, [*path, f"layer_with_weights-{k}"], out)
        return
    for variable in _own_variables(obj):
        out.append(("/".join([*path, _escape(short_name(variable))]), variable))
    for edge, sub in _sublayers(obj):
        _walk(sub, [*path, *(_escape(e) for e in edge.split("/"))], out)


def tf_checkpoint_variables(model: Any) -> list[tuple[str, Any]]:
    """``(checkpoint_key, variable)`` for every model weight, keyed as tf-keras's
    ``model.save_weights(prefix)`` keys them (spec §1.8.3)."""
    out: list[tuple[str, Any]] = []
    _walk(model, [], out)
    return [(f"{path}/.ATTRIBUTES/VARIABLE_VALUE", v) for path, v in out]


def variable_path(variable: Any) -> str:
    """A readable variable name for messages and object-graph ``full_name``s."""
    return str(getattr(variable, "path", None) or variable.name).split(":")[0]


def to_numpy(variable: Any) -> np.ndarray:
    """A variable's value as numpy (a view where the backend allows it)."""
    return np.asarray(variable)


def ensure_built(model: Any) -> None:
    """Weights exist only once a model is built; tell the user how, rather than saving nothing."""
    if not getattr(model, "built", True) or not model.weights:
        raise ValueError(
            f"model {getattr(model, 'name', model)!r} has no weights yet: build it (call it once on "
            "sample input, or pass an Input shape) before saving or loading weights"
        )
