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
    """A variable's (or tensor's) value as numpy, without a copy where the backend allows it.

    On TensorFlow the array is a read-only view of the CPU tensor's buffer and keeps it alive;
    TF copies a variable's buffer on write while such a view exists, so assigning to the variable
    later (say, the next training step) never changes an array handed out here. Elsewhere (JAX,
    GPU tensors): a copy.
    """
    import sys

    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            tensor = tf.convert_to_tensor(variable)
            if tensor.device.endswith("CPU:0") or not tensor.device:
                return tensor._numpy()
        except Exception:  # not a TF value: the generic path below
            pass
    try:
        from keras.src import backend

        return np.asarray(backend.convert_to_numpy(variable))
    except ImportError:
        return np.asarray(variable)


def ensure_built(model: Any, weights: bool = True) -> None:
    """Weights exist only once a model is built; tell the user how, rather than saving nothing.
    ``weights=False``: built is enough (a model of weightless layers, for a SavedModel)."""
    if not getattr(model, "built", True) or (weights and not model.weights):
        from .errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"model {getattr(model, 'name', model)!r} has no weights yet: build it (call it once on "
            "sample input, or pass an Input shape) before saving or loading weights"
        )


# -- model facts for metadata and reference inputs ---------------------------------------------------


def backend_name(keras: Any) -> str:
    try:
        return str(keras.backend.backend())
    except Exception:
        return "tensorflow"


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    return name.replace("<dtype: '", "").replace("'>", "")


def _specs(tensors: Any) -> list[tuple[str, list[int | None], str]]:
    out = []
    for i, t in enumerate(tensors):
        name = getattr(t, "name", None) or f"input_{i}"
        shape = [None if d is None else int(d) for d in tuple(t.shape)]
        out.append((str(name).split(":")[0], shape, _dtype_name(t.dtype)))
    return out


def input_specs(model: Any) -> list[tuple[str, list[int | None], str]]:
    """``(name, shape, dtype)`` per model input, batch dimension ``None``."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        return _specs(inputs)
    try:
        shape = getattr(model, "input_shape", None)
    except (AttributeError, ValueError):
        shape = None
    if shape is None:
        recorded = _recorded_input_specs(model)
        if recorded:
            return recorded
        from .errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"model {getattr(model, 'name', model)!r} ({type(model).__name__}) has no known input signature: it has no "
            "Input layer and Keras recorded no call with one input structure (a flat tensor or list of tensors). "
            "Call it once on sample input (model(x)) or build it with model.build(input_shape) before saving"
        )
    shapes = shape if isinstance(shape, list) else [shape]
    return [(f"input_{i}", [None if d is None else int(d) for d in s], "float32") for i, s in enumerate(shapes)]


def _recorded_input_specs(model: Any) -> list[tuple[str, list[int | None], str]] | None:
    """A subclassed model's inputs from the shapes it was built and called with, as Keras's own
    ``model.export()`` derives them (Keras 3's ``export_utils.get_input_signature``; tf-keras's
    ``save_spec``). Only one positional input (a tensor, or a flat list of tensors) is
    representable; None otherwise."""
    signature = None
    try:
        from keras.src.export.export_utils import get_input_signature  # Keras 3

        if not is_graph_network(model) and type(model).__module__.split(".")[0] != "tf_keras":
            signature = get_input_signature(model)
    except (ImportError, TypeError, ValueError):
        signature = None
    if signature is None:
        try:  # tf-keras: (args, kwargs) of the first call, batch dimension None
            spec = model.save_spec(dynamic_batch=True)
            signature = list(spec[0]) if spec and not spec[1] else None
        except (AttributeError, TypeError, ValueError):
            signature = None
    if not signature or len(signature) != 1 or _required_call_arguments(model) > 1:
        return None
    first = signature[0]
    items = list(first) if isinstance(first, (list, tuple)) else [first]
    if not items or not all(hasattr(s, "shape") and hasattr(s, "dtype") and getattr(s, "shape", None) is not None for s in items):
        return None
    out = []
    for i, item in enumerate(items):
        shape = [None if d is None else int(d) for d in tuple(item.shape)]
        if shape:
            shape[0] = None  # the batch dimension
        out.append((f"input_{i}", shape, _dtype_name(item.dtype or "float32")))
    return out


def _required_call_arguments(model: Any) -> int:
    """How many arguments ``model.call`` requires (a call with more than the inputs has no
    single-input signature)."""
    import inspect

    try:
        parameters = inspect.signature(model.call).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return sum(1 for p in parameters if p.kind in kinds and p.default is inspect.Parameter.empty)


def output_specs(model: Any) -> list[tuple[str, list[int | None], str]]:
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    return _specs(outputs) if outputs else []


def smallest_vocabulary(model: Any) -> int | None:
    """The smallest ``input_dim`` of the model's Embedding layers (integer reference inputs stay inside it)."""
    dims = [int(layer.input_dim) for layer in every_layer(model, include_self=False) if type(layer).__name__ == "Embedding"]
    return min(dims) if dims else None


def every_layer(model: Any, *, include_self: bool) -> list[Any]:
    """Every layer inside ``model``, nested models and wrapped layers included (Keras's own
    ``_flatten_layers`` walk, both Kerases); none for an object that is not a Keras model (an
    ``InferenceModel`` over a SavedModel signature)."""
    flatten = getattr(model, "_flatten_layers", None)
    return list(flatten(include_self=include_self, recursive=True)) if callable(flatten) else []


def parameter_counts(model: Any) -> tuple[int, int]:
    count = lambda ws: int(sum(int(np.prod(tuple(w.shape))) for w in ws))  # noqa: E731
    return count(model.trainable_weights), count(model.non_trainable_weights)


def _describe(obj: Any) -> Any:
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_describe(o) for o in obj]
    if isinstance(obj, dict):
        return {str(k): _describe(v) for k, v in obj.items()}
    name = getattr(obj, "__name__", None)
    if name:
        return name
    return type(obj).__name__


def compile_summary(model: Any) -> dict[str, Any]:
    """Optimizer (class and learning rate), loss and metrics, from the compiled model."""
    out: dict[str, Any] = {}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        out["optimizer"] = type(optimizer).__name__
        try:
            out["learning_rate"] = float(np.asarray(optimizer.learning_rate))
        except Exception:
            pass
    loss = getattr(model, "loss", None)
    if loss is not None:
        out["loss"] = _describe(loss)
    try:
        config = model.get_compile_config() or {}
        metrics = config.get("metrics")
        if metrics is not None:
            out["metrics"] = _describe_config(metrics)
    except Exception:
        pass
    return out


def _describe_config(value: Any) -> Any:
    if isinstance(value, dict) and "class_name" in value:
        return value.get("config", {}).get("name") or value["class_name"]
    if isinstance(value, (list, tuple)):
        return [_describe_config(v) for v in value]
    return value


_LIBRARY_PACKAGES = ("keras", "tf_keras", "tensorflow")


def _is_library_module(module: str) -> bool:
    return module.split(".")[0] in _LIBRARY_PACKAGES


def _custom_classes(model: Any) -> dict[str, Any]:
    """Registered names of objects the model uses that are not part of Keras itself."""
    found: dict[str, Any] = {}

    def visit(obj: Any) -> None:
        if not _is_library_module(type(obj).__module__):
            found[registered_name(type(obj))] = type(obj)

    for layer in every_layer(model, include_self=False):
        visit(layer)
    loss = getattr(model, "loss", None)
    if loss is not None and not isinstance(loss, (str, list, dict, tuple)):
        if callable(loss) and not hasattr(loss, "get_config"):
            if not _is_library_module(getattr(loss, "__module__", "") or ""):
                found[registered_name(loss)] = loss
        else:
            visit(loss)
    return found


def registered_name(obj: Any) -> str:
    keras = keras_module()
    getter = getattr(getattr(keras, "saving", None), "get_registered_name", None) or keras.utils.get_registered_name
    return str(getter(obj))


def custom_object_names(model: Any) -> list[str]:
    return sorted(_custom_classes(model))


def custom_objects_of(model: Any) -> dict[str, Any]:
    """The model's own custom classes, keyed by registered and bare name (for reloading a copy)."""
    out: dict[str, Any] = {}
    for name, cls in _custom_classes(model).items():
        out[name] = cls
        out[name.split(">")[-1]] = cls
    return out


def clone_structure(model: Any) -> Any:
    """A fresh model with the same architecture (new weights), built, not compiled: what a
    weights-only reload is checked with. Built from the model's config with its own classes;
    Keras 3's ``clone_model`` (the fallback for a config that does not rebuild) would also
    compile the copy and build its optimizer's slots, which a check of outputs never uses and
    which take twice the weights' memory."""
    keras = keras_module()
    try:
        with keras.utils.custom_object_scope(custom_objects_of(model)):
            clone = type(model).from_config(model.get_config())
    except Exception:
        if not is_graph_network(model):
            raise
        return keras.models.clone_model(model)
    if getattr(clone, "built", False) and len(clone.weights) == len(model.weights):
        return clone
    specs = input_specs(model)
    dummy = [np.zeros([1 if d is None else d for d in s], dtype=dt) for _, s, dt in specs]
    clone(dummy[0] if len(dummy) == 1 else dummy, training=False)
    return clone
