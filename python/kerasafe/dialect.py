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


def _fix_function_ref(value: Any, aliases: dict[str, str]) -> Any:
    """``{"module": "keras.metrics", "class_name": "function", "config": "mse"}`` → ``"mean_squared_error"``
    (``"mse"`` where ``aliases`` is empty)."""
    if isinstance(value, dict) and value.get("class_name") == "function":
        name = value.get("config")
        if isinstance(name, str) and str(value.get("module", "")).startswith(("keras.metrics", "keras.losses", "keras.src.metrics", "keras.src.losses")):
            return aliases.get(name, name)
    if isinstance(value, str):
        return aliases.get(value, value)
    wrapped = _keras2_function_metric(value)
    if wrapped is not None:
        return wrapped
    if isinstance(value, list):
        return [_fix_function_ref(v, aliases) for v in value]
    if isinstance(value, dict) and "class_name" not in value:
        return {k: _fix_function_ref(v, aliases) for k, v in value.items()}
    return value


def _bottom_up(value: Any, fix: Any) -> Any:
    """A copy of ``value`` (JSON-like) with each dict in it, innermost first, passed to ``fix``,
    which changes it in place."""
    if isinstance(value, list):
        return [_bottom_up(v, fix) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _bottom_up(v, fix) for k, v in value.items()}
    fix(out)
    return out


def _keras2_function_metric(value: Any) -> str | None:
    """tf-keras stores ``metrics=["mae"]`` as ``MeanMetricWrapper`` with ``fn: "mean_absolute_error"``,
    which Keras 3 rebuilds with a string for a function ("'str' object is not callable" on the
    first step): the metric's name (``"mae"``, ``"accuracy"``) when it names the same function or
    one compile resolves, else ``fn``."""
    if not isinstance(value, dict) or value.get("class_name") != "MeanMetricWrapper" or not isinstance(value.get("config"), dict):
        return None
    name, fn = value["config"].get("name"), value["config"].get("fn")
    if not isinstance(fn, str):
        return None
    same = (fn, *(a for a, f in LOSS_ALIASES.items() if f == fn), *KERAS_RESOLVED_METRIC_NAMES)
    return name if isinstance(name, str) and name in same else fn


# Metric names both Kerases' compile resolve from the loss and output shape ("accuracy" becomes
# categorical_accuracy, binary_accuracy, …) and name the logs after.
KERAS_RESOLVED_METRIC_NAMES = ("accuracy", "acc", "crossentropy", "ce")


# tf-keras (2.11+ optimizers) names its built-in optimizers in a legacy training_config as
# registered custom objects (``"Custom>SGD"``); Keras 3 finds no such class and compiles a default
# ``SGD`` instead (no momentum, default learning rate). Prefix -> stripped where the rest is an
# optimizer both Kerases have.
KERAS2_OPTIMIZER_CLASS_PREFIX = "Custom>"


def _fix_optimizer_config(config: Any) -> Any:
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        return config
    cls = config["class_name"]
    if cls.startswith(KERAS2_OPTIMIZER_CLASS_PREFIX) and cls[len(KERAS2_OPTIMIZER_CLASS_PREFIX):] in KERAS3_OPTIMIZERS:
        cls = config["class_name"] = cls[len(KERAS2_OPTIMIZER_CLASS_PREFIX):]
    if cls in KERAS3_OPTIMIZERS and isinstance(config.get("config"), dict):
        _fix_args(cls, config["config"])
    return config


def fix_training_config(training_config: dict[str, Any]) -> dict[str, Any]:
    """Loss, metric and optimizer references in a legacy ``training_config`` made loadable by
    Keras 3. Metric names stay as the user spelled them (``"mae"``): they name the logs."""
    fixed = copy.deepcopy(training_config)
    for key in ("loss", "metrics", "weighted_metrics"):
        if key in fixed and fixed[key] is not None:
            fixed[key] = _fix_function_ref(fixed[key], LOSS_ALIASES if key == "loss" else {})
    if "optimizer_config" in fixed:
        fixed["optimizer_config"] = _fix_optimizer_config(fixed["optimizer_config"])
    return fixed


def metric_names_kept(compile_args: dict[str, Any], training_config: dict[str, Any]) -> dict[str, Any]:
    """``compile_args_from_training_config``'s arguments with every metric the training config
    names by a string (``"mae"``, ``"accuracy"``) handed to ``compile`` as that string.

    Both Kerases' legacy loaders deserialize such strings into metric objects named after the
    class (``"mae"`` comes back as ``mean_absolute_error``), which renames the logs (``val_mae``)
    that callbacks monitor; ``compile`` given the string names the metric as the user did, as
    ``.keras`` and SavedModel loads do. The file itself is left as Keras wrote it."""
    out = dict(compile_args)
    for key in ("metrics", "weighted_metrics"):
        if out.get(key) is not None and training_config.get(key) is not None:
            out[key] = _strings_kept(training_config[key], out[key])
    return out


def _strings_kept(stored: Any, built: Any) -> Any:
    if isinstance(stored, str):
        return stored
    if isinstance(stored, (list, tuple)) and isinstance(built, (list, tuple)) and len(stored) == len(built):
        return [_strings_kept(s, b) for s, b in zip(stored, built)]
    if isinstance(stored, dict) and "class_name" not in stored and isinstance(built, dict):
        return {k: _strings_kept(stored[k], v) if k in stored else v for k, v in built.items()}
    return built


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
    return keras2_nested_node_indices(_bottom_up(config, _fix_keras2_layer))


# Layers whose config holds other layers' configs, and the arguments holding them. Keras 3 builds
# these through its module-based deserializer even in a legacy (``.h5``, keras_metadata.pb) load,
# so a Keras 2 ``{"class_name": "LSTM", "config": ...}`` there needs the module Keras 3 names its
# built-in layers under ("Could not locate class 'LSTM'"); custom layers are still found by class
# name first.
KERAS2_WRAPPED_LAYER_ARGS = {
    "Bidirectional": ("layer", "backward_layer"),
    "TimeDistributed": ("layer",),
    "RNN": ("cell",),
    "StackedRNNCells": ("cells",),
}
KERAS3_LAYERS_MODULE = "keras.layers"


def _fix_keras2_layer(obj: dict[str, Any]) -> None:
    """Drop Keras-2-only layer arguments (:data:`KERAS2_ONLY_ARGS`) and name the module of wrapped
    layers (:data:`KERAS2_WRAPPED_LAYER_ARGS`) in one (layer) config.

    A value other than the harmless default is kept, so Keras 3 names the layer it cannot build.
    """
    cls = str(obj.get("class_name", ""))
    inner = obj.get("config")
    if not isinstance(inner, dict):
        return
    for key, harmless in KERAS2_ONLY_ARGS.get(cls, {}).items():
        if key in inner and (inner[key] == harmless or harmless is None):
            del inner[key]
    for arg in KERAS2_WRAPPED_LAYER_ARGS.get(cls, ()):
        value = inner.get(arg)
        for layer in value if isinstance(value, list) else [value]:
            if isinstance(layer, dict) and "class_name" in layer and "module" not in layer:
                layer["module"] = KERAS3_LAYERS_MODULE


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


# -- Keras 2 ``.keras`` archives (Keras 2.13 – 2.15, tf-keras) read by Keras 3 ----------------------
# Their config.json uses Keras 3's object layout (module/class_name/config/registered_name) but
# Keras 2's modules and arguments. Each table is one difference; tests/python/test_dialect.py
# has a test per table.

# Class -> the module Keras 3 serializes it under (Keras 2 names modules that do not exist in Keras 3).
KERAS3_MODULE_BY_CLASS = {
    "Functional": "keras.src.models.functional",
    "Sequential": "keras",
    "Model": "keras.src.models.model",
}

# Module prefixes of Keras 2 packages -> Keras 3's.
KERAS2_MODULE_PREFIXES = {
    "tf_keras.src.": "keras.src.",
    "tf_keras": "keras",
    "keras.src.engine.": "keras.src.models.",
}

# Keras 2 arguments Keras 3 rejects, dropped where the value is Keras 3's behaviour anyway
# (None: whatever the value). Keyed by class name.
KERAS2_ARCHIVE_ONLY_ARGS: dict[str, dict[str, Any]] = {
    "InputLayer": {"ragged": False},
    # Keras 2 optimizers (2.11+): flags with no Keras 3 counterpart.
    "*optimizer*": {"is_legacy_optimizer": None, "jit_compile": None},
}

# Keras 2 argument names Keras 3 spells differently.
KERAS2_RENAMED_ARGS = {
    "InputLayer": {"batch_input_shape": "batch_shape"},
}

KERAS3_OPTIMIZERS = frozenset(
    {"Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "Ftrl", "Lion", "LossScaleOptimizer", "Nadam", "RMSprop", "SGD"}
)


def _keras3_module(obj: dict[str, Any]) -> Any:
    module = obj.get("module")
    cls = obj.get("class_name")
    if cls in KERAS3_MODULE_BY_CLASS and isinstance(module, str) and not module.startswith("keras.src.models"):
        if module.startswith(("keras", "tf_keras")):
            return KERAS3_MODULE_BY_CLASS[cls]
    if isinstance(module, str):
        for old, new in KERAS2_MODULE_PREFIXES.items():
            if module.startswith(old):
                return new + module[len(old):]
    return module


# Keras 2 let any layer carry its model's input shape; Keras 3 accepts it only on InputLayer (the
# archive's build_config and InputLayer carry the shape anyway).
KERAS2_LAYER_INPUT_ARGS = ("batch_input_shape", "input_length")

# Arguments Keras 2 wrote as one-element lists where Keras 3 wants the element.
KERAS2_LIST_ARGS = {
    "BatchNormalization": ("axis",),
    "LayerNormalization": (),  # Keras 3 accepts a list axis here
}


def _fix_args(cls: str, inner: dict[str, Any]) -> None:
    if cls != "InputLayer" and "name" in inner and "trainable" in inner:  # a layer config
        for arg in KERAS2_LAYER_INPUT_ARGS:
            inner.pop(arg, None)
    for arg in KERAS2_LIST_ARGS.get(cls, ()):
        value = inner.get(arg)
        if isinstance(value, list) and len(value) == 1:
            inner[arg] = value[0]
    table_keys = [cls]
    if cls in KERAS3_OPTIMIZERS:
        table_keys.append("*optimizer*")
    for key in table_keys:
        for arg, harmless in KERAS2_ARCHIVE_ONLY_ARGS.get(key, {}).items():
            if arg in inner and (harmless is None or inner[arg] == harmless):
                del inner[arg]
    for old, new in KERAS2_RENAMED_ARGS.get(cls, {}).items():
        if old in inner and new not in inner:
            inner[new] = inner.pop(old)


# ``compile()`` arguments a Keras 2 archive's compile_config holds as None ("whatever compile
# defaults to") where Keras 3's compile takes None literally (``steps_per_execution=None``: "'NoneType'
# object cannot be interpreted as an integer" on the first step): dropped, so Keras 3's defaults apply.
KERAS2_COMPILE_NONE_ARGS = ("steps_per_execution", "jit_compile", "run_eagerly")


def keras2_archive_to_keras3(config: Any) -> Any:
    """A Keras 2 ``.keras`` config.json (or any part of it) made loadable by Keras 3."""
    if isinstance(config, list):
        return [keras2_archive_to_keras3(c) for c in config]
    if not isinstance(config, dict):
        return config
    out = {k: keras2_archive_to_keras3(v) for k, v in config.items()}
    compile_config = out.get("compile_config")
    if isinstance(compile_config, dict):
        for arg in KERAS2_COMPILE_NONE_ARGS:
            if arg in compile_config and compile_config[arg] is None:
                del compile_config[arg]
    cls = out.get("class_name")
    if isinstance(cls, str) and "config" in out:
        if "module" in out:
            out["module"] = _keras3_module(out)
        if isinstance(out["config"], dict):
            _fix_args(cls, out["config"])
    return keras2_to_keras3(out) if cls in _MODEL_CLASSES else out


def is_keras2_version(version: Any) -> bool:
    """``keras_version`` strings written by Keras 2 / tf-keras ("2.15.0", "2.21.0")."""
    return isinstance(version, str) and version.split(".")[0] in ("1", "2")


# -- Keras 2.12 / 2.13 weights files (``.weights.h5``, ``model.weights.h5`` in ``.keras``) --------------
# Keras 2.12 and 2.13 kept layer states under ``_layer_checkpoint_dependencies`` (Keras 2.14+ and Keras 3:
# ``layers``) and numbered same-class groups with gaps (``dense``, ``dense_2``, ``dense_4``) where
# later releases count ``dense``, ``dense_1``, ``dense_2`` in the same order.
KERAS212_GROUP_RENAMES = {"_layer_checkpoint_dependencies": "layers"}


def _suffix_key(name: str) -> tuple[str, int]:
    base, _, number = name.rpartition("_")
    if base and number.isdigit():
        return base, int(number)
    return name, 0


def keras212_layer_group_names(names: list[str]) -> dict[str, str]:
    """``{stored name: Keras 3 name}`` for the children of a Keras 2.12 layer group."""
    by_base: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        base, number = _suffix_key(name)
        by_base.setdefault(base, []).append((number, name))
    out = {}
    for base, members in by_base.items():
        for i, (_, name) in enumerate(sorted(members)):
            out[name] = base if i == 0 else f"{base}_{i}"
    return out


# -- optimizer state in legacy .h5 ------------------------------------------------------------------
# Keras 2 optimizers (2.11+, tf-keras) store ``iteration`` then the slots interleaved per variable
# (``m``, ``v`` for Adam); Keras 3 has the same order with ``learning_rate`` as a variable after
# ``iterations``. The learning rate is not in a Keras 2 file (it is in the optimizer config).
KERAS2_OPTIMIZER_MISSING = {"learning_rate": 1}  # Keras 3 variable -> its index


def keras2_optimizer_values(names: list[str], values: list[Any], variable_paths: list[str], variables: list[Any]) -> list[Any]:
    """Keras 2 optimizer values lined up with a Keras 3 optimizer's variables (others unchanged)."""
    if len(values) + len(KERAS2_OPTIMIZER_MISSING) != len(variables) or not names or not names[0].startswith("iteration"):
        return values
    out = list(values)
    for name, index in KERAS2_OPTIMIZER_MISSING.items():
        if index >= len(variable_paths) or not variable_paths[index].endswith(name):
            return values
        if any(name in n for n in names):
            return values
        out.insert(index, variables[index].numpy() if hasattr(variables[index], "numpy") else variables[index])
    return out


# -- Keras 3 configs that tf-keras cannot build ---------------------------------------------------
# (argument, test) pairs; the first layer with one is named in the refusal.
KERAS3_ONLY_LAYER_ARGS = {
    "batch_shape": lambda v: True,
    "dtype": lambda v: isinstance(v, dict) and v.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"),
}


def first_keras3_only_layer(config: Any) -> tuple[str, str, str] | None:
    """``(layer name, class, argument)`` of the first layer whose config only Keras 3 has."""
    if isinstance(config, list):
        for c in config:
            found = first_keras3_only_layer(c)
            if found:
                return found
        return None
    if not isinstance(config, dict):
        return None
    inner = config.get("config")
    if isinstance(inner, dict) and "class_name" in config:
        for arg, test in KERAS3_ONLY_LAYER_ARGS.items():
            if arg in inner and test(inner[arg]):
                return str(inner.get("name", "?")), str(config["class_name"]), arg
    for value in config.values():
        found = first_keras3_only_layer(value)
        if found:
            return found
    return None


# -- Keras 3 weights read by tf-keras -----------------------------------------------------------------
# Keras 3 (and Keras 2.12) key a subclassed model's layers in ``.weights.h5`` by attribute name
# (``hidden/vars``); tf-keras 2.13+ lists them under ``layers/<snake_case class>[_N]`` in
# ``model.layers`` order.
def snake_case(name: str) -> str:
    import re

    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()  # tf-keras's generic_utils.to_snake_case
    return name if not name.startswith("_") else "private" + name


def keras2_layer_group_names(class_names: list[str]) -> list[str]:
    """tf-keras's group names for a list of layers: ``dense``, ``dense_1``, ``conv2d``, …"""
    used: dict[str, int] = {}
    out = []
    for cls in class_names:
        base = snake_case(cls)
        n = used.get(base, 0)
        used[base] = n + 1
        out.append(base if n == 0 else f"{base}_{n}")
    return out


# Keras 3 layers keep some variables under a private attribute (quantization support), so a
# ``tf.train.Checkpoint`` of a Keras 3 model has ``hidden/_kernel`` where tf-keras has ``hidden/kernel``.
KERAS3_VARIABLE_EDGES = {"kernel": "_kernel", "embeddings": "_embeddings"}


def keras3_checkpoint_key(key: str) -> str:
    """A tf-keras checkpoint key spelled the Keras 3 way (``.../kernel/.ATTRIBUTES/...`` → ``.../_kernel/...``)."""
    head, sep, tail = key.partition("/.ATTRIBUTES/")
    parts = head.split("/")
    if parts and parts[-1] in KERAS3_VARIABLE_EDGES:
        parts[-1] = KERAS3_VARIABLE_EDGES[parts[-1]]
    return "/".join(parts) + sep + tail


# -- Keras 3 configs read by tf-keras (the other direction) -----------------------------------------
# Keras 3 argument names tf-keras spells differently.
KERAS3_RENAMED_ARGS = {"InputLayer": {"batch_shape": "batch_input_shape"}}

# Keras 3 arguments tf-keras rejects, dropped where the value is tf-keras's behaviour anyway
# (None: whatever the value). "*": every layer.
KERAS3_ONLY_ARGS: dict[str, dict[str, Any]] = {
    "*": {"quantization_config": None, "lora_rank": None, "lora_alpha": None},
    "InputLayer": {"optional": False},
    "LSTM": {"seed": None, "use_cudnn": "auto"},
    "GRU": {"seed": None, "use_cudnn": "auto"},
    "SimpleRNN": {"seed": None},
    "BatchNormalization": {"synchronized": False},
}
_DROP_IF_NONE = frozenset({"quantization_config", "lora_rank", "lora_alpha", "seed"})

# Keras 3 optimizer arguments tf-keras rejects (its legacy optimizers, used for .h5, accept even
# fewer), dropped where the value is the default.
KERAS3_OPTIMIZER_ONLY_ARGS = {
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
    "weight_decay": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
}

# Keras 3 class names tf-keras knows under another name.
KERAS3_CLASS_RENAMES = {"OrthogonalInitializer": "Orthogonal"}

# Initializer arguments only Keras 3 has (fan axes of variance-scaling initializers).
KERAS3_INITIALIZER_ONLY_ARGS = {"input_axes": None, "output_axes": None}

# Classes tf-keras deserializes from another module than Keras 3 names.
KERAS2_MODULE_BY_CLASS = {"Functional": "tf_keras.src.engine.functional", "Sequential": "keras"}


def _policy_to_keras2(value: Any) -> Any:
    """``{"class_name": "DTypePolicy", "config": {"name": "float32"}}`` → ``"float32"`` (or a tf-keras Policy)."""
    if isinstance(value, dict) and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        name = (value.get("config") or {}).get("name", "float32")
        if name in ("float16", "float32", "float64", "bfloat16", "int32", "int64"):
            return name
        return {"module": "keras.mixed_precision", "class_name": "Policy", "config": {"name": name}, "registered_name": None}
    return value


def _history(tensor: Any) -> Any:
    if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__":
        layer, node, index = tensor["config"]["keras_history"]
        return [layer, node, index, {}]
    if isinstance(tensor, list):
        return [_history(t) for t in tensor]
    return tensor


def _nodes_to_keras2(nodes: Any) -> Any:
    """Keras 3 ``{"args": [tensors], "kwargs": {...}}`` nodes → Keras 2 ``[[layer, node, index, kwargs], ...]``."""
    if not isinstance(nodes, list):
        return nodes
    out = []
    for node in nodes:
        if not isinstance(node, dict) or "args" not in node:
            out.append(node)
            continue
        args = node.get("args") or []
        first = args[0] if args else []
        entries = _history(first) if isinstance(first, list) else [_history(first)]
        kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None and k != "training"}
        if entries and kwargs:
            entries[0][3] = kwargs
        out.append(entries)
    return out


def _io_list(value: Any) -> Any:
    """Keras 3 writes one input/output as a bare triple; Keras 2 always as a list of triples."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    return value


def keras3_to_keras2(config: Any) -> Any:
    """A Keras 3 model config (``.keras`` config.json or legacy ``.h5`` model_config) made
    buildable by tf-keras, table by table."""
    if isinstance(config, list):
        return [keras3_to_keras2(c) for c in config]
    if not isinstance(config, dict):
        return config
    out = {k: keras3_to_keras2(v) for k, v in config.items() if k != "shared_object_id"}
    cls = out.get("class_name")
    inner = out.get("config")
    if isinstance(cls, str) and cls in KERAS3_CLASS_RENAMES:
        cls = out["class_name"] = KERAS3_CLASS_RENAMES[cls]
    if isinstance(cls, str) and isinstance(inner, dict) and cls in KERAS3_OPTIMIZERS:
        for arg, harmless in KERAS3_OPTIMIZER_ONLY_ARGS.items():
            if arg in inner and inner[arg] == harmless:
                del inner[arg]
    if isinstance(cls, str) and isinstance(inner, dict):
        if cls in KERAS2_MODULE_BY_CLASS and "module" in out:
            out["module"] = KERAS2_MODULE_BY_CLASS[cls]
        if "dtype" in inner:
            inner["dtype"] = _policy_to_keras2(inner["dtype"])
        for old, new in KERAS3_RENAMED_ARGS.get(cls, {}).items():
            if old in inner and new not in inner:
                inner[new] = inner.pop(old)
        for key in ("*", cls):
            for arg, harmless in KERAS3_ONLY_ARGS.get(key, {}).items():
                if arg in inner and (inner[arg] == harmless or (arg in _DROP_IF_NONE and inner[arg] is None)):
                    del inner[arg]
        if str(out.get("module", "")).startswith("keras.initializers"):
            for arg, harmless in KERAS3_INITIALIZER_ONLY_ARGS.items():
                if arg in inner and inner[arg] == harmless:
                    del inner[arg]
        if cls in ("Functional", "Model") and isinstance(inner.get("layers"), list):
            for key in ("input_layers", "output_layers"):
                if key in inner:
                    inner[key] = _io_list(inner[key])
    if "inbound_nodes" in out:
        out["inbound_nodes"] = _nodes_to_keras2(out["inbound_nodes"])
    return out


# -- optimizer state read by tf-keras ----------------------------------------------------------------
# Stored (Keras 3, Keras 2.11+ optimizers): ``iteration`` [``learning_rate`` in Keras 3], then the
# slots interleaved per variable (m0, v0, m1, v1, …). tf-keras compiles a legacy .h5 with a legacy
# optimizer: ``iterations`` then the slots grouped by kind (m0, m1, …, v0, v1, …).
def optimizer_values_for_tf_keras(names: list[str], values: list[Any], n_trainable: int, n_variables: int, grouped: bool) -> list[Any]:
    """Stored optimizer values in the order of a tf-keras optimizer's variables (unchanged if the
    layout is not recognised; the caller then checks counts and shapes)."""
    if not names or not n_trainable or "iteration" not in names[0]:
        return values
    header = 2 if len(names) > 1 and names[1].split("/")[-1].split(":")[0] == "learning_rate" else 1
    body = values[header:]
    if len(body) % n_trainable or len(body) + 1 != n_variables:
        return values
    slots = len(body) // n_trainable
    if not grouped:
        return [values[0], *body]
    return [values[0], *(body[i * slots + s] for s in range(slots) for i in range(n_trainable))]
