"""``save_weights`` / ``load_weights`` in the TF checkpoint format, without TensorFlow's saver."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import _core, checkpoint, keras_bridge
from .errors import FormatError, NotFoundError


def _write_state_file(prefix: str) -> None:
    # tf.train.latest_checkpoint(dir) reads this text proto; tf-keras writes it too.
    directory, base = os.path.split(os.path.abspath(prefix))
    path = os.path.join(directory, "checkpoint")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n')
    os.replace(tmp, path)


def save_tf_checkpoint(model: Any, prefix: str) -> None:
    keras_bridge.ensure_built(model)
    keyed = keras_bridge.tf_checkpoint_variables(model)
    graph = _core.object_graph_build([(key, keras_bridge.variable_path(v)) for key, v in keyed])
    tensors: dict[str, Any] = {key: keras_bridge.to_numpy(v) for key, v in keyed}
    tensors[checkpoint.OBJECT_GRAPH_KEY] = np.array(graph, dtype=object)
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    checkpoint.write(prefix, tensors)
    _write_state_file(prefix)


_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def _unescape(edge: str) -> str:
    return edge.replace(".S", "/").replace("..", ".")


def _resolve_through_graph(reader: Any, prefix: str, keyed: list[tuple[str, Any]], stored: dict[str, Any], data_bytes: int | None) -> list[tuple[str, Any]]:
    """Keys missing under their usual name are looked up by walking the object graph: the same
    object may be keyed by another, shorter route (tf-keras SavedModels key LSTM cells as
    ``variables/N``)."""
    missing = [i for i, (key, _) in enumerate(keyed) if key not in stored]
    if not missing or checkpoint.OBJECT_GRAPH_KEY not in stored:
        return keyed
    graph = checkpoint.read_from(reader, prefix, [checkpoint.OBJECT_GRAPH_KEY], data_bytes=data_bytes)[checkpoint.OBJECT_GRAPH_KEY].item()
    paths = [[_unescape(e) for e in keyed[i][0][: -len(_VALUE_SUFFIX)].split("/")] for i in missing]
    found = _core.object_graph_resolve(graph, paths, "VARIABLE_VALUE")
    out = list(keyed)
    for i, key in zip(missing, found):
        if key is not None:
            out[i] = (key, keyed[i][1])
    return out


def load_tf_checkpoint(model: Any, prefix: str, reader: Any = None) -> None:
    """Load a TF-format checkpoint at ``prefix`` into ``model``; ``reader`` is an opened reader
    (a ``RemoteCheckpointReader`` for object storage), else the local files are opened."""
    data_bytes = None
    if reader is None:
        if not os.path.exists(f"{prefix}.index"):
            raise NotFoundError(f"{prefix}.index: no TF checkpoint at this prefix")
        reader = checkpoint._reader(prefix)
    else:
        data_bytes = reader.data_bytes()
    keras_bridge.ensure_built(model)
    stored = {name: (tuple(shape), dtype) for name, shape, dtype, _ in reader.entries()}
    keyed = keras_bridge.tf_checkpoint_variables(model)
    keyed = _resolve_through_graph(reader, prefix, keyed, stored, data_bytes)
    problems: list[str] = []
    for key, variable in keyed:
        want = tuple(int(d) for d in variable.shape)
        if key not in stored:
            problems.append(f"no value for {keras_bridge.variable_path(variable)} (key {key!r})")
        elif stored[key][0] != want:
            problems.append(f"{keras_bridge.variable_path(variable)} has shape {want} in the model but {stored[key][0]} in the file")
    if problems:
        raise FormatError(f"{prefix}.index: checkpoint does not match model {model.name!r}: " + "; ".join(problems))
    values = checkpoint.read_from(reader, prefix, [key for key, _ in keyed], data_bytes=data_bytes)
    for key, variable in keyed:  # everything was read and checked before the first assignment
        variable.assign(values[key])
