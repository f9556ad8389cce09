"""``kerasafe diff A B``: what differs between two model files, checkpoints or artifact versions.

Weights are matched by name when the two sides name them alike (same format), else by owning
layer and position (``dense`` weight 0 in an ``.h5`` is ``dense`` weight 0 in a ``.keras``).
Read without TensorFlow or Keras.
"""

from __future__ import annotations

import math
import os
from typing import Any, Union

import numpy as np

from . import _inspect

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["diff"]


def _max_abs_change(a: np.ndarray, b: np.ndarray) -> float | str | None:
    """Largest ``|b - a|``; NaN where only one side is NaN is reported as ``"nan"``."""
    if a.dtype == object or b.dtype == object:
        return None if np.array_equal(a, b) else "changed"
    if a.size == 0:
        return 0.0
    x, y = a.astype(np.float64), b.astype(np.float64)
    both_nan = np.isnan(x) & np.isnan(y)
    d = np.abs(y - x)
    d[both_nan] = 0.0
    if np.isnan(d).any():
        return "nan"
    value = float(d.max())
    return "inf" if math.isinf(value) else value


def _keyed(report: dict[str, Any], by: str) -> dict[Any, dict[str, Any]]:
    if by == "name":
        return {w["name"]: w for w in report["weights"]}
    out: dict[Any, dict[str, Any]] = {}
    counters: dict[Any, int] = {}
    for w in report["weights"]:
        i = counters.get(w["layer"], 0)
        counters[w["layer"]] = i + 1
        out[(w["layer"], i)] = w
    return out


def _label(key: Any) -> str:
    return key if isinstance(key, str) else f"{key[0]}[{key[1]}]"


def _compare_weights(ra: dict[str, Any], rb: dict[str, Any], va: dict[str, np.ndarray] | None, vb: dict[str, np.ndarray] | None) -> dict[str, Any]:
    # By owning layer where every weight has one: robust to Keras 3's class-derived group names
    # (``layers/dense_1``) shifting when a layer is inserted, and to a change of format.
    with_layers = all(w["layer"] is not None for w in ra["weights"] + rb["weights"])
    by = "layer" if with_layers else "name"
    ka, kb = _keyed(ra, by), _keyed(rb, by)
    added = [_label(k) for k in kb if k not in ka]
    removed = [_label(k) for k in ka if k not in kb]
    reshaped, retyped, variables = [], [], []
    for key, wa in ka.items():
        wb = kb.get(key)
        if wb is None:
            continue
        if list(wa["shape"]) != list(wb["shape"]):
            reshaped.append({"name": _label(key), "a_shape": wa["shape"], "b_shape": wb["shape"]})
            continue
        if wa["dtype"] != wb["dtype"]:
            retyped.append({"name": _label(key), "a_dtype": wa["dtype"], "b_dtype": wb["dtype"]})
        record: dict[str, Any] = {"name": _label(key), "shape": wa["shape"], "dtype": wb["dtype"]}
        if by == "layer":
            record["a_name"], record["b_name"] = wa["name"], wb["name"]
        if va is not None and vb is not None and wa["name"] in va and wb["name"] in vb:
            record["max_abs_change"] = _max_abs_change(np.asarray(va[wa["name"]]), np.asarray(vb[wb["name"]]))
        variables.append(record)
    changed = [v for v in variables if v.get("max_abs_change") not in (None, 0.0)]
    numeric = [v["max_abs_change"] for v in changed if isinstance(v["max_abs_change"], float)]
    return {
        "matched_by": by,
        "compared": len(variables),
        "added": added,
        "removed": removed,
        "reshaped": reshaped,
        "dtype_changed": retyped,
        "changed": len(changed),
        "unchanged": sum(1 for v in variables if v.get("max_abs_change") == 0.0),
        "max_abs_change": max(numeric) if numeric else (0.0 if variables and va is not None else None),
        "variables": variables,
    }


def _named_items(items: list[Any]) -> dict[str, Any] | None:
    """Layer lists are compared by layer name, so one inserted layer is one difference."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    names = [_inspect._layer_name(i) for i in items]
    if "?" in names or len(set(names)) != len(names):
        return None
    return dict(zip(names, items))


# Keras writes these differently on every save of the same model.
_NOISE_KEYS = {"shared_object_id"}
# Serialization envelope that one format writes and another does not (Keras 3 vs legacy configs):
# a difference only when both sides have it.
_ENVELOPE_KEYS = {"module", "registered_name", "build_config"}


def _tree_diff(a: Any, b: Any, path: str, out: list[dict[str, Any]], named: bool = False) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key in _NOISE_KEYS or (key in _ENVELOPE_KEYS and (key not in a or key not in b)):
                continue
            sub = f"{path}[{key}]" if named else f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append({"path": sub, "a": a[key], "b": None, "change": "removed"})
            elif key not in a:
                out.append({"path": sub, "a": None, "b": b[key], "change": "added"})
            else:
                _tree_diff(a[key], b[key], sub, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        na, nb = _named_items(a), _named_items(b)
        if na is not None and nb is not None:
            _tree_diff(na, nb, path, out, named=True)
            return
        if len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                _tree_diff(x, y, f"{path}[{i}]", out)
            return
    if a != b:
        out.append({"path": path, "a": a, "b": b, "change": "changed"})


def _config_of(parsed: Any) -> Any:
    """The architecture; the compile settings are compared through :func:`_compile_of`, since
    Keras 3 keeps them in the config and legacy files in a separate training_config."""
    if parsed.config is None:
        return None
    config = _inspect._untuple(parsed.config)
    return {k: v for k, v in config.items() if k != "compile_config"} if isinstance(config, dict) else config


def _compile_of(report: dict[str, Any]) -> dict[str, Any] | None:
    optimizer = report.get("optimizer") or {}
    if not report.get("compile") and not optimizer.get("class_name"):
        return None
    return {"optimizer": optimizer.get("class_name"), "learning_rate": optimizer.get("learning_rate"), **(report.get("compile") or {})}


def diff(a: PathLike, b: PathLike, *, values: bool = True) -> dict[str, Any]:
    """Compare two models, checkpoints or artifact versions (any format :func:`kerasafe.inspect`
    reads). ``values=False`` compares names, shapes and dtypes only.

    Returns ``a`` / ``b`` (path, format, parameters), ``weights`` (added, removed, reshaped,
    dtype changes, per-variable ``max_abs_change``), ``config`` and ``metadata`` differences
    (``{"path", "a", "b", "change"}`` each), ``identical`` (no weight or config difference;
    metadata such as ``created_at`` does not count) and ``notes``.
    """
    ra, pa, ma = _inspect.load(a)
    rb, pb, mb = _inspect.load(b)
    va = _inspect.read_values(pa) if values else None
    vb = _inspect.read_values(pb) if values else None
    weights = _compare_weights(ra, rb, va, vb)
    config: list[dict[str, Any]] = []
    notes: list[str] = []
    ca, cb = _config_of(pa), _config_of(pb)
    if ca is not None and cb is not None:
        _tree_diff(ca, cb, "", config)
    elif ca is not None or cb is not None:
        notes.append(f"config not compared: {'b' if ca is not None else 'a'} holds weights only")
    compile_a, compile_b = _compile_of(ra), _compile_of(rb)
    if compile_a is not None and compile_b is not None:
        _tree_diff(compile_a, compile_b, "compile", config)
    metadata: list[dict[str, Any]] = []
    if ma is not None or mb is not None:
        strip = lambda m: {k: v for k, v in (m or {}).items() if k != "manifest"}  # noqa: E731
        _tree_diff(strip(ma), strip(mb), "", metadata)
    identical = not (weights["added"] or weights["removed"] or weights["reshaped"] or weights["dtype_changed"] or weights["changed"] or config)
    side = lambda r: {"path": r["path"], "format": r["format"], "artifact": r["artifact"], "parameters": r["parameters"], "producer": r["producer"]}  # noqa: E731
    return {"a": side(ra), "b": side(rb), "weights": weights, "config": config, "metadata": metadata, "identical": identical, "notes": notes}
