"""``save_weights`` / ``load_weights`` in the TF checkpoint format, without TensorFlow's saver."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import _atomic, _core, _inplace, _progress, checkpoint, keras_bridge
from ._dtypes import to_numpy
from .errors import ArtifactNotFoundError, FormatError


def _write_state_file(prefix: str) -> None:
    # tf.train.latest_checkpoint(dir) reads this text proto; tf-keras writes it too.
    directory, base = os.path.split(os.path.abspath(prefix))
    with _atomic.in_temp_sibling(os.path.join(directory, "checkpoint")) as tmp:
        tmp.write_text(f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n', encoding="utf-8")


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


# Children of a ``tf.train.Checkpoint`` root that are not the model.
_NOT_MODEL_CHILDREN = ("optimizer", "save_counter", checkpoint.OBJECT_GRAPH_KEY)


def _root_children(stored: dict[str, Any]) -> list[str]:
    """First key components other than the optimizer: ``model`` for ``tf.train.Checkpoint(model=...)``."""
    firsts = sorted({name.split("/", 1)[0] for name in stored if "/" in name})
    found = [f for f in firsts if f not in _NOT_MODEL_CHILDREN and not f.startswith("layer_with_weights-")]
    # Keras 3 models' trainable variables may all be keyed under the optimizer (the shortest path).
    return found if "model" in found else [*found, "model"]


def _trackable_paths(model: Any) -> dict[int, list[str]]:
    """``id(variable) -> edge names`` by a breadth-first walk of the live model's checkpoint
    children (TensorFlow's own object graph for this model; Keras 3 keys its variables this way
    in ``tf.train.Checkpoint``). Empty where the model is not a TensorFlow trackable."""
    children = getattr(model, "_trackable_children", None)
    if children is None:
        return {}
    seen = {id(model)}
    out: dict[int, list[str]] = {}
    queue: list[tuple[Any, list[str]]] = [(model, [])]
    while queue:
        obj, path = queue.pop(0)
        try:
            kids = obj._trackable_children(save_type="checkpoint")
        except Exception:
            continue
        for name, child in sorted(kids.items()):
            if id(child) in seen:
                continue
            seen.add(id(child))
            out.setdefault(id(child), [*path, name])
            if hasattr(child, "_trackable_children"):
                queue.append((child, [*path, name]))
    return out


def _resolve_under_root_child(reader: Any, prefix: str, model: Any, keyed: list[tuple[str, Any]], stored: dict[str, Any], data_bytes: int | None = None) -> list[tuple[str, Any]]:
    """Keys of a ``tf.train.Checkpoint(model=model, ...)``: the model's variables sit under a child
    of the checkpoint root. Keras 2 models key them as ``model/layer_with_weights-N/...``; Keras 3
    models by their own object structure, found by walking the stored and the live graphs."""
    if all(key in stored for key, _ in keyed) or checkpoint.OBJECT_GRAPH_KEY not in stored:
        return keyed
    graph = checkpoint.read_from(reader, prefix, [checkpoint.OBJECT_GRAPH_KEY], data_bytes=data_bytes)[checkpoint.OBJECT_GRAPH_KEY].item()
    from . import dialect

    for child in _root_children(stored):
        for spell in (lambda k: k, dialect.keras3_checkpoint_key):
            prefixed = [(f"{child}/{spell(key)}", v) for key, v in keyed]
            prefixed = _resolve_through_graph(reader, prefix, prefixed, stored, data_bytes)
            if all(key in stored for key, _ in prefixed):
                return prefixed
        walked = _trackable_paths(model)
        paths = []
        for _, variable in keyed:
            path = next((walked[id(c)] for c in (variable, getattr(variable, "value", None), getattr(variable, "_value", None)) if c is not None and id(c) in walked), None)
            paths.append([child, *path] if path is not None else [child, "\x00missing"])
        found = _core.object_graph_resolve(graph, paths, "VARIABLE_VALUE")
        if all(found):
            return [(key, variable) for key, (_, variable) in zip(found, keyed)]
        matched = _match_keras3_operations(graph, child, keyed, stored)
        if matched is not None:
            return matched
    return keyed


def _match_keras3_operations(graph: bytes, child: str, keyed: list[tuple[str, Any]], stored: dict[str, Any]) -> list[tuple[str, Any]] | None:
    """A Keras 3 Sequential/Functional in a ``tf.train.Checkpoint`` keeps its layers as
    ``[_functional/]_operations/N``; a tf-keras model counts ``layer_with_weights-K``. Each weighted
    layer K is matched to the one operation N whose variables all exist with the model's shapes
    (names spelled the Keras 3 way); an ambiguous or missing match gives up (None)."""
    from . import dialect

    by_layer: dict[str, list[tuple[int, list[list[str]]]]] = {}
    for i, (key, _) in enumerate(keyed):
        head = key.split("/", 1)
        if not head[0].startswith("layer_with_weights-") or len(head) < 2:
            return None
        spellings = {head[1], dialect.keras3_checkpoint_key(head[1])}  # Dense's _kernel, but LSTMCell's kernel
        by_layer.setdefault(head[0], []).append((i, [[_unescape(e) for e in rest[: -len(_VALUE_SUFFIX)].split("/")] for rest in sorted(spellings)]))
    operations = range(0, 2 * len(by_layer) + 8)
    # Functional models hold _operations themselves; Sequential ones inside _functional.
    roots = (["_operations"], ["_functional", "_operations"])
    probes = [
        (layer, n, i, [child, *root, str(n), *edges])
        for layer, items in by_layer.items()
        for n in operations
        for i, variants in items
        for edges in variants
        for root in roots
    ]
    found = _core.object_graph_resolve(graph, [p[3] for p in probes], "VARIABLE_VALUE")
    hits: dict[tuple[str, int], dict[int, str]] = {}
    for (layer, n, i, _), key in zip(probes, found):
        want = tuple(int(d) for d in keyed[i][1].shape)
        if key is not None and key in stored and stored[key][0] == want:
            hits.setdefault((layer, n), {})[i] = key
    out = list(keyed)
    used: set[int] = set()
    for layer, items in by_layer.items():
        complete = [n for n in operations if len(hits.get((layer, n), {})) == len(items)]
        if len(complete) != 1 or complete[0] in used:
            return None
        used.add(complete[0])
        for i, key in hits[(layer, complete[0])].items():
            out[i] = (key, keyed[i][1])
    return out


def load_tf_checkpoint(model: Any, prefix: str, reader: Any = None, in_place: bool = False) -> None:
    """Load a TF-format checkpoint at ``prefix`` into ``model``; ``reader`` is an opened reader
    (a ``RemoteCheckpointReader`` for object storage), else the local files are opened. With
    ``in_place`` (a model that already holds values), variables that alone hold their buffers
    are filled in place; a model just built to be loaded takes new buffers over instead, which
    costs the same without the CRC pass first."""
    data_bytes = None
    if reader is None:
        if not os.path.exists(f"{prefix}.index"):
            raise ArtifactNotFoundError(f"{prefix}.index: no TF checkpoint at this prefix")
        reader = checkpoint._reader(prefix)
    else:
        data_bytes = reader.data_bytes()
    keras_bridge.ensure_built(model)
    stored = {name: (tuple(shape), dtype) for name, shape, dtype, _ in reader.entries()}
    keyed = keras_bridge.tf_checkpoint_variables(model)
    keyed = _resolve_through_graph(reader, prefix, keyed, stored, data_bytes)
    keyed = _resolve_under_root_child(reader, prefix, model, keyed, stored, data_bytes)
    problems: list[str] = []
    for key, variable in keyed:
        want = tuple(int(d) for d in variable.shape)
        if key not in stored:
            problems.append(f"no value for {keras_bridge.variable_path(variable)} (key {key!r})")
        elif stored[key][0] != want:
            problems.append(f"{keras_bridge.variable_path(variable)} has shape {want} in the model but {stored[key][0]} in the file")
    if problems and any(name.startswith("optimizer/_trainable_variables/") or "/_functional/" in name for name in stored):
        from .errors import IncompatibleModelError

        first = next(keras_bridge.variable_path(v) for k, v in keyed if k not in stored or stored[k][0] != tuple(int(d) for d in v.shape))
        raise IncompatibleModelError(
            f"{prefix}.index: written by Keras 3 (its keys follow Keras 3's object structure: '_functional/_operations/N', "
            f"'optimizer/_trainable_variables/N'), which {type(model).__module__.split('.')[0]} models do not share; no value for {first}. "
            "Load it into a Keras 3 model, or save the weights with kerasafe.save_weights (keyed the same for both Kerases)"
        )
    if problems:
        raise FormatError(f"{prefix}.index: checkpoint does not match model {model.name!r}: " + "; ".join(problems))
    # A variable that alone holds its buffer is filled in place (_inplace), once every CRC of
    # those values was checked: a damaged file must not leave the model half-loaded. Local files
    # only; object storage streams into new buffers.
    targets = _in_place_targets(keyed, stored) if in_place and data_bytes is None else {}
    if targets:
        reader.verify(list(targets))
    # Owned buffers: inside load_weights' filled_from_file each variable takes its value's
    # buffer over instead of copying it.
    values = checkpoint.read_from(reader, prefix, [key for key, _ in keyed if key not in targets], data_bytes=data_bytes, owned=True)
    if targets:
        reader.read_into(list(targets), [target.view for target in targets.values()], progress=_progress.current())
        targets.clear()  # let go of the reads that kept the buffers alive
    for key, variable in keyed:  # everything was read and checked before the first assignment
        if key in values:
            variable.assign(values[key])


def _in_place_targets(keyed: list[tuple[str, Any]], stored: dict[str, Any]) -> dict[str, _inplace.Storage]:
    targets: dict[str, _inplace.Storage] = {}
    for key, variable in keyed:
        shape, dtype = stored[key]
        try:
            np_dtype = to_numpy(dtype)
        except Exception:  # strings and dtypes numpy lacks: read_from's business
            continue
        target = _inplace.storage(variable, np_dtype, shape)
        if target is not None:
            targets[key] = target
    return targets
