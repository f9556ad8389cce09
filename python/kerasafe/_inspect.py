"""``kerasafe.inspect(path)``: what a model file, checkpoint or artifact holds, read without
TensorFlow or Keras.

Every reader here works on structure only (HDF5 and zip directories, the checkpoint ``.index``,
``saved_model.pb``): no tensor values are read and nothing is deserialized. Layers come from the
stored Keras config (Keras 3 ``config.json``, kerasafe's ``keras_config.json``, the legacy
``model_config`` attribute, tf-keras's ``keras_metadata.pb``); parameters per layer from the
weights listing. :func:`read_values` reads the values too (``kerasafe diff`` uses it).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _core, _log, checkpoint
from ._dtypes import to_numpy
from .errors import ArtifactNotFoundError, FormatError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["inspect", "load", "read_values", "verify_file", "locate", "FORMATS"]


FORMATS = {
    "savedmodel": "TensorFlow SavedModel directory",
    "keras": "Keras 3 archive (.keras)",
    "h5": "legacy HDF5 full model (.h5)",
    "h5-weights": "legacy HDF5 weights, layer by layer (.h5)",
    "weights.h5": "Keras 3 weights file (.weights.h5)",
    "checkpoint": "TF checkpoint (PREFIX.index + PREFIX.data-*)",
}
_FULL_MODEL = ("savedmodel", "keras", "h5")
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_MODEL_CLASSES = ("Sequential", "Functional", "Model")


# -- HDF5 trees as the core returns them ---------------------------------------------------------------


def _attr(kind: str, value: Any) -> Any:
    def text(v: Any) -> str:
        return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)

    if kind in ("str", "bytes"):
        return text(value)
    if kind in ("str_list", "bytes_list", "fixed_bytes_list"):
        return [text(v) for v in value]
    if kind in ("ints", "floats"):
        return list(value)
    if kind == "other":
        return None
    return value


@dataclass
class _Group:
    attrs: dict[str, Any]
    children: dict[str, Any]

    def get(self, path: str) -> Any:
        node: Any = self
        for part in (p for p in path.split("/") if p):
            if not isinstance(node, _Group) or part not in node.children:
                return None
            node = node.children[part]
        return node


@dataclass
class _Data:
    attrs: dict[str, Any]
    dtype: str
    shape: list[int]
    payload: Any = None

    @property
    def logical_dtype(self) -> str:
        return "bfloat16" if self.attrs.get("dtype") == "bfloat16" else self.dtype

    def array(self) -> np.ndarray:
        if self.payload is None:
            raise FormatError("dataset read without values")
        if self.dtype == "string":
            arr = np.empty(len(self.payload), dtype=object)
            arr[:] = list(self.payload)
            return arr.reshape(self.shape)
        data = np.frombuffer(self.payload, dtype=to_numpy(self.dtype)).reshape(self.shape)
        if self.logical_dtype == "bfloat16" and self.dtype != "bfloat16":
            data = data.view(to_numpy("bfloat16"))
        return data


def _tree(raw: Any) -> Any:
    attrs = {name: _attr(kind, value) for name, (kind, value) in raw[1]}
    if raw[0] == "group":
        return _Group(attrs, {name: _tree(child) for name, child in raw[2]})
    _, _, dtype, shape, payload = raw
    return _Data(attrs, dtype, list(shape), payload)


def _attr_list(group: _Group, name: str) -> list[str]:
    """A string-list attribute, reassembling Keras's ``name0``, ``name1``, … chunks."""
    if name in group.attrs:
        value = group.attrs[name]
        return [str(v) for v in value] if isinstance(value, list) else ([str(value)] if value not in (None, "") else [])
    out: list[str] = []
    i = 0
    while f"{name}{i}" in group.attrs:
        out += [str(v) for v in group.attrs[f"{name}{i}"]]
        i += 1
    return out


def _natural(key: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key))


# -- what every reader returns -----------------------------------------------------------------------


@dataclass
class _Var:
    name: str
    key: str
    shape: list[int]
    dtype: str
    nbytes: int | None
    hints: list[str] = field(default_factory=list)  # path components that may name the owning layer
    default_layer: str | None = None
    trainable: bool | None = None
    inner_name: str | None = None  # the innermost layer that owns the variable (Keras 3 layout)
    inner_key: str | None = None  # its group name there: snake_case class name (``batch_normalization_1``)
    inner_index: int = 0
    inner_count: int = 1
    layer: str | None = None


@dataclass
class _Parsed:
    path: str
    format: str
    config: dict[str, Any] | None = None
    weights: list[_Var] = field(default_factory=list)
    optimizer_vars: list[_Var] = field(default_factory=list)
    other_vars: list[_Var] = field(default_factory=list)
    optimizer_config: dict[str, Any] | None = None
    compile: dict[str, Any] | None = None
    producer: dict[str, Any] = field(default_factory=dict)
    signatures: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] | None = None
    outputs: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    trainable_exact: bool = False
    custom_doc: Any = None
    build_input_shapes: dict[str, Any] = field(default_factory=dict)
    # how to read values: ("h5", path) / ("keras", path) / ("checkpoint", prefix)
    source: tuple[str, str] = ("", "")


def _nbytes(shape: list[int], dtype: str) -> int | None:
    try:
        itemsize = to_numpy(dtype).itemsize
    except Exception:
        return None
    if dtype == "string":
        return None
    return int(math.prod(shape)) * itemsize


def _json(text: str | bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{where}: not valid JSON: {exc}") from None


# -- locating what a path is -------------------------------------------------------------------------


def _checkpoint_prefix_in(directory: Path) -> Path | None:
    state = directory / "checkpoint"
    if state.is_file():
        m = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(encoding="utf-8", errors="replace"), re.M)
        if m:
            prefix = Path(m.group(1))
            prefix = prefix if prefix.is_absolute() else directory / prefix
            if Path(f"{prefix}.index").is_file():
                return prefix
    indexes = sorted(directory.glob("*.index"))
    if len(indexes) == 1:
        return indexes[0].with_suffix("")
    return None


def _latest_version(directory: Path) -> Path | None:
    """``root/name/format`` (a directory of versions): its latest version, resolved by the store."""
    if not any((child / "metadata.json").is_file() for child in directory.iterdir() if child.is_dir()):
        return None
    root, name, fmt = directory.parent.parent, directory.parent.name, directory.name
    return Path(_core.store_resolve(os.fspath(root), name, fmt, "latest"))


def locate(path: PathLike) -> tuple[str, str]:
    """``(kind, path)``: kind one of :data:`FORMATS`, ``"keras-dir"`` (an unzipped ``.keras``)
    or ``"artifact"`` (a kerasafe version directory); the path normalized (a checkpoint prefix,
    a resolved version)."""
    p = Path(os.fspath(path))
    text = os.fspath(path)
    if not p.exists():
        if Path(f"{text}.index").is_file():  # a checkpoint prefix names no file itself
            return "checkpoint", text
        raise ArtifactNotFoundError(f"{text}: no such file, directory or checkpoint prefix")
    if p.is_dir():
        if (p / "config.json").is_file() and (p / "model.weights.h5").is_file():
            return "keras-dir", text
        if (p / "metadata.json").is_file():
            return "artifact", text
        if (p / "saved_model.pb").is_file():
            return "savedmodel", text
        latest = _latest_version(p)
        if latest is not None:
            _log.logger().info("%s: a directory of versions; using the latest, %s", text, latest)
            return "artifact", os.fspath(latest)
        prefix = _checkpoint_prefix_in(p)
        if prefix is not None:
            return "checkpoint", os.fspath(prefix)
        if any(any((fmt / "metadata.json").is_file() for fmt in child.glob("*/*")) for child in p.iterdir() if child.is_dir()):
            raise FormatError(f"{text}: an artifact store root: name one version (kerasafe ls {text} lists them)")
        raise FormatError(f"{text}: a directory that is neither a SavedModel, a kerasafe artifact version nor a checkpoint directory")
    if text.endswith(".index"):
        return "checkpoint", text[: -len(".index")]
    m = re.match(r"^(.*)\.data-\d{5}-of-\d{5}$", text)
    if m:
        return "checkpoint", m.group(1)
    kind = _core.sniff(text)
    if kind == "zip":
        return "keras", text
    if kind == "hdf5":
        return _h5_kind(text), text
    raise FormatError(f"{text}: not a file kerasafe reads (.keras, .h5, .weights.h5, a SavedModel, a checkpoint prefix or an artifact version)")


def _h5_kind(path: str) -> str:
    root = _tree(_core.h5_read(path, False))
    if "model_config" in root.attrs:
        return "h5"
    if isinstance(root.children.get("model_weights"), _Group) or "layer_names" in root.attrs or "layer_names0" in root.attrs:
        return "h5-weights"
    if isinstance(root.children.get("layers"), _Group) or isinstance(root.children.get("vars"), _Group):
        return "weights.h5"
    raise FormatError(f"{path}: an HDF5 file without Keras content (no model_config, layer_names or layers/)")


# -- readers -----------------------------------------------------------------------------------------


def _keras3_vars(root: _Group) -> tuple[list[_Var], list[_Var], list[_Var]]:
    """Keras 3's weights layout: ``layers/<key>/vars/<i>``, ``optimizer/vars/<i>``, ``vars/<i>``."""
    model: list[_Var] = []
    opt: list[_Var] = []
    other: list[_Var] = []

    def walk(group: _Group, path: str, top: str | None, out: list[_Var]) -> None:
        vars_group = group.children.get("vars")
        if isinstance(vars_group, _Group):
            inner = vars_group.attrs.get("name")
            inner_key = path.rstrip("/").split("/")[-1] or None
            datasets = sorted(((k, v) for k, v in vars_group.children.items() if isinstance(v, _Data)), key=lambda kv: _natural(kv[0]))
            for i, (key, ds) in enumerate(datasets):
                name = f"{path}vars/{key}"
                out.append(
                    _Var(name, name, ds.shape, ds.logical_dtype, _nbytes(ds.shape, ds.logical_dtype), [top] if top else [], top, None, inner, inner_key, i, len(datasets))
                )
        for key in sorted((k for k in group.children if k != "vars"), key=_natural):
            child = group.children[key]
            if isinstance(child, _Group):
                walk(child, f"{path}{key}/", top, out)
            elif isinstance(child, _Data):
                out.append(_Var(f"{path}{key}", f"{path}{key}", child.shape, child.logical_dtype, _nbytes(child.shape, child.logical_dtype), [top] if top else [], top))

    layers = root.children.get("layers")
    if isinstance(layers, _Group):
        for key in sorted(layers.children, key=_natural):
            child = layers.children[key]
            if isinstance(child, _Group):
                vars_group = child.children.get("vars")
                real = vars_group.attrs.get("name") if isinstance(vars_group, _Group) else None
                walk(child, f"layers/{key}/", str(real or key), model)
    for key in sorted(root.children, key=_natural):
        child = root.children[key]
        if key == "layers":
            continue
        if key == "optimizer" and isinstance(child, _Group):
            walk(child, "optimizer/", None, opt)
        elif key == "vars" and isinstance(child, _Group):
            walk(_Group({}, {"vars": child}), "", None, model)
        elif isinstance(child, _Group):
            walk(child, f"{key}/", None, other)
    return model, opt, other


def _legacy_vars(group: _Group, path: str, prefix: str) -> list[_Var]:
    """The legacy layout: ``layer_names`` → groups with ordered ``weight_names``."""
    out: list[_Var] = []
    for layer in _attr_list(group, "layer_names"):
        sub = group.children.get(layer)
        if not isinstance(sub, _Group):
            raise FormatError(f"{path}: layer_names lists {layer!r} but the file has no such group")
        for weight in _attr_list(sub, "weight_names"):
            ds = sub.get(weight)
            if not isinstance(ds, _Data):
                raise FormatError(f"{path}: layer {layer!r} lists weight {weight!r} but the file has no such dataset")
            out.append(_Var(f"{layer}/{weight}", f"{prefix}{layer}/{weight}", ds.shape, ds.logical_dtype, _nbytes(ds.shape, ds.logical_dtype), [layer], layer))
    top = group.children.get("top_level_model_weights")
    if isinstance(top, _Group):
        for weight in _attr_list(top, "weight_names"):
            ds = top.get(weight)
            if isinstance(ds, _Data):
                out.append(_Var(f"top_level_model_weights/{weight}", f"{prefix}top_level_model_weights/{weight}", ds.shape, ds.logical_dtype, _nbytes(ds.shape, ds.logical_dtype)))
    return out


def _listed_vars(group: _Group, prefix: str) -> list[_Var]:
    out = []
    for weight in _attr_list(group, "weight_names"):
        ds = group.get(weight)
        if isinstance(ds, _Data):
            out.append(_Var(weight, prefix + weight, ds.shape, ds.logical_dtype, _nbytes(ds.shape, ds.logical_dtype)))
    return out


def _compile_from(training: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(optimizer config, loss/metrics)`` from a Keras 3 compile_config or a legacy training_config."""
    if not isinstance(training, dict):
        return None, None
    optimizer = training.get("optimizer") or training.get("optimizer_config")
    if isinstance(optimizer, str):
        optimizer = {"class_name": optimizer, "config": {}}
    compiled = {k: training.get(k) for k in ("loss", "metrics", "weighted_metrics", "loss_weights") if training.get(k) is not None}
    return optimizer if isinstance(optimizer, dict) else None, compiled or None


def _read_keras(path: str) -> _Parsed:
    config_json, metadata_json, weights, assets = _core.keras_archive_read(path, False)
    return _keras_parts(path, "keras", config_json, metadata_json, _tree(weights) if weights is not None else _Group({}, {}), len(assets), ("keras", path))


def _read_keras_dir(path: str) -> _Parsed:
    d = Path(path)
    meta = (d / "metadata.json").read_text(encoding="utf-8") if (d / "metadata.json").is_file() else None
    weights = _tree(_core.h5_read(os.fspath(d / "model.weights.h5"), False))
    assets = sum(1 for p in (d / "assets").rglob("*") if p.is_file()) if (d / "assets").is_dir() else 0
    parsed = _keras_parts(path, "keras", (d / "config.json").read_text(encoding="utf-8"), meta, weights, assets, ("h5", os.fspath(d / "model.weights.h5")))
    parsed.notes.append("an unzipped .keras directory")
    return parsed


def _keras_parts(path: str, fmt: str, config_json: str, metadata_json: str | None, root: _Group, assets: int, source: tuple[str, str]) -> _Parsed:
    config = _json(config_json, f"{path}: config.json")
    meta = _json(metadata_json, f"{path}: metadata.json") if metadata_json else {}
    model, opt, other = _keras3_vars(root)
    optimizer, compiled = _compile_from(config.get("compile_config") if isinstance(config, dict) else None)
    producer = {"keras_version": meta.get("keras_version"), "saved_at": meta.get("date_saved")}
    parsed = _Parsed(path, fmt, config=config, weights=model, optimizer_vars=opt, other_vars=other, optimizer_config=optimizer, compile=compiled, producer=producer, custom_doc=config, source=source)
    parsed.extra["assets"] = assets
    return parsed


def _read_weights_h5(path: str) -> _Parsed:
    root = _tree(_core.h5_read(path, False))
    model, opt, other = _keras3_vars(root)
    return _Parsed(path, "weights.h5", weights=model, optimizer_vars=opt, other_vars=other, source=("h5", path))


def _versions_from_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {"keras_version": attrs.get("keras_version"), "backend": attrs.get("backend")}


def _read_h5(path: str) -> _Parsed:
    root = _tree(_core.h5_read(path, False))
    config = _json(root.attrs["model_config"], f"{path}: attribute 'model_config'")
    training = _json(root.attrs["training_config"], f"{path}: attribute 'training_config'") if root.attrs.get("training_config") else None
    weights = root.children.get("model_weights")
    if not isinstance(weights, _Group):
        raise FormatError(f"{path}: no model_weights group")
    model = _legacy_vars(weights, path, "model_weights/")
    opt_group = root.children.get("optimizer_weights")
    opt = _listed_vars(opt_group, "optimizer_weights/") if isinstance(opt_group, _Group) else []
    optimizer, compiled = _compile_from(training)
    doc = {"model_config": config, "training_config": training} if training else {"model_config": config}
    return _Parsed(path, "h5", config=config, weights=model, optimizer_vars=opt, optimizer_config=optimizer, compile=compiled, producer=_versions_from_attrs(root.attrs), custom_doc=doc, source=("h5", path))


def _read_h5_weights(path: str) -> _Parsed:
    root = _tree(_core.h5_read(path, False))
    group, prefix = root, ""
    if isinstance(root.children.get("model_weights"), _Group):
        group, prefix = root.children["model_weights"], "model_weights/"
    producer = _versions_from_attrs(group.attrs if "keras_version" in group.attrs else root.attrs)
    return _Parsed(path, "h5-weights", weights=_legacy_vars(group, path, prefix), producer=producer, source=("h5", path))


def _default_layers(parts: list[list[str]]) -> list[str | None]:
    """The owning layer of each variable from path-like names alone: the first component, after
    dropping a model name every path shares (Keras 3 names ``model/layer/kernel``, tf-keras
    ``layer/kernel:0``)."""
    deep = [p for p in parts if len(p) >= 3]
    model = deep[0][0] if deep and len({p[0] for p in deep}) == 1 else None
    return [(p[1] if model is not None and len(p) >= 3 and p[0] == model else p[0]) if len(p) >= 2 else None for p in parts]


def _read_checkpoint(prefix: str) -> _Parsed:
    reader = _core.CheckpointReader(prefix)
    entries = reader.entries()
    names = {e[0] for e in entries}
    full_names: dict[str, str] = {}
    order: dict[str, int] = {}
    if checkpoint.OBJECT_GRAPH_KEY in names:
        graph = checkpoint.read_from(reader, prefix, [checkpoint.OBJECT_GRAPH_KEY])[checkpoint.OBJECT_GRAPH_KEY].item()
        for i, (_, _, key, full_name) in enumerate(_core.object_graph_attributes(graph)):
            full_names[key] = full_name
            order.setdefault(key, i)
    parsed = _Parsed(prefix, "checkpoint", source=("checkpoint", prefix))
    model: list[_Var] = []
    for name, shape, dtype, size in sorted(entries, key=lambda e: (order.get(e[0], len(order)), _natural(e[0]))):
        if name == checkpoint.OBJECT_GRAPH_KEY:
            continue
        shown = name[: -len(_VALUE_SUFFIX)] if name.endswith(_VALUE_SUFFIX) else name
        var = _Var(shown, name, list(shape), dtype, int(size))
        if name.startswith("optimizer/") or ".OPTIMIZER_SLOT" in name:
            parsed.optimizer_vars.append(var)
        elif name.startswith(("save_counter/", "keras_api/")):
            parsed.other_vars.append(var)
        else:
            var.hints = [p for p in full_names.get(name, shown).split("/") if p]
            model.append(var)
    defaults = _default_layers([v.hints for v in model])
    for var, default in zip(model, defaults):
        var.default_layer = default
    parsed.weights = model
    if not full_names:
        parsed.notes.append("no object graph in the checkpoint: layer names guessed from keys")
    return parsed


def _untuple(value: Any) -> Any:
    """tf-keras encodes tuples and TensorShapes as ``{"class_name": "__tuple__", "items": [...]}``."""
    if isinstance(value, dict):
        if value.get("class_name") in ("__tuple__", "TensorShape") and "items" in value:
            return [_untuple(v) for v in value["items"]]
        return {k: _untuple(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untuple(v) for v in value]
    return value


def _signature_io(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": t["key"], "dtype": t.get("dtype"), "shape": None if t.get("shape") is None else [None if d < 0 else d for d in t["shape"]]} for t in items]


def _read_savedmodel(path: str) -> _Parsed:
    from ._savedmodel import KERAS_CONFIG, read_keras_config

    info = json.loads(_core.savedmodel_inspect(path))
    graphs = info.get("meta_graphs") or []
    parsed = _Parsed(path, "savedmodel", source=("checkpoint", os.path.join(path, "variables", "variables")), trainable_exact=True)
    if graphs:
        parsed.producer = {"tensorflow_version": graphs[0].get("tensorflow_version"), "tensorflow_git_version": graphs[0].get("tensorflow_git_version")}
        parsed.extra["tags"] = graphs[0].get("tags")
    for g in graphs:
        for s in g.get("signatures") or []:
            if s["key"].startswith("__"):
                continue
            parsed.signatures.append({"name": s["key"], "tags": g.get("tags"), "inputs": _signature_io(s.get("inputs") or []), "outputs": _signature_io(s.get("outputs") or [])})
    fingerprint = info.get("fingerprint") or {}
    if fingerprint.get("singleprint"):
        parsed.extra["fingerprint"] = fingerprint["singleprint"]
    parsed.extra["assets"] = len(info.get("assets") or [])

    variables = sorted(info.get("variables") or [], key=lambda v: ((v.get("object") or {}).get("node_id", 1 << 62), _natural(v["name"])))
    record = read_keras_config(path)

    def var_of(v: dict[str, Any], hints: list[str]) -> _Var:
        shown = v["name"][: -len(_VALUE_SUFFIX)] if v["name"].endswith(_VALUE_SUFFIX) else v["name"]
        obj = v.get("object") or {}
        return _Var(shown, v["name"], list(v["shape"]), v["dtype"], v.get("bytes"), hints, None, obj.get("trainable"))

    if record is not None:
        parsed.config = record.get("config")
        parsed.producer.update({"keras_version": record.get("keras_version"), "kerasafe_version": record.get("kerasafe_version"), "writer": "kerasafe"})
        parsed.custom_doc = record
        paths = {f"model_variables/{i}{_VALUE_SUFFIX}": p for i, p in enumerate(record.get("model_variables") or [])}
        by_name = {v["name"]: v for v in variables}
        parsed.weights = [var_of(by_name[k], [c for c in p.split("/") if c]) for k, p in paths.items() if k in by_name]
        opt_keys = [f"optimizer_variables/{i}{_VALUE_SUFFIX}" for i in range(len(record.get("optimizer_variables") or []))]
        parsed.optimizer_vars = [var_of(by_name[k], []) for k in opt_keys if k in by_name]
        parsed.optimizer_config, parsed.compile = _compile_from((parsed.config or {}).get("compile_config"))
        parsed.notes.append(f"written by kerasafe ({KERAS_CONFIG} holds the Keras config)")
    else:
        metadata_path = Path(path) / "keras_metadata.pb"
        node_names: dict[str, str] = {}
        if metadata_path.is_file():
            nodes = _core.keras_metadata_nodes(os.fspath(metadata_path))
            for node_path, _, meta in nodes:
                try:
                    doc = _untuple(json.loads(meta))
                except ValueError:
                    continue
                if node_path == "root":
                    parsed.config = {"class_name": doc.get("class_name"), "config": doc.get("config")}
                    parsed.producer.update({"keras_version": doc.get("keras_version"), "backend": doc.get("backend"), "writer": "tf-keras"})
                    parsed.optimizer_config, parsed.compile = _compile_from(doc.get("training_config"))
                elif node_path.count(".") == 1 and isinstance(doc, dict):
                    node_names[node_path.split(".", 1)[1]] = str(doc.get("name"))
                    if doc.get("build_input_shape") is not None:
                        parsed.build_input_shapes[str(doc.get("name"))] = doc["build_input_shape"]
            try:  # the document the registry's scan reads
                parsed.custom_doc = json.loads(_core.registry_keras_metadata_document(os.fspath(metadata_path)))
            except Exception:
                parsed.custom_doc = {"model_config": parsed.config}
        seen: set[tuple[str, tuple[int, ...]]] = set()
        duplicates = 0
        for v in variables:
            obj = v.get("object") or {}
            if record is None and not metadata_path.is_file() and obj.get("variable_name"):
                ident = (str(obj["variable_name"]), tuple(v["shape"]))
                if ident in seen:  # model.export() tracks some variables under two lists
                    duplicates += 1
                    continue
                seen.add(ident)
            obj_path = obj.get("path") or []
            head = obj_path[0] if obj_path else ""
            if head == "optimizer" or obj.get("slot") or head in ("optimizer_variables",):
                parsed.optimizer_vars.append(var_of(v, []))
            elif head in ("keras_api", "save_counter"):
                parsed.other_vars.append(var_of(v, []))
            else:
                hints = ([node_names[head]] if head in node_names else []) + [c for c in str(obj.get("variable_name") or "").split("/") if c]
                parsed.weights.append(var_of(v, hints))
        if record is None and not metadata_path.is_file():
            parsed.notes.append("no Keras model inside (no keras_metadata.pb or keras_config.json): loads for inference only")
        if duplicates:
            parsed.notes.append(f"{duplicates} variables stored twice under the same name are counted once")
    defaults = _default_layers([v.hints for v in parsed.weights])
    for var, default in zip(parsed.weights, defaults):
        var.default_layer = default
    return parsed


_READERS = {
    "keras": _read_keras,
    "keras-dir": _read_keras_dir,
    "h5": _read_h5,
    "h5-weights": _read_h5_weights,
    "weights.h5": _read_weights_h5,
    "checkpoint": _read_checkpoint,
    "savedmodel": _read_savedmodel,
}


def _read(kind: str, path: str) -> _Parsed:
    parsed = _READERS[kind](path)
    if kind == "keras-dir":
        parsed.format = "keras"
    return parsed


def _read_artifact(directory: str) -> tuple[_Parsed, dict[str, Any]]:
    from . import _formats

    metadata = json.loads(_core.store_read_metadata(directory))
    fmt = metadata.get("format")
    if fmt not in ("savedmodel", "h5", "keras", "weights"):
        raise FormatError(f"{directory}/metadata.json: unknown format {fmt!r}")
    model_path = _formats.model_path(fmt, Path(directory))
    kind = {"savedmodel": "savedmodel", "keras": "keras", "h5": "h5", "weights": "checkpoint"}[fmt]
    parsed = _read(kind, os.fspath(model_path))
    if fmt == "weights":
        config_path = Path(directory) / _formats.WEIGHTS_CONFIG
        if config_path.is_file():
            parsed.config = _json(config_path.read_text(encoding="utf-8"), os.fspath(config_path))
            parsed.custom_doc = parsed.config
    return parsed, metadata


# -- the model's layers from its config ------------------------------------------------------------------


def _layer_name(entry: dict[str, Any]) -> str:
    cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    return str(entry.get("name") or cfg.get("name") or "?")


def _model_layers(config: Any) -> list[dict[str, Any]]:
    if not isinstance(config, dict):
        return []
    inner = config.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        return [entry for entry in inner["layers"] if isinstance(entry, dict)]
    return []


def _owners(layers: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """Every layer name (nested models' layers too) → its top-level layer; and → its class."""
    owner: dict[str, str] = {}
    classes: dict[str, str] = {}

    def visit(entry: dict[str, Any], top: str) -> None:
        name = _layer_name(entry)
        owner.setdefault(name, top)
        classes.setdefault(name, str(entry.get("class_name")))
        for sub in _model_layers(entry):
            visit(sub, top)
        cfg = entry.get("config")
        if isinstance(cfg, dict) and isinstance(cfg.get("layer"), dict):  # wrappers (Bidirectional, TimeDistributed)
            visit(cfg["layer"], top)

    for entry in layers:
        visit(entry, _layer_name(entry))
    return owner, classes


_PASSTHROUGH = {
    "Dropout", "Activation", "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "ActivityRegularization", "Masking",
    "Rescaling", "Normalization", "Identity",
}
_MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}


def _shape(value: Any) -> list[int | None] | None:
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, int) for v in value):
        return list(value)
    return None


def _tuple_arg(value: Any, n: int) -> list[int]:
    if isinstance(value, int):
        return [value] * n
    return [int(v) for v in value]


def _conv_dim(size: int | None, k: int, s: int, d: int, padding: str) -> int | None:
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // s)
    return max((size - d * (k - 1) - 1) // s + 1, 0)


def _rule(entry: dict[str, Any], ins: list[Any]) -> Any:
    """A layer's output shape from its input shapes, for the common built-in layers."""
    cls = str(entry.get("class_name", "")).split(">")[-1]
    cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    if cls == "InputLayer":
        shape = _shape(cfg.get("batch_shape") or cfg.get("batch_input_shape"))
        if shape is None and _shape(cfg.get("shape")) is not None:
            shape = [None, *cfg["shape"]]
        return shape
    first = _shape(ins[0]) if ins else None
    if cls in _PASSTHROUGH or cls in _MERGE:
        return first
    if first is None:
        return None
    if cls == "Dense" and isinstance(cfg.get("units"), int):
        return [*first[:-1], cfg["units"]]
    if cls == "Embedding" and isinstance(cfg.get("output_dim"), int):
        return [*first, cfg["output_dim"]]
    if cls in ("LSTM", "GRU", "SimpleRNN") and isinstance(cfg.get("units"), int) and not cfg.get("return_state"):
        return [first[0], first[1], cfg["units"]] if cfg.get("return_sequences") and len(first) >= 2 else [first[0], cfg["units"]]
    if cls == "Flatten":
        rest = first[1:]
        return [first[0], int(math.prod(rest)) if all(d is not None for d in rest) else None]
    if cls == "Reshape" and isinstance(cfg.get("target_shape"), (list, tuple)):
        target = list(cfg["target_shape"])
        if -1 in target:
            known = [d for d in first[1:]]
            if all(d is not None for d in known):
                rest = math.prod(d for d in target if d != -1)
                target[target.index(-1)] = int(math.prod(known)) // max(rest, 1)
            else:
                target[target.index(-1)] = None
        return [first[0], *target]
    if cls == "Concatenate":
        shapes = [_shape(s) for s in ins]
        axis = int(cfg.get("axis", -1))
        if any(s is None for s in shapes) or len({len(s) for s in shapes}) != 1:  # type: ignore[arg-type]
            return None
        out = list(shapes[0])  # type: ignore[arg-type]
        dims = [s[axis] for s in shapes]  # type: ignore[index]
        out[axis] = None if any(d is None for d in dims) else sum(dims)  # type: ignore[arg-type]
        return out
    channels_first = cfg.get("data_format") == "channels_first"
    m = re.match(r"^(Conv|MaxPooling|AveragePooling|GlobalAveragePooling|GlobalMaxPooling)([123])D$", cls)
    if m:
        n = int(m.group(2))
        spatial = first[2:] if channels_first else first[1:-1]
        channels = first[1] if channels_first else first[-1]
        if len(spatial) != n:
            return None
        if m.group(1).startswith("Global"):
            return [first[0], channels] if not cfg.get("keepdims") else None
        if m.group(1) == "Conv":
            k, s, d = _tuple_arg(cfg["kernel_size"], n), _tuple_arg(cfg.get("strides", 1), n), _tuple_arg(cfg.get("dilation_rate", 1), n)
            channels = cfg.get("filters")
        else:
            k = _tuple_arg(cfg.get("pool_size", 2), n)
            s = _tuple_arg(cfg.get("strides") or k, n)
            d = [1] * n
        dims = [_conv_dim(size, ki, si, di, str(cfg.get("padding", "valid"))) for size, ki, si, di in zip(spatial, k, s, d)]
        return [first[0], channels, *dims] if channels_first else [first[0], *dims, channels]
    if cls in _MODEL_CLASSES:
        shapes = _output_shapes(entry, [], {})
        outs = _final_outputs(entry, shapes)
        return outs[0] if len(outs) == 1 else None
    return None


def _keras_tensors(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__" and isinstance(value.get("config"), dict):
            return [value["config"]]
        return [t for v in value.values() for t in _keras_tensors(v)]
    if isinstance(value, list):
        return [t for v in value for t in _keras_tensors(v)]
    return []


def _keras2_refs(inbound: Any) -> list[tuple[str, int]]:
    """``[[["dense", 0, 0, {}], ...]]`` → ``[("dense", 0), ...]`` (first call only)."""
    if not isinstance(inbound, list) or not inbound or not isinstance(inbound[0], list):
        return []
    out = []
    for ref in inbound[0]:
        if isinstance(ref, list) and len(ref) >= 3 and isinstance(ref[0], str):
            out.append((ref[0], int(ref[2])))
    return out


def _output_shapes(model: dict[str, Any], signature_outputs: list[dict[str, Any]], build_input_shapes: dict[str, Any]) -> dict[str, Any]:
    layers = _model_layers(model)
    sequential = model.get("class_name") == "Sequential"
    recorded_out: dict[str, dict[int, Any]] = {}
    recorded_in: dict[str, list[Any]] = {}
    for entry in layers:
        name = _layer_name(entry)
        for tensor in _keras_tensors(entry.get("inbound_nodes")):
            history = tensor.get("keras_history") or []
            if len(history) >= 3 and _shape(tensor.get("shape")) is not None:
                recorded_out.setdefault(str(history[0]), {}).setdefault(int(history[2]), tensor["shape"])
                recorded_in.setdefault(name, []).append(tensor["shape"])
        build = (entry.get("build_config") or {}).get("input_shape") if isinstance(entry.get("build_config"), dict) else None
        build = build if build is not None else build_input_shapes.get(name)
        if name not in recorded_in and build is not None:
            recorded_in[name] = [build] if _shape(build) is not None else list(build) if isinstance(build, list) else []
    shapes: dict[str, Any] = {}
    previous: Any = None
    for i, entry in enumerate(layers):
        name = _layer_name(entry)
        if sequential:
            ins = recorded_in.get(name) or ([previous] if previous is not None else [])
        else:
            ins = recorded_in.get(name) or [shapes.get(ref) for ref, _ in _keras2_refs(entry.get("inbound_nodes"))]
        out: Any = (recorded_out.get(name) or {}).get(0)
        if out is None and sequential and i + 1 < len(layers):
            following = recorded_in.get(_layer_name(layers[i + 1]))
            if following and len(following) == 1:
                out = following[0]
        if out is None:
            try:
                out = _rule(entry, ins)
            except (KeyError, TypeError, ValueError, IndexError):
                out = None
        shapes[name] = _shape(out)
        previous = shapes[name]
    if sequential:  # a shape-preserving layer's input is its output
        for i in range(len(layers) - 2, -1, -1):
            name, following = _layer_name(layers[i]), layers[i + 1]
            if shapes.get(name) is None and str(following.get("class_name")) in _PASSTHROUGH and not recorded_in.get(_layer_name(following)):
                shapes[name] = shapes.get(_layer_name(following))
    # The model's own outputs, from a signature, where the config leaves them open.
    finals = _final_layers(model, layers)
    by_name = {o["name"]: o for o in signature_outputs}
    for i, name in enumerate(finals):
        if shapes.get(name) is None:
            match = by_name.get(name) or (signature_outputs[i] if len(signature_outputs) == len(finals) else None)
            if match is not None and match.get("shape") is not None:
                shapes[name] = list(match["shape"])
    return shapes


def _final_layers(model: dict[str, Any], layers: list[dict[str, Any]]) -> list[str]:
    inner = model.get("config") if isinstance(model.get("config"), dict) else {}
    refs = inner.get("output_layers")
    if isinstance(refs, list) and refs:
        refs = [refs] if isinstance(refs[0], str) else refs
        return [str(r[0]) for r in refs if isinstance(r, list) and r]
    return [_layer_name(layers[-1])] if layers else []


def _final_outputs(model: dict[str, Any], shapes: dict[str, Any]) -> list[Any]:
    return [shapes.get(name) for name in _final_layers(model, _model_layers(model))]


def _config_io(config: Any) -> list[dict[str, Any]]:
    """The model's inputs from its InputLayers."""
    out = []
    for entry in _model_layers(config):
        if str(entry.get("class_name")) == "InputLayer":
            cfg = entry.get("config") or {}
            shape = _rule(entry, [])
            dtype = cfg.get("dtype")
            if isinstance(dtype, dict):
                dtype = (dtype.get("config") or {}).get("name")
            out.append({"name": _layer_name(entry), "shape": shape, "dtype": dtype})
    return out


# -- trainable flags where the file does not record them -------------------------------------------------


_NON_TRAINABLE_NAMES = ("moving_mean", "moving_variance", "seed_generator_state")


def _guess_trainable(var: _Var, classes: dict[str, str], frozen: set[str]) -> bool:
    if var.layer in frozen or (var.inner_name and var.inner_name in frozen):
        return False
    short = var.name.split("/")[-1].split(":")[0]
    if short.startswith(_NON_TRAINABLE_NAMES) or "seed_generator" in var.name:
        return False
    cls = classes.get(var.inner_name or "", "").split(">")[-1]
    batch_norm = cls == "BatchNormalization" or (not cls and re.sub(r"_\d+$", "", var.inner_key or "") == "batch_normalization")
    if batch_norm and var.inner_count >= 2 and var.inner_index >= var.inner_count - 2:
        return False  # Keras 3's layout: [gamma, beta,] moving_mean, moving_variance
    return True


def _frozen_layers(layers: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()

    def visit(entry: dict[str, Any], parent_frozen: bool) -> None:
        cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        frozen = parent_frozen or cfg.get("trainable") is False
        if frozen:
            out.add(_layer_name(entry))
        for sub in _model_layers(entry):
            visit(sub, frozen)

    for entry in layers:
        visit(entry, False)
    return out


# -- custom objects ---------------------------------------------------------------------------------------

_BUILTIN_OPTIMIZERS = {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion", "Adafactor", "LossScaleOptimizer"}


def _custom_objects(doc: Any) -> list[str]:
    """Names the stored config needs from user code, via the registry's resolver (Keras
    built-ins excluded); a plain walk over ``registered_name`` / ``package>name`` otherwise."""
    if doc is None:
        return []
    try:
        refs = json.loads(_core.registry_resolve(json.dumps(doc), "{}"))
        out: list[str] = []
        for ref in refs:
            if (ref.get("resolution") or {}).get("status") == "missing" and ref.get("name") not in out:
                out.append(str(ref["name"]))
        return out
    except Exception as exc:  # the resolver is optional; fall back to a plain walk
        _log.logger().debug("registry resolver unavailable (%s); custom objects from a plain config walk", exc)
    found: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            name = value.get("registered_name")
            cls = value.get("class_name")
            module = str(value.get("module") or "")
            candidate = None
            if isinstance(name, str) and name and name != cls and not name.startswith("keras"):
                candidate = name
            elif isinstance(cls, str) and ">" in cls and not (cls.startswith("Custom>") and cls.split(">")[-1] in _BUILTIN_OPTIMIZERS):
                candidate = cls
            elif isinstance(cls, str) and module and not module.startswith(("keras", "tf_keras", "tensorflow", "builtins")):
                candidate = cls
            if candidate and candidate not in found:
                found.append(candidate)
            for v in value.values():
                visit(v)
        elif isinstance(value, list):
            for v in value:
                visit(v)

    visit(doc)
    return found


# -- assembling the report -----------------------------------------------------------------------------


def _weight_record(v: _Var) -> dict[str, Any]:
    return {"name": v.name, "shape": v.shape, "dtype": v.dtype, "bytes": v.nbytes, "layer": v.layer, "trainable": v.trainable}


def _size(shape: list[int]) -> int:
    return int(math.prod(shape))


def _optimizer_summary(parsed: _Parsed) -> dict[str, Any] | None:
    if parsed.optimizer_config is None and not parsed.optimizer_vars:
        return None
    cfg = parsed.optimizer_config or {}
    inner = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    lr = inner.get("learning_rate")
    if isinstance(lr, dict):  # a schedule
        lr = lr.get("class_name") or lr.get("config")
    name = cfg.get("class_name")
    if isinstance(name, str) and name.startswith("Custom>") and name.split(">")[-1] in _BUILTIN_OPTIMIZERS:
        name = name.split(">")[-1]  # tf-keras's spelling of its new optimizers
    return {
        "class_name": name,
        "learning_rate": lr,
        "variables": len(parsed.optimizer_vars),
        "bytes": sum(v.nbytes or 0 for v in parsed.optimizer_vars),
        "parameters": sum(_size(v.shape) for v in parsed.optimizer_vars),
    }


def _describe(value: Any) -> Any:
    if isinstance(value, dict) and "class_name" in value:
        cfg = value.get("config")
        if isinstance(cfg, str):  # {"class_name": "function", "config": "mse"}
            return cfg
        return (cfg.get("name") if isinstance(cfg, dict) and isinstance(cfg.get("name"), str) else None) or value.get("registered_name") or value["class_name"]
    if isinstance(value, list):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {k: _describe(v) for k, v in value.items()}
    return value


def _report(parsed: _Parsed) -> dict[str, Any]:
    config = _untuple(parsed.config) if parsed.config is not None else None
    layers_cfg = _model_layers(config)
    owner, classes = _owners(layers_cfg)
    frozen = _frozen_layers(layers_cfg)
    if isinstance(config, dict) and isinstance(config.get("config"), dict) and config["config"].get("trainable") is False:
        frozen |= set(owner)
    for var in parsed.weights:
        var.layer = next((owner[h] for h in var.hints if h in owner), None) if owner else None
        if var.layer is None:
            var.layer = owner.get(var.default_layer or "", var.default_layer)
        if var.trainable is None or not parsed.trainable_exact:
            var.trainable = _guess_trainable(var, classes, frozen)

    position = {_layer_name(entry): i for i, entry in enumerate(layers_cfg)}
    parsed.weights.sort(key=lambda v: position.get(v.layer or "", len(position)))  # stable: keeps each layer's order
    signature_outputs = parsed.outputs or (parsed.signatures[0]["outputs"] if parsed.signatures else [])
    shapes: dict[str, Any] = {}
    if config:
        try:
            shapes = _output_shapes(config, signature_outputs, parsed.build_input_shapes)
        except Exception as exc:  # an unusual config: describe the rest anyway
            _log.logger().debug("%s: output shapes not inferred: %s", parsed.path, exc)
            parsed.notes.append("output shapes not inferred from this config")
    params: dict[str | None, list[int]] = {}
    for var in parsed.weights:
        entry = params.setdefault(var.layer, [0, 0, 0])
        entry[0] += _size(var.shape)
        entry[1] += _size(var.shape) if var.trainable else 0
        entry[2] += 1
    layers: list[dict[str, Any]] = []
    for entry in layers_cfg:
        name = _layer_name(entry)
        total, trainable, count = params.pop(name, [0, 0, 0])
        layers.append({"name": name, "class_name": entry.get("class_name"), "output_shape": shapes.get(name), "params": total, "trainable_params": trainable, "weights": count})
    for name, (total, trainable, count) in params.items():  # weights the config does not explain
        layers.append({"name": name if name is not None else "(model)", "class_name": None, "output_shape": None, "params": total, "trainable_params": trainable, "weights": count})

    total = sum(_size(v.shape) for v in parsed.weights)
    trainable = sum(_size(v.shape) for v in parsed.weights if v.trainable)
    notes = list(parsed.notes)
    if parsed.weights and not parsed.trainable_exact:
        notes.append("trainable/non-trainable split inferred from layer classes and names (the file does not record it)")
    model = None
    if isinstance(config, dict):
        inner = config.get("config") if isinstance(config.get("config"), dict) else {}
        model = {"class_name": config.get("class_name"), "name": inner.get("name")}
    contains = "model" if parsed.format in _FULL_MODEL and (config is not None or parsed.format == "savedmodel") else "weights"
    inputs = parsed.inputs if parsed.inputs is not None else (_config_io(config) or (parsed.signatures[0]["inputs"] if parsed.signatures else []))
    outputs = parsed.outputs if parsed.outputs is not None else []
    if not outputs and config is not None:
        finals = _final_layers(config, layers_cfg)
        signed = {o["name"]: o for o in signature_outputs}
        outputs = [{"name": name, "shape": shapes.get(name), "dtype": (signed.get(name) or {}).get("dtype")} for name in finals]
    if not outputs and parsed.signatures:
        outputs = parsed.signatures[0]["outputs"]
    producer = {k: v for k, v in parsed.producer.items() if v is not None}
    return {
        "path": parsed.path,
        "format": parsed.format,
        "format_description": FORMATS.get(parsed.format, parsed.format),
        "contains": contains,
        "producer": producer,
        "model": model,
        "inputs": inputs,
        "outputs": outputs,
        "layers": layers,
        "parameters": {"total": total, "trainable": trainable, "non_trainable": total - trainable},
        "weights": [_weight_record(v) for v in parsed.weights],
        "weights_bytes": sum(v.nbytes or 0 for v in parsed.weights),
        "optimizer": _optimizer_summary(parsed),
        "compile": _describe(parsed.compile) if parsed.compile else None,
        "other_state": [_weight_record(v) for v in parsed.other_vars],
        "signatures": parsed.signatures,
        "custom_objects": _custom_objects(parsed.custom_doc),
        "artifact": None,
        "metadata": None,
        "validation": None,
        "details": parsed.extra,
        "notes": notes,
    }


def _validation_summary(metadata: dict[str, Any]) -> dict[str, Any] | None:
    stored = metadata.get("validation")
    if not isinstance(stored, dict):
        return None
    out = {k: stored.get(k) for k in ("passed", "max_abs_diff", "max_rel_diff", "atol", "rtol")}
    out["outputs"] = len(stored.get("outputs") or [])
    out["device"] = stored.get("device")
    return out


def _artifact_report(directory: str) -> dict[str, Any]:
    parsed, metadata = _read_artifact(directory)
    if metadata.get("input_signature"):
        parsed.inputs = metadata["input_signature"]
    if metadata.get("output_signature"):
        parsed.outputs = metadata["output_signature"]
    report = _report(parsed)
    files = (metadata.get("manifest") or {}).get("files") or {}
    report["artifact"] = {
        "name": metadata.get("model_name"),
        "format": metadata.get("format"),
        "version": metadata.get("version"),
        "path": directory,
        "model_path": parsed.path,
        "files": len(files),
        "size": sum(int(f.get("size", 0)) for f in files.values()),
        "created_at": metadata.get("created_at"),
        "released": bool(metadata.get("released")),
    }
    report["metadata"] = {k: v for k, v in metadata.items() if k not in ("manifest", "validation")}
    report["validation"] = _validation_summary(metadata)
    stored_params = metadata.get("parameters")
    if isinstance(stored_params, dict) and {"total", "trainable", "non_trainable"} <= set(stored_params):
        report["parameters"] = {k: int(stored_params[k]) for k in ("total", "trainable", "non_trainable")}
        report["notes"] = [n for n in report["notes"] if not n.startswith("trainable/non-trainable split")]
    report["producer"] = {
        **report["producer"],
        **{k: metadata[k] for k in ("keras_version", "tensorflow_version", "kerasafe_version", "backend") if metadata.get(k) is not None},
    }
    for name in metadata.get("custom_objects") or []:
        if name not in report["custom_objects"]:
            report["custom_objects"].append(name)
    return report


def inspect(path: PathLike) -> dict[str, Any]:
    """Describe the model file, checkpoint or artifact at ``path`` without TensorFlow or Keras.

    ``path`` is a SavedModel directory, a ``.keras`` archive (or an unzipped one), a legacy
    ``.h5`` model or weights file, a ``.weights.h5`` file, a TF checkpoint prefix (or its
    ``.index`` file, or a directory with a ``checkpoint`` state file), or a kerasafe artifact
    version (``root/name/format/vN``; ``root/name/format`` means its latest version).

    Returns a JSON-serializable dict: ``format``, ``contains`` (``"model"`` or ``"weights"``),
    ``producer`` (Keras/TensorFlow versions), ``model``, ``inputs``, ``outputs``, ``layers``
    (name, class, output shape where known, params), ``parameters`` (total, trainable,
    non-trainable), ``weights`` (name, shape, dtype, bytes, layer), ``optimizer`` (class,
    learning rate, state size), ``signatures`` (SavedModel), ``custom_objects`` the model
    needs, and for artifacts ``artifact``, ``metadata`` and ``validation``. Nothing is
    deserialized and no tensor values are read.

    >>> import numpy as np, kerasafe
    >>> kerasafe.checkpoint.write("/tmp/demo/ckpt", {"dense/kernel": np.ones((2, 3), "float32")})
    >>> kerasafe.inspect("/tmp/demo/ckpt")["parameters"]["total"]
    6

    Object-storage URLs are downloaded to a temporary directory first (an artifact version
    through its checked download).
    """
    from . import _remote

    if _remote.is_remote(path):
        return _inspect_remote(str(path).rstrip("/"))
    kind, target = locate(path)
    if kind == "artifact":
        return _artifact_report(target)
    return _report(_read(kind, target))


def _inspect_remote(url: str) -> dict[str, Any]:
    from . import _remote

    with _remote.local_copy(url) as local:
        info = inspect(local)
    info["path"] = url
    return info


# -- values ----------------------------------------------------------------------------------------------


def load(path: PathLike) -> tuple[dict[str, Any], _Parsed, dict[str, Any] | None]:
    """``(inspect(path), what the reader parsed, the artifact's metadata or None)``."""
    kind, target = locate(path)
    if kind == "artifact":
        parsed, metadata = _read_artifact(target)
        return _artifact_report(target), parsed, metadata
    parsed = _read(kind, target)
    return _report(parsed), parsed, None


def read_values(parsed: _Parsed) -> dict[str, np.ndarray]:
    """``{weight name: array}`` for the model weights (not the optimizer's) of a :func:`load`."""
    source_kind, source = parsed.source
    keys = {v.key: v.name for v in parsed.weights}
    values: dict[str, np.ndarray] = {}
    if source_kind == "checkpoint":
        for key, arr in checkpoint.read(source, list(keys)).items():
            values[keys[key]] = arr
        return values
    if source_kind == "keras":
        _, _, raw, _ = _core.keras_archive_read(source, True)
        root = _tree(raw) if raw is not None else _Group({}, {})
    else:
        root = _tree(_core.h5_read(source, True))
    for key, name in keys.items():
        node = root.get(key)
        if isinstance(node, _Data):
            values[name] = node.array()
    return values


# -- verifying a plain file -----------------------------------------------------------------------------

_CHUNK_BYTES = 256 << 20


def verify_file(path: PathLike) -> dict[str, Any]:
    """Read every byte of a model file or checkpoint the way its format allows checking it:
    each checkpoint tensor's CRC32C, each ``.keras`` member's CRC-32, HDF5 structure and
    values. Returns a dict shaped like :meth:`kerasafe.Report.to_dict`; a file the reader
    rejects is reported (``ok`` false), not raised. Artifact versions go to
    :func:`kerasafe.verify_artifact` instead."""
    text = os.fspath(path)
    kind, target = locate(text)
    problems: list[str] = []
    notes: list[str] = []
    has_checksums = kind in ("checkpoint", "savedmodel", "keras")
    try:
        parsed = _read(kind, target)
        source_kind, source = parsed.source
        if source_kind == "checkpoint":
            reader = _core.CheckpointReader(source)
            batch: list[str] = []
            size = 0
            entries = reader.entries()
            for name, _, _, nbytes in entries:
                batch.append(name)
                size += int(nbytes)
                if size >= _CHUNK_BYTES:
                    checkpoint.read_from(reader, source, batch)
                    batch, size = [], 0
            if batch:
                checkpoint.read_from(reader, source, batch)
            notes.append(f"CRC32C verified for {len(entries)} tensors")
        elif source_kind == "keras":
            _core.keras_archive_read(source, True)
            notes.append("CRC-32 verified for every archive member")
        else:
            _core.h5_read(source, True)
            notes.append("HDF5 structure and every dataset read (the format stores no checksums)")
        report = _report(parsed)
        notes.append(f"{len(report['weights'])} weights, {report['parameters']['total']:,} parameters")
    except (FormatError, ValueError, OSError) as exc:  # ChecksumError is a ValueError; a missing shard an OSError
        problems.append(str(exc))
    checksums_ok = (not problems) if has_checksums else None
    return {"path": text, "format": kind.replace("keras-dir", "keras"), "ok": not problems, "checksums_ok": checksums_ok, "problems": problems, "notes": notes, "comparison": None}
