"""The Keras 3 ``.keras`` archive: Keras's own config serializer and state walk, Rust file I/O."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import _artifact_writes, _core, _h5tree, _keras_state, _progress, _tf_keras, dialect
from ._remote import name_of


def save(model: Any, path: str) -> None:
    config_json, metadata_json = _keras_state.serialize(model)
    with _keras_state.temp_dir() as tmp:
        assets_dir = Path(tmp) / "assets"
        weights = _keras_state.capture(model, assets_dir)
        assets = [(p.relative_to(assets_dir).as_posix(), str(p)) for p in sorted(assets_dir.rglob("*")) if p.is_file()] if assets_dir.exists() else []
        _core.keras_archive_write(path, config_json, metadata_json, _h5tree._to_core(weights), assets, progress=_progress.current(), for_artifact=_artifact_writes.active())


def read_config(path: str | os.PathLike[str] | _core.MemoryFile) -> dict[str, Any]:
    """The archive's ``config.json``, without reading the weights."""
    config_json, _, _, _ = _core.keras_archive_read(path, False, weights=False)
    return json.loads(config_json)


def _metadata(metadata_json: Any) -> dict[str, Any]:
    try:
        value = json.loads(metadata_json) if metadata_json else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


@contextmanager
def _extracted_assets(path: str | os.PathLike[str] | _core.MemoryFile, assets: list[str]) -> Iterator[Path | None]:
    """The archive's ``assets/`` members in a temporary directory for Keras's loaders, removed
    afterwards; None, and no directory made, when there are none."""
    if not assets:
        yield None
        return
    with _keras_state.temp_dir() as tmp:
        assets_dir = Path(tmp) / "assets"
        _core.keras_archive_extract_assets(path, str(assets_dir))
        yield assets_dir


def load(path: str | os.PathLike[str] | _core.MemoryFile, *, custom_objects: Any, compile: bool, safe_mode: bool, config_hook: Any = None) -> Any:
    """The model in the archive at ``path``, on disk or fetched into memory.

    Large weight values stay in the archive until Keras assigns them: each is read then, and
    let go once assigned (the weights member's CRC is checked as a whole before any is read)."""
    ranges = _h5tree.ranges_of(path)
    config_json, metadata_json, weights, assets = _core.keras_archive_read(path, True, progress=_progress.current(), deferred=True)
    with _extracted_assets(path, assets) as assets_dir:
        writer = _metadata(metadata_json).get("keras_version")
        into_tf_keras = _tf_keras.active()
        keras3_into_tf_keras = into_tf_keras and not dialect.is_keras2_version(writer)
        if not into_tf_keras and dialect.is_keras2_version(writer):
            config_json = json.dumps(dialect.keras2_archive_to_keras3(json.loads(config_json)))
        if config_hook is not None:
            config_json = json.dumps(config_hook(json.loads(config_json)))
        if keras3_into_tf_keras:
            model = _tf_keras.keras3_config_to_keras2(
                json.loads(config_json), name_of(path), str(writer or "3"), lambda c: _keras_state.model_from_config(json.dumps(c), custom_objects, compile, safe_mode)
            )
        else:
            model = _keras_state.model_from_config(config_json, custom_objects, compile, safe_mode)
        root = _h5tree._from_core(weights, ranges) if weights is not None else _h5tree.Group()
        del weights  # the tree holds the small arrays and where the large ones are now
        assert isinstance(root, _h5tree.Group)
        if not compile:
            root.children.pop("optimizer", None)  # no optimizer to restore into
        source = f"{path} (model.weights.h5)"
        other_optimizer = None
        keras2_into_keras3 = not into_tf_keras and dialect.is_keras2_version(writer)
        if (keras3_into_tf_keras or keras2_into_keras3) and isinstance(root.children.get("optimizer"), _h5tree.Group):
            # Keras 3 has a learning-rate variable that Keras 2 / tf-keras optimizers lack, and each
            # side skips a store of another length: restored below, lined up, instead.
            other_optimizer = root.children["optimizer"]
            empty = _h5tree.Group()
            empty.create_group("vars")
            root.children["optimizer"] = empty
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            _keras_state.restore(model, root, source, assets_dir)
        if other_optimizer is not None and getattr(model, "optimizer", None) is not None:
            if keras3_into_tf_keras:
                _tf_keras.restore_keras3_optimizer(model, other_optimizer, source)
            else:
                _restore_keras2_archive_optimizer(model, other_optimizer, source)
    return model


def _restore_keras2_archive_optimizer(model: Any, group: _h5tree.Group, source: str) -> None:
    """A Keras 2.13+ archive's ``optimizer/vars/0…N`` (iterations, then the slots) into Keras 3."""
    from . import _h5

    values = _h5tree.indexed_values(group)
    if values is None:
        return
    names = ["iteration"] + [f"slot/{i}" for i in range(1, len(values))]
    _h5.restore_optimizer_values(model, names, values, source)
