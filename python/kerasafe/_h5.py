"""HDF5 models and weights: the legacy ``.h5`` full model, legacy weights ``.h5`` and Keras 3
``.weights.h5``. Keras decides names and values; the Rust core reads and writes the file."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from . import _core, _h5tree, _keras_state, _tf_keras, keras_bridge
from ._remote import name_of
from ._h5tree import Dataset, Group
from .errors import FormatError


def _legacy() -> Any:
    from keras.src.legacy.saving import legacy_h5_format

    return legacy_h5_format


# -- attributes ------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.reshape(-1)[0])
    return str(value)


def attr_list(group: Group, name: str) -> list[str]:
    """A string list attribute, reassembling Keras's ``name0``, ``name1``, … chunks."""
    if name in group.attrs:
        value = group.attrs[name]
        return [_text(v) for v in np.asarray(value, dtype=object).reshape(-1)] if np.size(value) else []
    out: list[str] = []
    i = 0
    while f"{name}{i}" in group.attrs:
        out += [_text(v) for v in np.asarray(group.attrs[f"{name}{i}"], dtype=object).reshape(-1)]
        i += 1
    return out


def _json_attr(root: Group, name: str, source: str) -> Any:
    raw = root.attrs.get(name)
    if raw is None:
        return None
    try:
        return json.loads(_text(raw))
    except ValueError as exc:
        raise FormatError(f"{source}: attribute {name!r} is not valid JSON: {exc}") from None


# -- legacy layer-ordered weights -------------------------------------------------------------------


def _legacy_weights(layer: Any) -> list[Any]:
    if _tf_keras.active():
        return _tf_keras.legacy_weights(layer)
    return list(_legacy()._legacy_weights(layer))


def _weighted_layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if _legacy_weights(layer)]


def _top_level_weights(model: Any) -> list[Any]:
    if _tf_keras.active():
        return list(getattr(model, "_trainable_weights", [])) + list(getattr(model, "_non_trainable_weights", []))
    return [v for v in model._trainable_variables + model._non_trainable_variables if any(v is w for w in model.weights)]


def _group_values(group: Group, source: str, where: str) -> list[tuple[str, Dataset]]:
    """The datasets ``weight_names`` lists, in order: their shapes are checked before any value
    is read, and each value is read when it is assigned (:func:`_h5tree.value_of`)."""
    out = []
    for name in attr_list(group, "weight_names"):
        node = group.get(name)
        if not isinstance(node, Dataset):
            raise FormatError(f"{source}: {where} lists weight {name!r} but the file has no such dataset")
        out.append((name, node))
    return out


def load_layer_weights(group: Group, model: Any, source: str) -> None:
    """Topological (order-based) loading, as Keras does for legacy files; every value is checked
    against the model before the first assignment, and errors name the layer and weight."""
    layers = _weighted_layers(model)
    saved = []
    for name in attr_list(group, "layer_names"):
        sub = group.get(name)
        if not isinstance(sub, Group):
            raise FormatError(f"{source}: layer_names lists {name!r} but the file has no such group")
        values = _group_values(sub, source, f"layer {name!r}")
        if values:
            saved.append((name, values))
    if len(saved) != len(layers):
        raise FormatError(
            f"{source}: the file has weights for {len(saved)} layers ({', '.join(n for n, _ in saved)}), "
            f"the model has {len(layers)} layers with weights ({', '.join(layer.name for layer in layers)})"
        )
    plan: list[tuple[Any, Dataset]] = []
    for (saved_name, values), layer in zip(saved, layers):
        variables = _legacy_weights(layer)
        if len(values) != len(variables):
            raise FormatError(f"{source}: layer {layer.name!r} (saved as {saved_name!r}) has {len(variables)} weights, the file has {len(values)}")
        for variable, (weight_name, value) in zip(variables, values):
            _check_shape(variable, value, source, f"layer {layer.name!r} weight {weight_name!r}")
            plan.append((variable, value))
    top = group.get("top_level_model_weights")
    if isinstance(top, Group):
        values = _group_values(top, source, "top_level_model_weights")
        variables = _top_level_weights(model)
        if values and len(values) != len(variables):
            raise FormatError(f"{source}: top-level weights: the model has {len(variables)}, the file has {len(values)}")
        for variable, (weight_name, value) in zip(variables, values):
            _check_shape(variable, value, source, f"top-level weight {weight_name!r}")
            plan.append((variable, value))
    for variable, value in plan:
        variable.assign(_h5tree.value_of(value))


def _check_shape(variable: Any, value: np.ndarray | Dataset, source: str, what: str) -> None:
    want = tuple(int(d) for d in variable.shape)
    if tuple(value.shape) != want:
        raise FormatError(f"{source}: {what} has shape {tuple(value.shape)} in the file, the model expects {want}")


def capture_layer_weights(model: Any, group: Group) -> None:
    """Keras 3's ``save_weights_to_hdf5_group``, the same layout, with zero-copy views of the
    variables (``keras_bridge.to_numpy``) where Keras makes a numpy copy of each."""
    from keras.src import __version__ as keras_version
    from keras.src import backend

    legacy = _legacy()
    legacy.save_attributes_to_hdf5_group(group, "layer_names", [layer.name.encode("utf8") for layer in model.layers])
    group.attrs["backend"] = backend.backend().encode("utf8")
    group.attrs["keras_version"] = str(keras_version).encode("utf8")
    # Sorted by name, as Keras does, so that group names grow strictly.
    for layer in sorted(model.layers, key=lambda x: x.name):
        _capture_subset(group.create_group(layer.name), _legacy_weights(layer))
    _capture_subset(group.create_group("top_level_model_weights"), _top_level_weights(model))


def _capture_subset(group: Group, weights: list[Any]) -> None:
    names = [str(w.path).encode("utf8") for w in weights]
    _legacy().save_attributes_to_hdf5_group(group, "weight_names", names)
    for name, weight in zip(names, weights):
        group.create_dataset(name, data=keras_bridge.to_numpy(weight))


def capture_optimizer_weights(root: Group, optimizer: Any) -> None:
    """Keras 3's ``save_optimizer_weights_to_hdf5_group`` with zero-copy views, as above."""
    from keras.src import optimizers

    weights = list(optimizer.variables if isinstance(optimizer, optimizers.Optimizer) else getattr(optimizer, "weights"))
    if weights:
        _capture_subset(root.create_group("optimizer_weights"), weights)


# -- full model ------------------------------------------------------------------------------------


def _model_metadata(model: Any, include_optimizer: bool) -> dict[str, Any]:
    from keras.src.legacy.saving import saving_options, saving_utils

    with saving_options.keras_option_scope(use_legacy_config=True):
        return dict(saving_utils.model_metadata(model, include_optimizer))


def save_model(model: Any, path: str, include_optimizer: bool = True) -> None:
    from keras.src.legacy.saving import json_utils, saving_options

    root = Group()
    # Keras's model_metadata pops "optimizer" out of the model's live compile config: it pops it
    # from a copy here.
    with _keras_state.compile_config_intact(model), _keras_state.vocabularies_in_config(model):
        metadata = _model_metadata(model, include_optimizer)
    with saving_options.keras_option_scope(use_legacy_config=True):
        for key, value in metadata.items():
            if isinstance(value, (dict, list, tuple)):
                root.attrs[key] = json.dumps(value, default=json_utils.get_json_type).encode("utf8")
            else:
                root.attrs[key] = value
        capture_layer_weights(model, root.create_group("model_weights"))
        if include_optimizer and getattr(model, "optimizer", None) is not None:
            capture_optimizer_weights(root, model.optimizer)
    _h5tree.write(path, root)


def _model_config(root: Group, path: str, decode: Any) -> Any:
    """The ``model_config`` attribute, decoded; weights-only files and bad JSON are FormatErrors."""
    raw_config = root.attrs.get("model_config")
    if raw_config is None:
        raise FormatError(f"{path}: no model_config attribute: this HDF5 file holds weights only (use load_weights)")
    try:
        return decode(_text(raw_config))
    except ValueError as exc:
        raise FormatError(f"{path}: model_config is not valid JSON: {exc}") from None


def load_model(path: str | _core.MemoryFile, *, custom_objects: Any, compile: bool, safe_mode: bool, root: Group | None = None, config_hook: Any = None) -> Any:
    root = root if root is not None else _h5tree.read(path, deferred=True)
    path = name_of(path)  # messages name a fetched object by its URL
    if _tf_keras.active():
        return _load_model_tf_keras(path, root, custom_objects=custom_objects, compile=compile)
    from keras.src.legacy.saving import json_utils, saving_options, saving_utils
    from keras.src.saving import object_registration, serialization_lib

    model_config = _model_config(root, path, json_utils.decode)
    from . import dialect

    if not _text(root.attrs.get("keras_version", b"")).startswith("3"):
        model_config = dialect.keras2_to_keras3(model_config)  # written by Keras 2 / tf-keras
    if config_hook is not None:
        model_config = config_hook(model_config)
    objects = {**object_registration.GLOBAL_CUSTOM_OBJECTS, **dict(custom_objects or {})}
    with saving_options.keras_option_scope(use_legacy_config=True), serialization_lib.SafeModeScope(safe_mode):
        model = saving_utils.model_from_config(model_config, custom_objects=objects)
    weights = root.get("model_weights")
    if not isinstance(weights, Group):
        raise FormatError(f"{path}: no model_weights group")
    if not getattr(model, "built", True) and not model.weights and attr_list(weights, "layer_names"):
        from .errors import IncompatibleModelError

        writer = _text(root.attrs.get("keras_version", b"unknown"))
        raise IncompatibleModelError(
            f"{path}: model {model.name!r} ({type(model).__name__}, written by Keras {writer}) is a subclassed model: "
            "its .h5 config has no input shape, so the rebuilt model has no weights to load into. "
            "Build the model in code (call it once) and use kerasafe.load_weights(model, path), or save it as .keras"
        )
    load_layer_weights(weights, model, path)
    if not compile:
        return model
    training_config = _json_attr(root, "training_config", path)
    if training_config is None:
        return model
    training_config = dialect.fix_training_config(training_config)
    compile_args = saving_utils.compile_args_from_training_config(training_config, objects)
    model.compile(**dialect.metric_names_kept(compile_args, training_config))
    saving_utils.try_build_compiled_arguments(model)
    optimizer_group = root.get("optimizer_weights")
    if isinstance(optimizer_group, Group):
        _restore_optimizer(model, optimizer_group, path)
    return model


def _load_model_tf_keras(path: str, root: Group, *, custom_objects: Any, compile: bool) -> Any:
    """A legacy .h5 full model into tf-keras: Keras 2 configs natively, Keras 3 configs refused."""
    from . import dialect

    model_config = _model_config(root, path, json.loads)
    writer = _text(root.attrs.get("keras_version", b""))
    if dialect.is_keras2_version(writer):
        model = _tf_keras.model_from_legacy_config(model_config, custom_objects)
    else:
        model = _tf_keras.keras3_config_to_keras2(model_config, path, writer or "3", lambda c: _tf_keras.model_from_legacy_config(c, custom_objects))
        if not model.weights and attr_list(root["model_weights"], "layer_names") if isinstance(root.get("model_weights"), Group) else False:
            from .errors import IncompatibleModelError

            raise IncompatibleModelError(
                f"{path}: model {model.name!r} ({type(model).__name__}, written by Keras {writer}) is a subclassed model: "
                "its .h5 config has no input shape, so the rebuilt model has no weights to load into. "
                "Build the model in code (call it once) and use kerasafe.load_weights(model, path), or save it as .keras"
            )
    weights = root.get("model_weights")
    if not isinstance(weights, Group):
        raise FormatError(f"{path}: no model_weights group")
    load_layer_weights(weights, model, path)
    training_config = _json_attr(root, "training_config", path) if compile else None
    if training_config is None:
        return model
    if not dialect.is_keras2_version(writer):
        training_config = dialect.keras3_to_keras2(dialect.fix_training_config(training_config))
    _tf_keras.compile_from_training_config(model, training_config, custom_objects)
    optimizer_group = root.get("optimizer_weights")
    if isinstance(optimizer_group, Group):
        named = _group_values(optimizer_group, path, "optimizer_weights")
        _tf_keras.restore_optimizer(model, [n for n, _ in named], [v for _, v in named], path)
    return model


def _restore_optimizer(model: Any, group: Group, source: str) -> None:
    named = _group_values(group, source, "optimizer_weights")
    restore_optimizer_values(model, [n for n, _ in named], [v for _, v in named], source)


def restore_optimizer_values(model: Any, names: list[str], values: list[Any], source: str) -> None:
    """Stored optimizer values (Keras 3's order, or Keras 2's: ``iteration`` first and no
    learning-rate variable) into the compiled Keras 3 optimizer; a fresh optimizer and a
    warning when they do not line up."""
    from . import dialect

    optimizer = model.optimizer
    if values and all(np.shape(v) == () for v in values):
        # An optimizer saved before its first step holds only scalars (iterations, learning
        # rate): restore them into the unbuilt optimizer, in order.
        unbuilt = list(optimizer.variables)
        targets = unbuilt if len(unbuilt) == len(values) else [optimizer.iterations]
        for variable, value in zip(targets, values):
            variable.assign(_h5tree.value_of(value))
        return
    optimizer.build(model.trainable_variables)
    variables = list(optimizer.variables)
    values = dialect.keras2_optimizer_values(names, values, [keras_path(v) for v in variables], variables)
    if len(values) != len(variables):
        from .errors import KerasafeWarning
        import warnings

        warnings.warn(
            f"{source}: the file has {len(values)} optimizer values, {type(optimizer).__name__} has {len(variables)} "
            "variables; the model loads with a fresh optimizer",
            KerasafeWarning,
            stacklevel=3,
        )
        return
    for variable, value in zip(variables, values):
        _check_shape(variable, value, source, f"optimizer variable {variable.path!r}")
    for variable, value in zip(variables, values):
        variable.assign(_h5tree.value_of(value))


def keras_path(variable: Any) -> str:
    return str(getattr(variable, "path", None) or variable.name)


# -- weights files ---------------------------------------------------------------------------------


def save_weights(model: Any, path: str) -> None:
    """``*.weights.h5``: Keras 3's layout; other ``*.h5``: the legacy layer-ordered layout."""
    from keras.src.legacy.saving import saving_options

    if path.endswith(".weights.h5"):
        _h5tree.write(path, _keras_state.capture(model))
        return
    root = Group()
    with saving_options.keras_option_scope(use_legacy_config=True):
        capture_layer_weights(model, root)
    _h5tree.write(path, root)


def load_weights(model: Any, path: str | _core.MemoryFile) -> None:
    """Weights from an HDF5 file, on disk or fetched into memory; errors name ``path``."""
    root = _h5tree.read(path, deferred=True)
    path = name_of(path)
    if "model_weights" in root and isinstance(root["model_weights"], Group):
        load_layer_weights(root["model_weights"], model, path)  # a full-model file
    elif "layer_names" in root.attrs or "layer_names0" in root.attrs:
        load_layer_weights(root, model, path)
    else:
        _keras_state.restore(model, root, path, in_place=True)

