"""tf-keras (``TF_USE_LEGACY_KERAS=1``). Loading: the same files and the same Rust readers as for
Keras 3, with tf-keras's own config deserializer and state walk. Saving ``.h5``, ``.keras``,
SavedModel directories and HDF5 weights: tf-keras's own savers (its objects are not the Keras 3
objects kerasafe's writers walk), writing to a temporary sibling that is renamed into place.

Files written by Keras 2 (tf.keras in TF <= 2.15, tf-keras) rebuild natively; Keras 3 configs are
translated first (:func:`kerasafe.dialect.keras3_to_keras2`). Where tf-keras still cannot build
one, :class:`~kerasafe.errors.IncompatibleModelError` names the first Keras 3 layer, the Keras that
wrote the file and the cause; the weights still load into a tf-keras model built in code.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import _atomic
from .errors import IncompatibleModelError, InvalidArgumentError, KerasafeError, KerasafeWarning, StorageError, StoragePermissionError, _brief


def active() -> bool:
    from .keras_bridge import keras_module

    return bool(keras_module().__name__ == "tf_keras")


def legacy_weights(layer: Any) -> list[Any]:
    """tf-keras's order for legacy HDF5 weights: trainable then non-trainable."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _objects(custom_objects: Any) -> dict[str, Any]:
    import tf_keras

    return {**tf_keras.saving.get_custom_objects(), **dict(custom_objects or {})}


def keras3_config_to_keras2(config: Any, source: str, writer: str, build: Any) -> Any:
    """Build a Keras 3 config with tf-keras after :func:`dialect.keras3_to_keras2`; where tf-keras
    still cannot, raise :class:`IncompatibleModelError` naming the first Keras 3 layer and the cause."""
    from . import dialect

    translated = dialect.keras3_to_keras2(config)
    try:
        return build(translated)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        refuse_keras3_config(config, source, writer, cause=_brief(exc, 300))


def keras3_weight_order(model: Any) -> list[Any]:
    """A tf-keras model's weights in the order Keras 3's ``model.weights`` lists the same model's:
    each layer's own variables (trainable, then non-trainable), then its sublayers' in turn
    (tf-keras's ``model.weights`` puts every trainable variable first)."""
    out: list[Any] = []
    seen: set[int] = set()

    def walk(layer: Any) -> None:
        for w in list(getattr(layer, "_trainable_weights", [])) + list(getattr(layer, "_non_trainable_weights", [])):
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
        for sub in layer._flatten_layers(include_self=False, recursive=False):
            walk(sub)

    walk(model)
    return out


def refuse_keras3_config(config: Any, source: str, writer: str, cause: str = "") -> None:
    """Raise :class:`IncompatibleModelError` naming the first layer with a Keras 3-only config."""
    from . import dialect

    layer = dialect.first_keras3_only_layer(config)
    what = f"layer {layer[0]!r} ({layer[1]}: {layer[2]})" if layer else "its model config"
    raise IncompatibleModelError(
        f"{source}: written by Keras {writer}; {what} is Keras 3 only and tf-keras cannot build it"
        + (f" even translated ({cause}). " if cause else ". ") +
        "Load this file with Keras 3, or build the model in code with tf-keras and load the weights "
        "with kerasafe.load_weights(model, path)"
    )
    raise AssertionError("unreachable")


def model_from_legacy_config(config: Any, custom_objects: Any) -> Any:
    import tf_keras

    return tf_keras.models.model_from_config(config, custom_objects=_objects(custom_objects))


def compile_from_training_config(model: Any, training_config: dict[str, Any], custom_objects: Any) -> None:
    from tf_keras.src.saving.legacy import saving_utils

    from . import dialect

    compile_args = saving_utils.compile_args_from_training_config(training_config, _objects(custom_objects))
    model.compile(**dialect.metric_names_kept(compile_args, training_config))


def _optimizer_variables(optimizer: Any) -> list[Any]:
    variables = optimizer.variables
    return list(variables() if callable(variables) else variables)


def restore_optimizer(model: Any, names: list[str], values: list[np.ndarray], source: str) -> None:
    from . import dialect

    optimizer = model.optimizer
    trainable = list(model.trainable_variables)
    legacy = hasattr(optimizer, "_create_all_weights")  # tf-keras's legacy optimizers (its .h5 compile)
    try:
        if legacy:
            optimizer._create_all_weights(trainable)
        else:
            optimizer.build(trainable)
    except Exception:
        pass
    variables = list(optimizer.weights) if legacy else _optimizer_variables(optimizer)
    values = dialect.optimizer_values_for_tf_keras(names, values, len(trainable), len(variables), legacy)
    if len(values) != len(variables) or any(tuple(np.shape(v)) != tuple(int(d) for d in w.shape) for v, w in zip(values, variables)):
        warnings.warn(
            f"{source}: the file has {len(values)} optimizer values, {type(optimizer).__name__} has {len(variables)} variables; "
            "the model loads with a fresh optimizer",
            KerasafeWarning,
            stacklevel=4,
        )
        return
    from ._h5tree import value_of

    for variable, value in zip(variables, values):
        variable.assign(value_of(value))


def restore_keras3_optimizer(model: Any, group: Any, source: str) -> None:
    """A Keras 3 optimizer's stored ``vars/0…N`` (iterations, learning_rate unless a schedule
    drives it, then the slots) into the compiled tf-keras optimizer."""
    from ._h5tree import indexed_values

    values = indexed_values(group)
    if values is None:
        return
    count = len(values)
    optimizer = model.optimizer
    if not hasattr(optimizer, "_create_all_weights"):
        try:
            optimizer.build(list(model.trainable_variables))
        except Exception:
            pass
    n_variables = len(_optimizer_variables(optimizer))
    names = ["iteration", "learning_rate"] if count == n_variables + 1 else ["iteration"]
    names += [f"slot/{i}" for i in range(count - len(names))]
    restore_optimizer(model, names, values, source)


def model_from_archive_config(config_json: str, custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    from tf_keras.src.saving import object_registration, serialization_lib

    config = json.loads(config_json)
    if not compile:
        config["compile_config"] = None
    with object_registration.CustomObjectScope(_objects(custom_objects)), serialization_lib.ObjectSharingScope():
        return serialization_lib.deserialize_keras_object(config, custom_objects=_objects(custom_objects), safe_mode=safe_mode)


def attribute_groups_to_layers(root: Any, model: Any) -> Any:
    """A subclassed model's layers stored by attribute name (Keras 3, Keras 2.12) regrouped under
    ``layers/`` as tf-keras names them."""
    from . import dialect
    from ._h5tree import Group

    if "layers" in root.children or not hasattr(model, "layers"):
        return root
    attrs = {id(v): k for k, v in vars(model).items() if not k.startswith("_")}
    layers = list(model.layers)
    if not layers or any(id(layer) not in attrs or attrs[id(layer)] not in root.children for layer in layers):
        return root
    out = Group(attrs=root.attrs)
    out.children = {k: v for k, v in root.children.items() if k not in {attrs[id(layer)] for layer in layers}}
    grouped = Group()
    for layer, name in zip(layers, dialect.keras2_layer_group_names([type(layer).__name__ for layer in layers])):
        grouped.children[name] = root.children[attrs[id(layer)]]
    out.children["layers"] = grouped
    return out


def restore_state(model: Any, tree_store: Any, assets_store: Any) -> None:
    from tf_keras.src.saving import saving_lib

    tree_store.root = attribute_groups_to_layers(tree_store.root, model)

    saving_lib._load_state(model, weights_store=tree_store, assets_store=assets_store, inner_path="", visited_trackables=set())


# -- saving ----------------------------------------------------------------------------------------

_SAVE_FORMATS = {"h5": "h5", "keras": "keras", "savedmodel": "tf"}


def _suffix(path: str, kind: str) -> str:
    """What the temporary sibling's name ends in: tf-keras chooses some formats by the name."""
    if kind == "savedmodel":
        return ""
    if kind == "keras":
        return ".keras"
    return ".weights.h5" if path.endswith(".weights.h5") else os.path.splitext(path)[1]


@contextmanager
def _saving(path: str, what: str) -> Iterator[None]:
    """tf-keras's errors as kerasafe's, naming the file."""
    try:
        yield
    except KerasafeError:
        raise
    except PermissionError as exc:
        raise StoragePermissionError(f"{path}: cannot write {what}: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"{path}: cannot write {what}: {exc}") from exc
    except Exception as exc:
        raise InvalidArgumentError(f"{path}: tf-keras cannot save {what}: {_brief(exc)}") from exc


def save_model(model: Any, path: str, kind: str, include_optimizer: bool) -> None:
    """``kind`` (``h5``, ``keras``, ``savedmodel``) by tf-keras's ``model.save``, atomically.
    ``include_optimizer`` applies to ``.h5`` and SavedModels (a ``.keras`` always has it, as with
    Keras 3)."""
    from ._savedmodel import bundle_shards_written_here

    kwargs = {} if kind == "keras" else {"include_optimizer": include_optimizer}
    with _saving(path, "the model"), _atomic.in_temp_sibling(path, _suffix(path, kind)) as tmp:
        # A SavedModel's variables/ bundle is written by kerasafe's checkpoint writer, as for Keras 3.
        with bundle_shards_written_here(), warnings.catch_warnings():
            # The user asked for that format: tf-keras's advice against .h5 is noise here.
            warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
            model.save(str(tmp), save_format=_SAVE_FORMATS[kind], **kwargs)


def save_weights(model: Any, path: str) -> None:
    """``*.weights.h5`` (tf-keras's layout of Keras 3's weights file) or a legacy ``*.h5`` by
    tf-keras's ``model.save_weights``, atomically."""
    with _saving(path, "the weights"), _atomic.in_temp_sibling(path, _suffix(path, "h5")) as tmp:
        model.save_weights(str(tmp), **({} if path.endswith(".weights.h5") else {"save_format": "h5"}))
