"""SavedModel directories that TF Serving loads *and* that reload as full Keras models.

Writing (Keras 3, TensorFlow backend): ``tf.saved_model.save`` of a small module that tracks the
model's variables (``model_variables/N``) and the optimizer's (``optimizer_variables/N``) and
exports a ``serving_default`` signature. Beside ``saved_model.pb`` we keep ``keras_config.json``:
the model's Keras config (compile config included) and the variable order. Weights live only in
``variables/``; kerasafe reads them back with its own checkpoint reader.

Reading: our directories rebuild the full model; tf-keras SavedModels (``keras_metadata.pb``)
rebuild from their Keras 2 config where every layer exists in the installed Keras; anything else
loads as an :class:`InferenceModel` over the serving signature.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import _atomic, _core, _keras_state, _weights, checkpoint, keras_bridge
from .errors import FormatError, InvalidArgumentError, KerasafeWarning, UnsafeArtifactError

KERAS_CONFIG = "keras_config.json"
FORMAT_TAG = "kerasafe-savedmodel"
VARIABLES_PREFIX = os.path.join("variables", "variables")


def _signature_name(name: str, i: int, prefix: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_]", "_", str(name).split(":")[0]) or f"{prefix}_{i}"
    return clean if clean[0].isalpha() else f"{prefix}_{clean}"


def save(model: Any, export_dir: str, include_optimizer: bool = True) -> None:
    keras = keras_bridge.keras_module()
    if keras_bridge.backend_name(keras) != "tensorflow":
        raise InvalidArgumentError(f"{export_dir}: SavedModel needs the TensorFlow backend (KERAS_BACKEND=tensorflow); use .keras or .h5")
    import tensorflow as tf

    keras_bridge.ensure_built(model, weights=False)  # a model of weightless layers is a model too
    specs = keras_bridge.input_specs(model)
    names = [_signature_name(n, i, "input") for i, (n, _, _) in enumerate(specs)]
    tf_specs = [tf.TensorSpec([None if d is None else d for d in shape], dtype, name=name) for name, (_, shape, dtype) in zip(names, specs)]
    output_names = [_signature_name(n, i, "output") for i, n in enumerate(getattr(model, "output_names", None) or [])]

    @tf.function(input_signature=tf_specs)
    def serve(*inputs: Any) -> dict[str, Any]:
        out = model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)
        outs = list(out.values()) if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else [out]
        keys = output_names if len(output_names) == len(outs) else [f"output_{i}" for i in range(len(outs))]
        return dict(zip(keys, outs))

    root = tf.Module()
    root.model_variables = [v.value for v in model.weights]
    optimizer = getattr(model, "optimizer", None) if include_optimizer else None
    optimizer_variables = list(optimizer.variables) if optimizer is not None and optimizer.built else []
    root.optimizer_variables = [v.value for v in optimizer_variables]
    root.resources = _lookup_resources(model, tf)
    root.serve = serve

    with _keras_state.vocabularies_in_config(model):  # the config is all a load rebuilds them from
        config_json, _ = _keras_state.serialize(model)
    record = {
        "format": FORMAT_TAG,
        "version": 1,
        "keras_version": keras.__version__,
        "kerasafe_version": _core.__version__,
        "config": json.loads(config_json),
        "model_variables": [keras_bridge.variable_path(v) for v in model.weights],
        "optimizer_variables": [keras_bridge.variable_path(v) for v in optimizer_variables],
        "signature": {"inputs": names, "outputs": output_names},
    }
    with _atomic.in_temp_sibling(export_dir) as tmp:
        with bundle_shards_written_here():
            tf.saved_model.save(root, str(tmp), signatures={"serving_default": serve})
        (tmp / KERAS_CONFIG).write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")


def _lookup_resources(model: Any, tf: Any) -> list[Any]:
    """The TF resources the model holds besides variables (the lookup tables of ``StringLookup``,
    ``IntegerLookup``, ``TextVectorization``): the serving function captures them, so the
    SavedModel must track them, as Keras's ``ExportArchive`` does."""
    try:
        from tensorflow.saved_model.experimental import TrackableResource

        return [t for t in tf.train.TrackableView(model).descendants() if isinstance(t, TrackableResource)]
    except (ImportError, TypeError, AttributeError):
        return []


# TensorFlow's `io_ops.save_v2` (as its checkpoint saver calls it) while any thread is inside
# bundle_shards_written_here; here.active: bool.
_SAVE_V2 = _keras_state.ScopedPatch("save_v2")


def shard_values(tf: Any, names: Any, slices: Any, tensors: Any) -> list[tuple[str, str, list[int], Any]] | None:
    """``save_v2``'s arguments as ``checkpoint_write`` values (numeric CPU tensors as zero-copy
    views of their buffers; others copied to the host), or None where kerasafe's writer does not
    apply: inside a graph, sliced (partitioned) variables, or a dtype the core cannot hold."""
    if not tf.executing_eagerly() or len(names) != len(tensors) or len(slices) != len(tensors):
        return None
    if any(_text(spec) for spec in slices):
        return None
    values = []
    for name, tensor in zip(names, tensors):
        if not isinstance(tensor, tf.Tensor) or not hasattr(tensor, "_numpy") or tensor.dtype.name not in _core.DTYPES:
            return None
        values.append(checkpoint.as_values(_text(name), tensor._numpy()))
    return values


def _text(value: Any) -> str:
    if hasattr(value, "numpy"):
        value = value.numpy()
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _save_v2_methods(save_v2: Any) -> tuple[Any]:
    here = _SAVE_V2.here

    def save_v2_here(prefix: Any, tensor_names: Any, shape_and_slices: Any, tensors: Any, name: Any = None) -> Any:
        values = None
        if getattr(here, "active", False):
            import tensorflow as tf

            try:
                values = shard_values(tf, tensor_names, shape_and_slices, tensors)
            except Exception:  # anything this reading does not foresee: SaveV2 writes the shard as before
                values = None
        if values is None:
            return save_v2(prefix, tensor_names, shape_and_slices, tensors, name=name)
        checkpoint.write_values(_text(prefix), values)
        return None  # what the eager op returns

    return (save_v2_here,)


@contextmanager
def bundle_shards_written_here() -> Iterator[None]:
    """Let kerasafe's checkpoint writer write the bundle shards TensorFlow's saver writes in this
    thread (the SavedModel's ``variables/``): the same files, about twice as fast as
    ``SaveV2`` (benches/bench_checkpoint.py). TensorFlow still names the shard and merges it into
    ``variables.index``; shards the writer does not apply to go through ``SaveV2`` as before."""
    here = _SAVE_V2.here
    try:
        from tensorflow.python.checkpoint import functional_saver

        io_ops = functional_saver.io_ops
    except (ImportError, AttributeError):
        io_ops = None
    if io_ops is None or not callable(getattr(io_ops, "save_v2", None)) or getattr(here, "active", False):
        yield
        return
    _SAVE_V2.enter(io_ops, _save_v2_methods)
    here.active = True
    try:
        yield
    finally:
        here.active = False
        _SAVE_V2.leave(io_ops)


def read_keras_config(export_dir: str) -> dict[str, Any] | None:
    path = Path(export_dir) / KERAS_CONFIG
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise FormatError(f"{path}: not valid JSON: {exc}") from None
    if record.get("format") != FORMAT_TAG:
        raise FormatError(f"{path}: not a kerasafe Keras record")
    return record


def load(export_dir: str, *, custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    # Structure check first: a broken saved_model.pb is a FormatError.
    info = json.loads(_core.savedmodel_inspect(export_dir))
    links = [a["path"] for a in info.get("assets") or [] if a.get("symlink")]
    if links:  # TensorFlow would read whatever file a link names as the model's asset
        raise UnsafeArtifactError(f"{export_dir}: symlinks in assets/ ({', '.join(links)}): a link can point a loader at any file")
    record = read_keras_config(export_dir)
    if record is not None:
        return _load_ours(export_dir, record, custom_objects, compile, safe_mode)
    if (Path(export_dir) / "keras_metadata.pb").is_file():
        try:
            return _load_tf_keras(export_dir, custom_objects, compile, safe_mode)
        except (FormatError, ValueError, TypeError, KeyError) as exc:
            warnings.warn(f"{export_dir}: cannot rebuild the Keras model ({exc}); loading it for inference only", KerasafeWarning, stacklevel=3)
    return InferenceModel(export_dir)


def _assign(variables: list[Any], values: dict[str, np.ndarray], keys: list[str], source: str, what: str) -> list[tuple[Any, np.ndarray]]:
    plan = []
    for variable, key in zip(variables, keys):
        value = values[key]
        want = tuple(int(d) for d in variable.shape)
        if tuple(value.shape) != want:
            raise FormatError(f"{source}: {what} {keras_bridge.variable_path(variable)!r} has shape {tuple(value.shape)} in variables/, the model expects {want}")
        plan.append((variable, value))
    return plan


def _load_ours(export_dir: str, record: dict[str, Any], custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    from . import _tf_keras, dialect

    source = str(Path(export_dir) / VARIABLES_PREFIX)
    writer = str(record.get("keras_version") or "3")
    if _tf_keras.active() and not dialect.is_keras2_version(writer):
        return _load_ours_into_tf_keras(export_dir, record, writer, custom_objects, compile, safe_mode)
    model = _keras_state.model_from_config(json.dumps(record["config"]), custom_objects, compile, safe_mode)
    keras_bridge.ensure_built(model, weights=False)
    weights = list(model.weights)
    if len(weights) != len(record["model_variables"]):
        raise FormatError(f"{export_dir}/{KERAS_CONFIG}: lists {len(record['model_variables'])} model variables, the rebuilt model has {len(weights)}")
    keys = [f"model_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(len(weights))]
    opt_paths = record.get("optimizer_variables") or []
    optimizer = getattr(model, "optimizer", None) if compile else None
    opt_vars: list[Any] = []
    if optimizer is not None and opt_paths:
        optimizer.build(model.trainable_variables)
        opt_vars = list(optimizer.variables)
        if len(opt_vars) != len(opt_paths):
            warnings.warn(f"{export_dir}: {len(opt_paths)} optimizer values stored, the optimizer has {len(opt_vars)}; training resumes with a fresh optimizer", KerasafeWarning, stacklevel=3)
            opt_vars = []
    opt_keys = [f"optimizer_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(len(opt_vars))]
    # FormatError naming a missing key; values in buffers the variables take over (no copy).
    values = checkpoint.read_from(checkpoint._reader(source), source, keys + opt_keys, owned=True)
    plan = _assign(weights, values, keys, source, "weight") + _assign(opt_vars, values, opt_keys, source, "optimizer variable")
    for variable, value in plan:
        variable.assign(value)
    return model


def _load_ours_into_tf_keras(export_dir: str, record: dict[str, Any], writer: str, custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    """Our directory written from a Keras 3 model, loaded into tf-keras: the config translated as
    for ``.keras`` and ``.h5`` (:func:`_tf_keras.keras3_config_to_keras2`), the weights in Keras 3's
    order, the optimizer's values lined up with tf-keras's optimizer."""
    from . import _tf_keras

    source = str(Path(export_dir) / VARIABLES_PREFIX)
    model = _tf_keras.keras3_config_to_keras2(
        record["config"], export_dir, writer, lambda c: _keras_state.model_from_config(json.dumps(c), custom_objects, compile, safe_mode)
    )
    weights = _tf_keras.keras3_weight_order(model)
    if not weights or len(weights) != len(record["model_variables"]):
        _tf_keras.refuse_keras3_config(
            record["config"], export_dir, writer, cause=f"{KERAS_CONFIG} lists {len(record['model_variables'])} model variables, the rebuilt model has {len(weights)}"
        )
    keys = [f"model_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(len(weights))]
    opt_paths = list(record.get("optimizer_variables") or []) if compile and getattr(model, "optimizer", None) is not None else []
    opt_keys = [f"optimizer_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(len(opt_paths))]
    values = checkpoint.read_from(checkpoint._reader(source), source, keys + opt_keys, owned=True)
    for variable, value in _assign(weights, values, keys, source, "weight"):
        variable.assign(value)
    if opt_paths:
        _tf_keras.restore_optimizer(model, opt_paths, [values[k] for k in opt_keys], export_dir)
    return model


def _load_tf_keras(export_dir: str, custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    """A tf-keras ``model.save(dir)``: Keras 2 config from keras_metadata.pb, weights by the
    same ``layer_with_weights-N`` keys tf-keras uses for TF checkpoints."""
    from keras.src.legacy.saving import json_utils, saving_options, saving_utils
    from keras.src.saving import object_registration, serialization_lib

    from . import dialect

    nodes = _core.keras_metadata_nodes(str(Path(export_dir) / "keras_metadata.pb"))
    # tf-keras encodes tuples as {"class_name": "__tuple__", ...}; Keras's legacy decoder undoes it.
    root = next((json_utils.decode(meta) for path, _, meta in nodes if path == "root"), None)
    if not root or "class_name" not in root:
        raise FormatError(f"{export_dir}/keras_metadata.pb: no root model config")
    from . import _tf_keras

    if _tf_keras.active():
        model = _tf_keras.model_from_legacy_config({"class_name": root["class_name"], "config": root["config"]}, custom_objects)
    else:
        config = dialect.keras2_to_keras3({"class_name": root["class_name"], "config": root["config"]})
        objects = {**object_registration.GLOBAL_CUSTOM_OBJECTS, **dict(custom_objects or {})}
        with saving_options.keras_option_scope(use_legacy_config=True), serialization_lib.SafeModeScope(safe_mode):
            model = saving_utils.model_from_config(config, custom_objects=objects)
    _build_subclassed(model, root)
    _weights.load_tf_checkpoint(model, str(Path(export_dir) / VARIABLES_PREFIX))
    training = root.get("training_config")
    if compile and training:
        if _tf_keras.active():
            _tf_keras.compile_from_training_config(model, training, custom_objects)
        else:
            training = dialect.fix_training_config(training)
            compile_args = saving_utils.compile_args_from_training_config(training, objects)
            model.compile(**dialect.metric_names_kept(compile_args, training))
        if not _restore_keras2_optimizer(model, export_dir):
            stored = checkpoint.list_variables(Path(export_dir) / VARIABLES_PREFIX)
            slots = [name for name, shape, _ in stored if (name.startswith("optimizer/") or ".OPTIMIZER_SLOT" in name) and shape]
            if slots:
                warnings.warn(f"{export_dir}: tf-keras optimizer state ({len(slots)} slot variables) is not carried over; training resumes with a fresh optimizer", KerasafeWarning, stacklevel=4)
    return model


def _optimizer_key(name: str) -> str:
    return f"optimizer/{name}/.ATTRIBUTES/VARIABLE_VALUE"


def _restore_keras2_optimizer(model: Any, export_dir: str) -> bool:
    """Carry a Keras 2.11+ optimizer's state (``optimizer/_iterations``, ``_learning_rate`` and
    the slots ``_variables/1…N``, per variable in the order Keras 2 built them) into the compiled
    optimizer: Keras 3's variables are ``iterations``, ``learning_rate`` and the slots in the same
    order; tf-keras's ``iterations`` and the slots (its own SavedModel loader leaves them fresh).
    Returns False (nothing assigned) when the stored state does not line up."""
    from . import _tf_keras

    prefix = Path(export_dir) / VARIABLES_PREFIX
    stored = {name: tuple(shape) for name, shape, _ in checkpoint.list_variables(prefix)}
    slots = sorted(int(n.split("/")[2]) for n in stored if n.startswith("optimizer/_variables/") and n.split("/")[2].isdigit())
    if _optimizer_key("_iterations") not in stored or not slots or slots != list(range(1, len(slots) + 1)):
        return False
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return False
    if _tf_keras.active():
        named = [("iteration", "_iterations")] + [(f"slot/{i}", f"_variables/{i}") for i in slots]
        values = checkpoint.read(prefix, [_optimizer_key(key) for _, key in named])
        # Lined up with the optimizer's variables there; a warning and a fresh optimizer if they do not.
        _tf_keras.restore_optimizer(model, [name for name, _ in named], [values[_optimizer_key(key)] for _, key in named], str(prefix))
        return True
    optimizer.build(model.trainable_variables)
    variables = list(optimizer.variables)
    keys: list[str | None] = [_optimizer_key("_iterations"), _optimizer_key("_learning_rate") if _optimizer_key("_learning_rate") in stored else None]
    keys += [_optimizer_key(f"_variables/{i}") for i in slots]
    if len(keys) != len(variables):
        return False
    values = checkpoint.read(prefix, [k for k in keys if k is not None])
    for key, variable in zip(keys, variables):
        if key is not None and tuple(np.shape(values[key])) != tuple(variable.shape):
            return False
    for key, variable in zip(keys, variables):
        if key is not None:  # a Keras 2 file without a learning-rate variable keeps the compiled one
            variable.assign(values[key])
    return True


def _build_subclassed(model: Any, root: dict[str, Any]) -> None:
    """A subclassed model rebuilt from its config has no weights until built; tf-keras recorded
    the shape it was built with (``build_input_shape``) in keras_metadata.pb."""
    if getattr(model, "built", True) and model.weights:
        return
    shape = root.get("build_input_shape")
    if isinstance(shape, dict):
        shape = shape.get("items")
    if hasattr(shape, "as_list"):
        shape = shape.as_list()
    if isinstance(shape, (list, tuple)) and shape and all(d is None or isinstance(d, int) for d in shape):
        model(np.zeros((1, *(1 if d is None else d for d in shape[1:])), dtype="float32"))  # Keras 3's Model.build makes no weights


class InferenceModel:
    """A SavedModel without a Keras model inside, callable like one (``model(x)``, ``predict``)."""

    def __init__(self, export_dir: str, signature: str = "serving_default") -> None:
        import tensorflow as tf

        self.path = export_dir
        self._loaded = tf.saved_model.load(export_dir)
        if signature not in self._loaded.signatures:
            raise FormatError(f"{export_dir}: no {signature!r} signature (has {sorted(self._loaded.signatures)})")
        self._fn = self._loaded.signatures[signature]
        self._inputs = [k for k in self._fn.structured_input_signature[1]]
        self._outputs = sorted(self._fn.structured_outputs)

    def __call__(self, inputs: Any, training: bool = False) -> Any:
        values = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if isinstance(inputs, dict):
            kwargs = dict(inputs)
        else:
            kwargs = dict(zip(self._inputs, values))
        result = self._fn(**kwargs)
        outs = [result[k] for k in self._outputs]
        return outs[0] if len(outs) == 1 else outs

    def predict(self, inputs: Any, **_: Any) -> Any:
        out = self(inputs)
        return [np.asarray(o) for o in out] if isinstance(out, list) else np.asarray(out)

    def __repr__(self) -> str:
        return f"InferenceModel({self.path!r}, inputs={self._inputs}, outputs={self._outputs})"
