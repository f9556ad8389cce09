"""Custom objects and safe loading.

* :func:`register_serializable` registers classes and functions under ``"package>name"`` with
  kerasafe *and* with the installed Keras, so Keras's own loaders see them too.
* :func:`custom_object_scope` makes objects available for the loads inside a ``with`` block.
* :func:`preflight` is what every kerasafe loader runs on a stored config before deserializing
  anything: one :class:`~kerasafe.errors.UnsafeArtifactError` listing everything in the file that
  would run code (safe mode), else one :class:`~kerasafe.errors.MissingCustomObjectError` naming
  every custom object nobody provided, where it is used and the closest available names.
* :func:`check_on_save` is what ``save_model`` runs before writing anything.
* :func:`scan` reports a file's findings statically: no TensorFlow, nothing deserialized.

The name logic (``package>name``, lookup order, collisions, the walk over configs and the
safe-mode policy) lives in the Rust core (``src/registry/``); this module holds the Python
objects and talks to Keras. Keras is imported only when an object is registered or a model is
checked, never by ``import kerasafe``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import sys
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import _core
from .errors import (
    FormatError,
    InvalidArgumentError,
    KerasafeError,
    KerasafeWarning,
    MissingCustomObjectError,
    UnsafeArtifactError,
)

__all__ = [
    "register_serializable",
    "custom_object_scope",
    "get_registered_object",
    "get_registered_name",
    "registered_names",
    "preflight",
    "preflight_file",
    "check_on_save",
    "scan",
    "ScanReport",
    "Finding",
]

T = TypeVar("T")

# name → object id in the core; id → object here (the dict keeps registered objects alive, so
# their ids stay valid).
_NAMES = _core.NameRegistry()
_OBJECTS: dict[int, Any] = {}
_LOCK = threading.RLock()
_LOCAL = threading.local()

# Keras packages: objects defined there are Keras's own, not custom objects.
_KERAS_ROOTS = ("keras", "tf_keras", "tensorflow", "keras_hub", "keras_cv", "keras_nlp")
_MAX_CONFIG_BYTES = 256 << 20


# -- registration -----------------------------------------------------------------------------------


def register_serializable(package: str | Callable[..., Any] = "Custom", name: str | None = None) -> Callable[[T], T]:
    """Register a class or function under ``"{package}>{name}"`` (``name`` defaults to its
    ``__name__``), with kerasafe and with the installed Keras.

    Works for layers, models, losses, metrics, initializers, regularizers, constraints,
    optimizers and plain functions (activations, loss functions)::

        @kerasafe.register_serializable(package="Course")
        class ScaledDense(keras.layers.Layer): ...

    Registering the same object again is a no-op; a *different* object under a taken name raises
    :class:`~kerasafe.errors.InvalidArgumentError` — unless it is the same top-level definition
    executed again (same module and qualified name, e.g. a re-run notebook cell or a reloaded
    module), which replaces it. Classes defined inside a function are new objects on every call
    and collide like any other two.
    """
    if not isinstance(package, str):  # used bare: @register_serializable
        return register_serializable()(package)  # type: ignore[return-value]

    def decorator(obj: T) -> T:
        short = name if name is not None else getattr(obj, "__name__", None)
        if not isinstance(short, str) or not short:
            raise InvalidArgumentError(f"cannot register {obj!r}: it has no __name__; pass name=")
        full = _core.registry_make_name(package, short)
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise InvalidArgumentError(f"cannot register class {obj.__qualname__}: it has no get_config() method")
        if not inspect.isclass(obj) and not callable(obj):
            raise InvalidArgumentError(f"cannot register {obj!r}: only classes and functions can be registered")
        origin = f"{getattr(obj, '__module__', None) or '?'}.{getattr(obj, '__qualname__', short)}"
        with _LOCK:
            _outcome, previous = _NAMES.register(full, id(obj), origin)
            if previous is not None and _NAMES.name_of(previous) is None:
                _OBJECTS.pop(previous, None)
            _OBJECTS[id(obj)] = obj
        _register_with_keras(obj, package, short)
        return obj

    return decorator


def _keras_modules_for(obj: Any) -> list[Any]:
    """The Keras module(s) to register ``obj`` with: the one its class derives from; for
    functions the Keras in use (importing it) plus any other Keras already imported."""
    roots = {c.__module__.split(".")[0] for c in inspect.getmro(obj)} if inspect.isclass(obj) else set()
    mods: list[Any] = []
    if "tf_keras" in roots:
        mods.append(sys.modules.get("tf_keras"))
    elif "keras" in roots:
        mods.append(sys.modules.get("keras"))
    else:
        from .keras_bridge import keras_module

        try:
            mods.append(keras_module())
        except ImportError:
            pass
        mods.extend(sys.modules.get(n) for n in ("keras", "tf_keras"))
    out: list[Any] = []
    for m in mods:
        if m is not None and all(m is not o for o in out):
            out.append(m)
    return out


def _keras_registry_api(keras: Any) -> Any:
    saving = getattr(keras, "saving", None)
    if saving is not None and hasattr(saving, "register_keras_serializable"):
        return saving
    return keras.utils


def _register_with_keras(obj: Any, package: str, short: str) -> None:
    for keras in _keras_modules_for(obj):
        _keras_registry_api(keras).register_keras_serializable(package=package, name=short)(obj)


def _keras_in_use() -> list[Any]:
    """The Keras modules already imported (never imports one)."""
    return [m for m in (sys.modules.get("keras"), sys.modules.get("tf_keras")) if m is not None and hasattr(m, "__version__")]


def _keras_custom_objects() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for keras in _keras_in_use():
        try:
            out.update(_keras_registry_api(keras).get_custom_objects())
        except Exception:  # a half-imported Keras
            continue
    return out


def registered_names() -> list[str]:
    """Every name registered through kerasafe, sorted."""
    return list(_NAMES.names())


def _registered_object(name: str) -> Any:
    with _LOCK:
        ident = _NAMES.get(name)
        return None if ident is None else _OBJECTS.get(ident)


def _find(name: str, keys: list[str]) -> str | None:
    """The key answering ``name`` (exact; ``X`` for ``pkg>X``; a unique ``pkg>X`` for ``X``)."""
    match, names = _core.registry_find_name(name, keys)
    return names[0] if match == "found" else None


def get_registered_object(name: str, custom_objects: Mapping[str, Any] | None = None) -> Any:
    """The object ``name`` resolves to, or ``None``: ``custom_objects`` first, then the active
    scopes (innermost first), then kerasafe's registry, then the installed Keras's registry.
    Registered names and bare names (``"ScaledDense"`` for ``"Course>ScaledDense"``) both work."""
    for source in [dict(custom_objects or {}), *_scopes()]:
        key = _find(name, [k for k in source if isinstance(k, str)])
        if key is not None:
            return source[key]
    found = _NAMES.find(name)
    if found[0] == "found":
        return _registered_object(found[1][0])
    theirs = _keras_custom_objects()
    key = _find(name, list(theirs))
    return None if key is None else theirs[key]


def get_registered_name(obj: Any) -> str:
    """The name ``obj`` serializes under: its registered ``"package>name"``, else (like Keras)
    its ``__name__``."""
    name = _NAMES.name_of(id(obj))
    if name is not None and _OBJECTS.get(id(obj)) is obj:
        return str(name)
    for keras in _keras_in_use():
        theirs = _keras_registry_api(keras)
        getter = getattr(theirs, "get_registered_name", None)
        if getter is not None:
            found = getter(obj)
            if isinstance(found, str) and ">" in found:
                return found
    return str(getattr(obj, "__name__", type(obj).__name__))


# -- scopes ------------------------------------------------------------------------------------------


def _scopes() -> list[dict[str, Any]]:
    """Active scopes, innermost first."""
    return list(reversed(getattr(_LOCAL, "stack", [])))


@contextlib.contextmanager
def custom_object_scope(*objects: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Make custom objects available to the loads inside the block (this thread only)::

        with kerasafe.custom_object_scope({"ScaledDense": ScaledDense}):
            model = kerasafe.load_model("m.keras")

    Keys may be registered names or bare class names. Scopes nest; inner ones win. When Keras is
    already imported, Keras's own ``custom_object_scope`` is entered too (with every active
    kerasafe scope merged), so Keras's loaders see the same objects.
    """
    merged: dict[str, Any] = {}
    for d in objects:
        merged.update(dict(d or {}))
    stack = getattr(_LOCAL, "stack", None)
    if stack is None:
        stack = _LOCAL.stack = []
    stack.append(merged)
    try:
        with contextlib.ExitStack() as keras_scopes:
            visible: dict[str, Any] = {}
            for scope in reversed(_scopes()):  # outermost first, inner ones override
                visible.update(scope)
            for keras in _keras_in_use():
                api = _keras_registry_api(keras)
                scope_cls = getattr(api, "custom_object_scope", None) or getattr(keras.utils, "custom_object_scope", None)
                if scope_cls is not None:
                    keras_scopes.enter_context(scope_cls(visible))
            yield merged
    finally:
        stack.pop()


# -- names available to a load ---------------------------------------------------------------------

_KERAS_NAME_MODULES = (
    "layers",
    "models",
    "activations",
    "initializers",
    "regularizers",
    "constraints",
    "losses",
    "metrics",
    "optimizers",
    "dtype_policies",
    "mixed_precision",
)
_NOT_MODELING = {"get", "serialize", "deserialize", "load_model", "save_model", "model_from_json", "clone_model"}
_builtin_cache: dict[int, list[str]] = {}


def _installed_keras_names() -> list[str]:
    """Public names of the Keras modules already imported (newer than the core's table)."""
    out: set[str] = set()
    for keras in _keras_in_use():
        key = id(keras)
        if key not in _builtin_cache:
            names: set[str] = set()
            for mod_name in _KERAS_NAME_MODULES:
                mod = getattr(keras, mod_name, None)
                if mod is None:
                    continue
                for attr in dir(mod):
                    if attr.startswith("_") or attr in _NOT_MODELING:
                        continue
                    value = getattr(mod, attr, None)
                    if inspect.isclass(value) or (callable(value) and not inspect.ismodule(value) and mod_name not in ("models", "mixed_precision")):
                        names.add(attr)
            _builtin_cache[key] = sorted(names)
        out.update(_builtin_cache[key])
    return sorted(out)


def _available(custom_objects: Mapping[str, Any] | None) -> dict[str, list[str]]:
    scoped: list[str] = []
    for scope in _scopes():
        scoped.extend(k for k in scope if isinstance(k, str))
    registered = list(_NAMES.names())
    registered.extend(k for k in _keras_custom_objects() if k not in registered)
    return {
        "custom_objects": [k for k in (custom_objects or {}) if isinstance(k, str)],
        "scoped": scoped,
        "registered": registered,
        "builtins": _installed_keras_names(),
    }


def _json_default(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _dumps(config: Any) -> str:
    if isinstance(config, (str, bytes)):
        text = config.decode("utf-8") if isinstance(config, bytes) else config
        return text
    return json.dumps(config, default=_json_default)


def _object_for(status: Mapping[str, Any], custom_objects: Mapping[str, Any] | None) -> Any:
    source, provided = status.get("source"), status.get("provided")
    if source == "custom_objects":
        return dict(custom_objects or {}).get(provided)
    if source == "scope":
        for scope in _scopes():
            if provided in scope:
                return scope[provided]
        return None
    obj = _registered_object(provided)
    return obj if obj is not None else _keras_custom_objects().get(provided)


# -- preflight (loaders) -----------------------------------------------------------------------------


def preflight(
    config: Any,
    custom_objects: Mapping[str, Any] | None = None,
    safe_mode: bool = True,
    source: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Check a stored config before anything is deserialized; return the custom objects to hand
    to Keras's deserializer.

    ``config`` is a parsed (or JSON text) config document: a ``.keras`` ``config.json``, an
    ``.h5`` ``{"model_config": ..., "training_config": ...}`` pair, a ``keras_metadata.pb``
    node map, or our SavedModel's ``keras_config.json`` record.

    With ``safe_mode`` (the default), anything that would run code — Lambda bytecode,
    ``__lambda__`` payloads, references to ``os``/``subprocess``/``builtins.eval``, Keras utilities
    such as ``keras.config.enable_unsafe_deserialization`` — raises one
    :class:`~kerasafe.errors.UnsafeArtifactError` naming every offending config path.
    ``safe_mode=False`` is an explicit opt-in and always warns (:class:`KerasafeWarning`).

    Then every class/function reference must resolve: ``custom_objects`` (registered or bare
    names), active :func:`custom_object_scope` s, kerasafe's registry, the installed Keras's
    registry, Keras built-ins. Otherwise one :class:`~kerasafe.errors.MissingCustomObjectError`
    names them all, where each is used and the closest available names; its ``names`` attribute
    lists them and ``missing`` has the details.

    Returns ``custom_objects`` extended with every custom reference under the exact key Keras
    will look up (so ``{"ScaledDense": cls}`` also answers ``"Course>ScaledDense"``).
    """
    text = _dumps(config)
    available = json.dumps(_available(custom_objects))
    src = os.fspath(source) if source is not None else None
    if not safe_mode:
        findings = json.loads(_core.registry_scan(text))
        where = f"{src}: " if src else ""
        detail = "".join(f"\n  - at {f['path']}: {f['message']}" for f in findings[:25])
        warnings.warn(
            KerasafeWarning(
                f"{where}loading with safe_mode=False: code stored in the file may run"
                + (f"; {len(findings)} finding(s):{detail}" if findings else "")
            ),
            stacklevel=2,
        )
    try:
        result = json.loads(_core.registry_preflight(text, available, bool(safe_mode), src))
    except MissingCustomObjectError as err:
        missing = json.loads(_core.registry_missing(text, available))
        err.names = [m["name"] for m in missing]  # type: ignore[attr-defined]
        err.missing = missing  # type: ignore[attr-defined]
        raise
    out: dict[str, Any] = dict(custom_objects or {})
    for ref in result["references"]:
        status = ref["resolution"]
        if status.get("status") != "custom" or ref["name"] in out:
            continue
        obj = _object_for(status, custom_objects)
        if obj is not None:
            out[ref["name"]] = obj
    return out


def preflight_file(
    path: str | os.PathLike[str] | _core.MemoryFile,
    custom_objects: Mapping[str, Any] | None = None,
    safe_mode: bool = True,
) -> dict[str, Any]:
    """:func:`preflight` on the config stored in ``path`` (``.keras``, ``.h5``, SavedModel
    directory, ``config.json``, or a ``.keras``/``.h5`` object fetched into memory); errors name
    the file (or the object's URL)."""
    from ._remote import name_of

    config, _fmt = _read_config(path)
    return preflight(config, custom_objects, safe_mode, source=name_of(path))


# -- check on save -----------------------------------------------------------------------------------


def _is_custom(obj: Any) -> bool:
    cls = obj if inspect.isclass(obj) else type(obj)
    root = (getattr(cls, "__module__", "") or "").split(".")[0]
    return root not in _KERAS_ROOTS and root != "builtins"


def _keras_of(model: Any) -> Any:
    for cls in type(model).__mro__:
        root = cls.__module__.split(".")[0]
        if root in ("keras", "tf_keras") and root in sys.modules:
            return sys.modules[root]
    from .keras_bridge import keras_module

    return keras_module()


def _non_json(value: Any, path: str) -> tuple[str, Any] | None:
    """The first value under ``value`` that JSON cannot hold, with its path."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{path}[{k!r}]", k
            hit = _non_json(v, f"{path}.{k}" if path else k)
            if hit:
                return hit
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            hit = _non_json(v, f"{path}[{i}]")
            if hit:
                return hit
        return None
    return path, value


def _describe(obj: Any) -> str:
    name = getattr(obj, "name", None)
    kind = type(obj).__name__
    return f"{get_registered_name(type(obj))} ({kind} {name!r})" if isinstance(name, str) else get_registered_name(type(obj))


def _custom_instances(model: Any) -> list[Any]:
    """Custom objects reachable from a model: the model itself, layers (recursively), their
    custom attributes (initializers, regularizers, …), the loss and the optimizer."""
    found: list[Any] = []

    def add(obj: Any) -> None:
        if obj is None or inspect.isclass(obj) or inspect.isfunction(obj) or not hasattr(obj, "get_config"):
            return
        if _is_custom(obj) and all(obj is not f for f in found):
            found.append(obj)

    from .keras_bridge import every_layer

    try:
        layers = every_layer(model, include_self=False)
    except TypeError:
        layers = []
    add(model)
    for layer in layers:
        add(layer)
        for value in vars(layer).values():
            if isinstance(value, (list, tuple)):
                for v in value:
                    if not hasattr(v, "weights"):
                        add(v)
            elif not hasattr(value, "weights"):
                add(value)
    loss = getattr(model, "loss", None)
    for item in loss.values() if isinstance(loss, dict) else loss if isinstance(loss, (list, tuple)) else [loss]:
        add(item)
    add(getattr(model, "optimizer", None))
    return found


_UNEXPECTED = re.compile(r"unexpected keyword argument '([^']+)'")
# Keras 3's Layer/Operation: "Unrecognized keyword arguments passed to Extra: {'colour': 'red'}".
_UNRECOGNIZED = re.compile(r"Unrecognized keyword arguments? passed to [^:]+: \{(.*)\}")
_MISSING = re.compile(r"missing \d+ required (?:positional|keyword-only) arguments?: (.+)$")


def _normalized(config: Any) -> Any:
    return json.loads(json.dumps(config, default=_json_default, sort_keys=True))


def _check_rebuild(obj: Any, keras: Any, objects: Mapping[str, Any]) -> None:
    what = _describe(obj)
    try:
        config = obj.get_config()
    except NotImplementedError:
        raise InvalidArgumentError(f"cannot save {what}: its class does not implement get_config()") from None
    except Exception as exc:
        raise InvalidArgumentError(f"cannot save {what}: get_config() raised {type(exc).__name__}: {exc}") from exc
    bad = _non_json(config, "")
    if bad is not None:
        key, value = bad
        raise InvalidArgumentError(
            f"cannot save {what}: get_config() returns key {key!r} holding a {type(value).__name__} "
            f"({value!r:.80}), which is not JSON-serializable; return plain values (numbers, strings, "
            "lists, dicts) or serialize it with keras.saving.serialize_keras_object and deserialize it "
            "in from_config"
        )
    scope = getattr(_keras_registry_api(keras), "custom_object_scope", None) or keras.utils.custom_object_scope
    try:
        with scope(dict(objects)):
            rebuilt = type(obj).from_config(config)
    except TypeError as exc:
        text = str(exc)
        m = _UNEXPECTED.search(text)
        unrecognized = _UNRECOGNIZED.search(text)
        if m:
            detail = f"get_config() returns key {m.group(1)!r}, which __init__ does not accept"
        elif unrecognized:
            keys = re.findall(r"'([^']+)':", unrecognized.group(1)) or [unrecognized.group(1)]
            shown = ", ".join(repr(k) for k in keys)
            detail = f"get_config() returns key{'s' if len(keys) > 1 else ''} {shown}, which __init__ does not accept"
        else:
            m = _MISSING.search(text)
            detail = f"get_config() lacks {m.group(1)} that __init__ requires" if m else text
        raise InvalidArgumentError(f"cannot save {what}: from_config(get_config()) fails: {detail}") from exc
    except Exception as exc:
        raise InvalidArgumentError(
            f"cannot save {what}: from_config(get_config()) raised {type(exc).__name__}: {exc}"
        ) from exc
    try:
        again = rebuilt.get_config()
    except Exception:
        return
    before, after = _normalized(config), _normalized(again)
    if isinstance(before, dict) and isinstance(after, dict) and before != after:
        keys = sorted(k for k in set(before) | set(after) if before.get(k, ...) != after.get(k, ...))
        shown = ", ".join(f"{k!r} ({before.get(k, '<absent>')!r} → {after.get(k, '<absent>')!r})" for k in keys[:5])
        raise InvalidArgumentError(
            f"cannot save {what}: from_config(get_config()) does not rebuild it: config key(s) differ "
            f"after the round trip: {shown}"
        )


def _config_path(config: Any, name: str, here: str = "") -> str | None:
    """Where in a serialized config an object is referenced by ``name`` (``compile_config.loss``)."""
    if isinstance(config, dict):
        if name in (config.get("registered_name"), config.get("class_name")) and "config" in config:
            return here or "<root>"
        for key, value in config.items():
            found = _config_path(value, name, f"{here}.{key}" if here else str(key))
            if found:
                return found
    elif isinstance(config, list):
        for i, value in enumerate(config):
            found = _config_path(value, name, f"{here}[{i}]")
            if found:
                return found
    return None


def check_on_save(model: Any, custom_objects: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What ``save_model`` checks before writing anything; returns the model's serialized
    config (Keras's ``serialize_keras_object`` output, which a writer may reuse).

    * every custom class and function the model uses is registered (kerasafe or Keras) or passed
      in ``custom_objects`` — else :class:`~kerasafe.errors.MissingCustomObjectError` naming all;
    * each custom object's ``get_config()`` returns JSON-serializable values and
      ``from_config(get_config())`` rebuilds it — else
      :class:`~kerasafe.errors.InvalidArgumentError` naming the object and the config key;
    * content a safe-mode loader will refuse (Lambda bytecode) gives a :class:`KerasafeWarning`.
    """
    keras = _keras_of(model)
    name = getattr(model, "name", type(model).__name__)
    for obj in _custom_instances(model):
        _check_rebuild(obj, keras, {**_keras_custom_objects(), **dict(custom_objects or {})})
    try:
        config = keras.saving.serialize_keras_object(model)
    except Exception as exc:
        raise InvalidArgumentError(f"cannot save model {name!r}: its config cannot be serialized: {exc}") from exc
    bad = _non_json(config, "")
    if bad is not None:
        raise InvalidArgumentError(
            f"cannot save model {name!r}: config value at {bad[0]} is a {type(bad[1]).__name__}, which is not "
            "JSON-serializable"
        )
    text = json.dumps(config)
    missing = json.loads(_core.registry_missing(text, json.dumps(_available(custom_objects))))
    # A name that resolves, but to another object (an unregistered class whose bare name matches
    # some registered one), would load the wrong class: it counts as missing too.
    for obj in _custom_instances(model):
        cls = type(obj)
        written = get_registered_name(cls)
        found = get_registered_object(written, custom_objects)
        if found is not None and found is not cls and all(m["name"] != written for m in missing):
            missing.append(
                {
                    "name": written,
                    "kind": "object",
                    "used_at": [
                        f"{_config_path(config, written) or cls.__qualname__} ({cls.__module__}.{cls.__qualname__}, but the name "
                        f"resolves to {getattr(found, '__module__', '?')}.{getattr(found, '__qualname__', found)})"
                    ],
                    "suggestions": [],
                }
            )
    if missing:
        lines = "".join(
            f"\n  - {m['name']!r} ({m['kind'].replace('_', ' ')}) used at {m['used_at'][0]}"
            + (f"; did you mean {' or '.join(repr(s) for s in m['suggestions'])}?" if m["suggestions"] else "")
            for m in missing
        )
        err = MissingCustomObjectError(
            f"cannot save model {name!r}: {len(missing)} custom object(s) it uses are neither registered "
            f"nor passed in custom_objects, so the saved file could not be loaded back:{lines}\n"
            "Decorate them with @kerasafe.register_serializable(package=...) or pass custom_objects=."
        )
        err.names = [m["name"] for m in missing]  # type: ignore[attr-defined]
        err.missing = missing  # type: ignore[attr-defined]
        raise err
    findings = json.loads(_core.registry_scan(text))
    if findings:
        detail = "".join(f"\n  - at {f['path']}: {f['message']}" for f in findings[:10])
        warnings.warn(
            KerasafeWarning(
                f"model {name!r} holds content that safe-mode loaders refuse (load it with safe_mode=False "
                f"only where you trust the file):{detail}"
            ),
            stacklevel=2,
        )
    return config


# -- reading configs (swap in the Rust readers here) -------------------------------------------------

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _read_json_text(text: str | bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{where}: not valid JSON: {exc}") from None


def _read_keras_zip(path: str | _core.MemoryFile) -> Any:
    # The Rust reader validates the archive (member names, sizes, zip bombs) before reading.
    config_json, _, _, _ = _core.keras_archive_read(path, False, weights=False)
    if len(config_json) > _MAX_CONFIG_BYTES:
        raise FormatError(f"{path}: config.json is larger than {_MAX_CONFIG_BYTES} bytes")
    return _read_json_text(config_json, f"{path}/config.json")


def _read_h5(path: str | _core.MemoryFile) -> Any:
    from . import _h5tree

    return h5_document(_h5tree.read(path, values=False), path)  # attributes and structure only


def h5_document(root: Any, path: str | _core.MemoryFile) -> dict[str, Any]:
    """The config document of an ``.h5`` model already read (its root group), for
    :func:`preflight`: ``{"model_config": ..., "training_config": ...}``."""
    doc: dict[str, Any] = {}
    for key in ("model_config", "training_config"):
        raw = root.attrs.get(key)
        if raw is not None:
            if hasattr(raw, "tolist") and not isinstance(raw, (bytes, str)):
                raw = raw.tolist()
            doc[key] = _read_json_text(raw, f"{path}: @{key}")
    return doc


def _read_saved_model(path: str) -> Any:
    parts: dict[str, Any] = {}
    config_json = os.path.join(path, "keras_config.json")
    if os.path.isfile(config_json):
        with open(config_json, "rb") as f:
            parts["keras_config"] = _read_json_text(f.read(_MAX_CONFIG_BYTES + 1), config_json)
    metadata = os.path.join(path, "keras_metadata.pb")
    if os.path.isfile(metadata):
        parts["keras_metadata"] = json.loads(_core.registry_keras_metadata_document(metadata))
    if len(parts) == 1:
        return next(iter(parts.values()))
    return parts


def _read_config(path: str | os.PathLike[str] | _core.MemoryFile) -> tuple[Any, str]:
    """The stored config document of ``path`` and the format it came from: ``keras``
    (``.keras`` zip or an unzipped directory), ``h5``, ``savedmodel`` or ``json``.

    The single place that reads files for the registry: swap in the Rust readers here.
    """
    if isinstance(path, _core.MemoryFile):  # a model fetched from object storage
        kind = _core.sniff(path)
        if kind == "zip":
            return _read_keras_zip(path), "keras"
        if kind == "hdf5":
            return _read_h5(path), "h5"
        raise FormatError(f"{path.name}: not a .keras archive or an HDF5 file")
    p = os.fspath(path)
    if os.path.isdir(p):
        if os.path.isfile(os.path.join(p, "config.json")):
            with open(os.path.join(p, "config.json"), "rb") as f:
                return _read_json_text(f.read(_MAX_CONFIG_BYTES + 1), os.path.join(p, "config.json")), "keras"
        if any(os.path.isfile(os.path.join(p, n)) for n in ("saved_model.pb", "saved_model.pbtxt", "keras_config.json")):
            return _read_saved_model(p), "savedmodel"
        raise FormatError(f"{p}: neither a SavedModel directory nor an unzipped .keras directory")
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        from .errors import ArtifactNotFoundError

        raise ArtifactNotFoundError(f"{p}: no such file or directory") from None
    if head.startswith(b"PK"):
        return _read_keras_zip(p), "keras"
    if head == _HDF5_MAGIC or p.lower().endswith((".h5", ".hdf5")):
        return _read_h5(p), "h5"
    if p.lower().endswith(".json"):
        with open(p, "rb") as f:
            return _read_json_text(f.read(_MAX_CONFIG_BYTES + 1), p), "json"
    raise FormatError(f"{p}: not a .keras archive, an HDF5 file, a SavedModel directory or a config.json")


# -- scan --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """Something in a file that would run code or reach outside Keras when loaded."""

    path: str
    """Config path of the offending value, e.g. ``config.layers[3].config.function``."""
    layer: str | None
    """Enclosing layers by name, e.g. ``my_model/lambda``."""
    code: str
    """``lambda_bytecode``, ``unsafe_reference``, ``unsafe_layer``, ``tf_op`` or ``file_path``."""
    message: str


@dataclass(frozen=True)
class ScanReport:
    """What :func:`scan` found in a file."""

    path: str
    format: str
    findings: list[Finding]
    references: list[dict[str, Any]] = field(repr=False)
    _config_json: str = field(repr=False, compare=False, default="")

    @property
    def ok(self) -> bool:
        """No findings: nothing in the file would run code when loaded in safe mode."""
        return not self.findings

    @property
    def custom_objects(self) -> list[str]:
        """Names the file needs from the loading code (not Keras built-ins), first-use order."""
        out: list[str] = []
        for r in self.references:
            if r["resolution"]["status"] == "missing" and r["name"] not in out:
                out.append(r["name"])
        return out

    def raise_for_findings(self) -> None:
        """Raise the :class:`~kerasafe.errors.UnsafeArtifactError` a safe-mode load would."""
        if self.findings:
            _core.registry_preflight(self._config_json, "{}", True, self.path)
            raise UnsafeArtifactError(f"{self.path}: unsafe content")  # pragma: no cover

    def __str__(self) -> str:
        lines = [f"{self.path} ({self.format}): " + ("no findings" if self.ok else f"{len(self.findings)} finding(s)")]
        lines += [f"  UNSAFE at {f.path}" + (f" (in {f.layer})" if f.layer else "") + f": {f.message}" for f in self.findings]
        if self.custom_objects:
            lines.append("  custom objects needed: " + ", ".join(self.custom_objects))
        return "\n".join(lines)


def scan(path: str | os.PathLike[str]) -> ScanReport:
    """Report, without TensorFlow or Keras and without deserializing anything, what in the file
    at ``path`` a safe-mode load would refuse, and which custom objects it needs.

    Reads ``.keras`` archives (and unzipped directories), legacy ``.h5`` files, SavedModel
    directories (``keras_metadata.pb``, kerasafe's ``keras_config.json``) and bare
    ``config.json`` files. ``report.raise_for_findings()`` raises the error a load would.
    """
    p = os.fspath(path)
    config, fmt = _read_config(p)
    text = _dumps(config)
    findings = [Finding(**f) for f in json.loads(_core.registry_scan(text))]
    references = json.loads(_core.registry_resolve(text, "{}"))
    return ScanReport(path=p, format=fmt, findings=findings, references=references, _config_json=text)
