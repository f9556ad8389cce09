"""Keras 3's own walk over a model's state, pointed at our in-memory HDF5 tree.

Keras 3 names every variable of a model by walking it (``layers/dense/vars/0``,
``optimizer/vars/3``, …) in ``saving_lib._save_state`` / ``_load_state``. We run that walk
unchanged, with a store that records into (or reads from) a :class:`~kerasafe._h5tree.Group`;
the Rust core then writes or reads the file. The layout is therefore Keras's exactly.
"""

from __future__ import annotations

import inspect
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from . import keras_bridge
from ._buffers import ALIGNMENT, OwnedValue
from ._h5tree import Dataset, Group
from .errors import FormatError


def _saving_lib() -> Any:
    from keras.src.saving import saving_lib

    return saving_lib


def _store_classes() -> tuple[type, type]:
    saving_lib = _saving_lib()
    from keras.src import backend

    class RecordingStore(saving_lib.H5IOStore):  # type: ignore[misc, name-defined]
        """Write side: Keras calls make(path) then store[key] = value."""

        def __init__(self, root: Group) -> None:  # no h5py file behind it
            self.root = root
            self.mode = "w"
            self.archive = None
            self._path = ""
            self._entry: Group | None = None

        def __bool__(self) -> bool:
            return True

        def make(self, path: str, metadata: dict[str, Any] | None = None) -> Any:
            self._path = path
            self._entry = None
            if metadata:
                self._group().attrs.update(metadata)
            return self

        def _group(self) -> Group:
            if self._entry is None:
                parent = self.root.require_group(self._path) if self._path else self.root
                self._entry = parent.require_group("vars")
            return self._entry

        def __setitem__(self, key: str, value: Any) -> None:
            array = keras_bridge.to_numpy(value)  # zero-copy on TF: no second copy of the model
            ds = Dataset(array)
            if backend.standardize_dtype(array.dtype) == "bfloat16":
                ds.attrs["dtype"] = "bfloat16"
            self._group().children[str(key)] = ds

        def get(self, path: str) -> Any:
            raise ValueError("`get` is only allowed in read mode.")

        def has_path(self, path: str) -> bool:
            return path in self.root

        def close(self) -> None:
            pass

    return RecordingStore, _tree_store_class(saving_lib.H5IOStore)


def _tree_store_class(base: type) -> type:
    class TreeStore(base):  # type: ignore[misc, valid-type]
        """Read side: Keras calls get(path) then len(store), store[key]."""

        def __init__(self, root: Group, release: bool = False) -> None:
            self.root = root
            self.release = release
            self.mode = "r"
            self.archive = None
            self._entry: Group = Group()

        def __bool__(self) -> bool:
            return True

        def get(self, path: str) -> Any:
            self._entry = Group()
            node = self.root.get(path) if path else self.root
            if node is None and "_layer_checkpoint_dependencies" in self.root:  # files from Keras 2.13
                node = self.root.get(path.replace("layers", "_layer_checkpoint_dependencies"))
            if isinstance(node, Group) and isinstance(node.get("vars"), Group):
                self._entry = node["vars"]
            return self

        def has_path(self, path: str) -> bool:
            return path in self.root

        def make(self, path: str, metadata: Any = None) -> Any:
            raise ValueError("`make` is only allowed in write mode.")

        def __len__(self) -> int:
            return len(self._entry.children)

        def keys(self) -> Any:
            return list(self._entry.children)

        def __contains__(self, key: object) -> bool:
            return key in self._entry.children

        def __getitem__(self, key: str) -> Any:
            node = self._entry.children.get(str(key))
            if not isinstance(node, Dataset):
                raise KeyError(key)
            # Keras reads each value once, to assign it: free it with the assignment.
            return node.take() if self.release else node.value

        def close(self) -> None:
            pass

    return TreeStore


@contextmanager
def _optimizer_state_by_reference(model: Any) -> Iterator[None]:
    """Keras's stock ``save_own_variables`` hands the store ``variable.numpy()`` copies of the
    optimizer's state (two copies of the model for Adam); while capturing, hand it the variables,
    so the store keeps zero-copy views. Optimizers that override the method keep their own."""
    try:
        from keras.src.optimizers.base_optimizer import BaseOptimizer
    except ImportError:
        yield
        return
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or getattr(type(optimizer), "save_own_variables", None) is not BaseOptimizer.save_own_variables:
        yield
        return

    def by_reference(store: Any) -> None:  # what the stock method stores, without .numpy()
        for i, variable in enumerate(optimizer.variables):
            store[str(i)] = variable

    optimizer.save_own_variables = by_reference
    try:
        yield
    finally:
        del optimizer.save_own_variables


class ScopedPatch:
    """Methods of a class (or functions of a module) replaced while any thread is inside a scope
    that needs them: installed by the first thread to enter, removed by the last to leave. The
    replacements look at :attr:`here` (thread-local) and behave as the originals for threads
    outside the scope."""

    def __init__(self, *names: str) -> None:
        self.names = names
        self.lock = threading.Lock()
        self.users = 0
        self.saved: dict[str, Any] | None = None
        self.here = threading.local()

    def enter(self, target: type | ModuleType, make: Any) -> None:
        """``make(*originals)`` returns the replacements; originals as stored on the class or the
        base it inherits them from (a classmethod as its descriptor)."""
        with self.lock:
            if self.users == 0:
                self.saved = {n: target.__dict__.get(n, _INHERITED) for n in self.names}
                originals = [inspect.getattr_static(target, n) for n in self.names]
                for name, replacement in zip(self.names, make(*originals)):
                    setattr(target, name, replacement)
            self.users += 1

    def leave(self, target: type | ModuleType) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0 and self.saved is not None:
                for name, original in self.saved.items():
                    if original is _INHERITED:
                        delattr(target, name)
                    else:
                        setattr(target, name, original)
                self.saved = None


_INHERITED = object()

# Keras's TF Variable while a thread is inside filled_from_file;
# here.created: [(variable, initializer)], here.assigned: {id(variable)}.
_UNFILLED = ScopedPatch("_initialize_with_initializer", "_direct_assign", "_convert_to_tensor")


def _unfilled_methods(tf: Any) -> Any:
    here = _UNFILLED.here

    def make(initialize: Any, direct_assign: Any, convert: Any) -> tuple[Any, Any, Any]:
        def allocate_only(self: Any, initializer: Any) -> None:
            created = getattr(here, "created", None)
            if created is None:
                return initialize(self, initializer)
            created.append((self, initializer))
            self._initialize(lambda: tf.raw_ops.Empty(shape=self._shape, dtype=tf.as_dtype(self._dtype), init=False))

        def recording_assign(self: Any, value: Any) -> None:
            assigned = getattr(here, "assigned", None)
            if assigned is not None:
                assigned.add(id(self))
            if type(value) is InPlaceValue and value.target is self:
                return  # already in the variable's buffer
            direct_assign(self, value)

        def adopting_convert(self: Any, value: Any, dtype: Any = None) -> Any:
            if type(value) is InPlaceValue and value.target is self and getattr(here, "created", None) is not None:
                return value  # assigned by recording_assign as a no-op
            if type(value) is OwnedValue and getattr(here, "created", None) is not None:
                tensor = _adopted(value, dtype, tf)
                if tensor is not None:
                    return tensor
            return convert(self, value, dtype)

        return allocate_only, recording_assign, adopting_convert

    return make


def _adopted(value: OwnedValue, dtype: Any, tf: Any) -> Any:
    """A tensor over ``value``'s own buffer (no copy), which the variable assigned it then keeps
    as its storage; None when that is not safe (another dtype, not contiguous or aligned, a
    dtype DLPack cannot carry), and the caller converts by copying as usual."""
    if not value.flags.c_contiguous or not value.flags.writeable or value.ctypes.data % ALIGNMENT:
        return None  # TensorFlow aborts the process on an unaligned foreign buffer
    if value.dtype.kind not in "fiuc" or (dtype is not None and np.dtype(tf.as_dtype(dtype).as_numpy_dtype) != value.dtype):
        return None
    try:
        return tf.experimental.dlpack.from_dlpack(value.view(np.ndarray).__dlpack__())
    except Exception:  # a DLPack or TensorFlow build without support: copy instead
        return None


@contextmanager
def filled_from_file() -> Iterator[None]:
    """Build a model whose every stored variable is about to be overwritten by a file's values.

    On the TensorFlow backend, variables that Keras creates in this thread inside the block are
    allocated but not filled (``tf.raw_ops.Empty``): running their initializers (random kernels,
    zeroed optimizer slots) costs more than reading the file. Every assignment is recorded, and
    on leaving the block normally each variable that nothing assigned gets its initializer's
    value after all, so a model that loaded never holds an unfilled variable (one whose load
    raised is left as it is, to be discarded). A value assigned as an
    :class:`~kerasafe._buffers.OwnedValue` (what deferred reads return) becomes the variable's
    storage through DLPack instead of being copied into a new tensor first.
    Other backends and threads are untouched.
    """
    from . import _tf_keras

    here = _UNFILLED.here
    if _tf_keras.active() or getattr(here, "created", None) is not None or keras_bridge.keras_module().backend.backend() != "tensorflow":
        yield  # nested, tf-keras or another backend: nothing to skip
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow.core import Variable

    created: list[tuple[Any, Any]] = []
    assigned: set[int] = set()
    _UNFILLED.enter(Variable, _unfilled_methods(tf))
    here.created, here.assigned = created, assigned
    try:
        yield
    finally:
        here.created = here.assigned = None
        _UNFILLED.leave(Variable)
    for variable, initializer in created:
        if id(variable) not in assigned:
            variable.assign(initializer(variable._shape, dtype=variable._dtype))


def finalize_loaded_state(model: Any) -> None:
    """Run each layer's ``finalize_state()`` once values are in, as Keras's own loaders do.

    Layers such as ``Normalization`` (its ``mean``/``variance`` tensors), the lookup layers in
    ``tf_idf`` mode (``idf_weights_const``) and ``TextVectorization`` derive plain tensors from
    their variables; a load that assigns the variables must rebuild those, or the layer keeps
    what it derived when it was built (inside :func:`filled_from_file`, unfilled memory). Keras 3
    calls the hook from ``load_own_variables`` and its legacy HDF5 loader for layers with
    weights; tf-keras after every weight load. Only layers with weights are finalized: a
    weightless ``Discretization`` would recompute its bin boundaries from an empty summary."""
    for layer in keras_bridge.every_layer(model, include_self=True):
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize) and layer.weights:
            finalize()


@contextmanager
def vocabularies_in_config(model: Any) -> Iterator[None]:
    """Lookup layers (``StringLookup``, ``IntegerLookup``, ``TextVectorization``'s) that were
    adapted keep their vocabulary in a table, not in their config (``.keras`` stores it as an
    asset); formats that carry only the config (``.h5``, the SavedModel's ``keras_config.json``)
    would rebuild them with an empty table ("Table not initialized" on the first call). While
    the config is taken, each such layer presents its vocabulary (and ``tf_idf`` weights) as if
    it had been passed to the constructor, which is how Keras itself configures a fixed
    vocabulary; files stay loadable by Keras's own ``load_model``."""
    changed: list[tuple[Any, Any, Any]] = []
    for layer in keras_bridge.every_layer(model, include_self=True):
        if not hasattr(layer, "input_vocabulary") or layer.input_vocabulary is not None or not callable(getattr(layer, "get_vocabulary", None)):
            continue
        vocabulary = layer.get_vocabulary()
        special = (getattr(layer, "mask_token", None) is not None) + int(getattr(layer, "num_oov_indices", 0) or 0)
        if len(vocabulary) <= special:
            continue  # never adapted: nothing to carry
        idf = getattr(layer, "idf_weights_const", None) if getattr(layer, "output_mode", None) == "tf_idf" else None
        changed.append((layer, layer.input_vocabulary, getattr(layer, "input_idf_weights", None)))
        layer.input_vocabulary = np.asarray(vocabulary)
        if idf is not None:
            layer.input_idf_weights = keras_bridge.to_numpy(idf)
    try:
        yield
    finally:
        for layer, vocabulary, idf in changed:
            layer.input_vocabulary, layer.input_idf_weights = vocabulary, idf


# Keras 3's Sequential while a thread is inside sequential_built_once; here.active: bool.
_SEQUENTIAL_ONCE = ScopedPatch("add", "from_config")


def _sequential_once_methods(add: Any, from_config: Any) -> tuple[Any, Any]:
    here = _SEQUENTIAL_ONCE.here

    def deferring_add(self: Any, layer: Any, rebuild: bool = True) -> None:
        add(self, layer, rebuild=rebuild and not getattr(here, "active", False))

    def built_once(model_cls: Any, config: Any, custom_objects: Any = None) -> Any:
        if not getattr(here, "active", False) or not isinstance(config, dict):
            return from_config.__func__(model_cls, config, custom_objects)
        # Without the build shape the stock method leaves the model unbuilt when no layer
        # rebuilt it; build it here the way the last add() would have.
        build_input_shape = config.get("build_input_shape")
        model = from_config.__func__(model_cls, {k: v for k, v in config.items() if k != "build_input_shape"}, custom_objects)
        if model._layers and model._functional is None:
            model._maybe_rebuild()
        if not model._functional and build_input_shape and isinstance(build_input_shape, (tuple, list)):
            model.build(build_input_shape)
        return model

    return deferring_add, classmethod(built_once)


@contextmanager
def sequential_built_once() -> Iterator[None]:
    """Rebuild each ``Sequential`` model being deserialized in this thread once, after its last
    layer, instead of after every layer: the stock ``from_config`` adds layers one by one, each
    ``add`` rebuilding the whole graph (a 24-layer model ran 276 layer calls where 24 do). The
    end state is what ``Sequential(layers=[...])`` builds. Keras 3 only; a Keras without
    ``add(rebuild=)`` is left alone."""
    from . import _tf_keras

    here = _SEQUENTIAL_ONCE.here
    if _tf_keras.active() or getattr(here, "active", False):
        yield
        return
    from keras.src.models.sequential import Sequential

    usable = "rebuild" in inspect.signature(Sequential.add).parameters and hasattr(Sequential, "_maybe_rebuild")
    if not usable or "from_config" not in Sequential.__dict__:
        yield
        return
    _SEQUENTIAL_ONCE.enter(Sequential, _sequential_once_methods)
    here.active = True
    try:
        yield
    finally:
        here.active = False
        _SEQUENTIAL_ONCE.leave(Sequential)


# Keras 3's saving_lib while a thread is inside skipsets_remembered; here.memo: {obj_type: set}.
_SKIPSETS = ScopedPatch("get_attr_skipset")


def _skipset_methods(get_attr_skipset: Any) -> tuple[Any]:
    here = _SKIPSETS.here

    def remembered(obj_type: str) -> Any:
        memo = getattr(here, "memo", None)
        if memo is None:
            return get_attr_skipset(obj_type)
        if obj_type not in memo:
            memo[obj_type] = get_attr_skipset(obj_type)
        return memo[obj_type]

    return (remembered,)


@contextmanager
def skipsets_remembered() -> Iterator[None]:
    """Keras's save and load walks in this thread compute each kind of object's attribute skip
    set once. Keras means to cache it (``get_attr_skipset``) but stores it under another key
    than it looks it up by (``saving_attr_skipset_`` / ``saving_attr_skiplist_``, Keras 3.15),
    so every object walked builds a throwaway ``Layer()`` and lists its attributes: 56 of them,
    0.06-0.08 s of a 96.5M-parameter ``load_weights`` of 0.32 s. Remembered for one scope only."""
    here = _SKIPSETS.here
    saving_lib = _saving_lib()
    if getattr(here, "memo", None) is not None or not callable(getattr(saving_lib, "get_attr_skipset", None)):
        yield
        return
    _SKIPSETS.enter(saving_lib, _skipset_methods)
    here.memo = {}
    try:
        yield
    finally:
        here.memo = None
        _SKIPSETS.leave(saving_lib)


def capture(model: Any, assets_dir: Path | None = None) -> Group:
    """The model's variables (and optimizer's) in Keras 3's weights-file layout."""
    saving_lib = _saving_lib()
    recording, _ = _store_classes()
    root = Group()
    assets = saving_lib.DiskIOStore(str(assets_dir), mode="w") if assets_dir is not None else None
    try:
        with _optimizer_state_by_reference(model), skipsets_remembered():
            saving_lib._save_state(model, weights_store=recording(root), assets_store=assets, inner_path="", visited_saveables=set())
    finally:
        if assets is not None:
            assets.close()
    return root


def restore(model: Any, root: Group, source: str, assets_dir: Path | None = None, in_place: bool = False) -> None:
    """Assign the values in ``root`` to ``model``; errors name ``source``. With ``in_place``
    (a load into a model that already holds values), values go straight into the buffers of the
    variables that alone hold theirs, where the file matches the model exactly."""
    from . import _tf_keras

    root = keras212_layout(root)
    if in_place and not _tf_keras.active() and getattr(_UNFILLED.here, "created", None) is not None:
        _fill_in_place(model, root)
    if _tf_keras.active():
        from tf_keras.src.saving import saving_lib as tfk_saving_lib

        assets = tfk_saving_lib.DiskIOStore(str(assets_dir), mode="r") if assets_dir is not None else None
        try:
            _tf_keras.restore_state(model, _tree_store_class(object)(root), assets)
        except (ValueError, KeyError) as exc:
            raise FormatError(f"{source}: weights do not match the model: {exc}") from None
        finally:
            if assets is not None:
                assets.close()
        return
    saving_lib = _saving_lib()
    _, tree_store = _store_classes()
    failed: set[int] = set()
    error_msgs: dict[int, Any] = {}
    assets = saving_lib.DiskIOStore(str(assets_dir), mode="r") if assets_dir is not None else None
    try:
        with skipsets_remembered():
            saving_lib._load_state(
                model,
                weights_store=tree_store(root, release=True),
                assets_store=assets,
                inner_path="",
                visited_saveables=set(),
                failed_saveables=failed,
                error_msgs=error_msgs,
            )
    finally:
        if assets is not None:
            assets.close()
    if failed:
        details = "; ".join(f"{getattr(obj, 'name', type(obj).__name__)}: {err}" for obj, err in error_msgs.values())
        raise FormatError(f"{source}: weights do not match the model: {details}")


class InPlaceValue(np.ndarray):
    """A value already read into the buffer of ``target`` (the variable it belongs to); assigning
    it to that variable inside :func:`filled_from_file` changes nothing. Anything else that reads
    it sees the value, as from any array."""

    target: Any = None
    storage: Any = None  # the _inplace.Storage that keeps the buffer alive


def _variables_by_path(model: Any) -> dict[str, Any]:
    """``"layers/dense/vars/0"`` -> what Keras's save walk stores there: the variable itself,
    for Keras's own layers and optimizers (an array where a layer stores a computed value)."""
    recording, _ = _store_classes()
    found: dict[str, Any] = {}

    class ByPath(recording):  # type: ignore[misc, valid-type]
        def __setitem__(self, key: str, value: Any) -> None:
            found[f"{self._path}/vars/{key}" if self._path else f"vars/{key}"] = value

    with _optimizer_state_by_reference(model), skipsets_remembered():
        _saving_lib()._save_state(model, weights_store=ByPath(Group()), assets_store=None, inner_path="", visited_saveables=set())
    return found


def _library_savers_only(model: Any) -> bool:
    """Whether every layer's and the optimizer's ``save_own_variables`` is Keras's own."""
    owners = keras_bridge.every_layer(model, include_self=True) + [getattr(model, "optimizer", None)]
    for owner in owners:
        save = getattr(type(owner), "save_own_variables", None) if owner is not None else None
        if save is not None and not str(getattr(save, "__module__", "")).startswith("keras."):
            return False
    return True


def _datasets(group: Group, prefix: str = "") -> Iterator[tuple[str, Dataset]]:
    for name, child in group.children.items():
        path = f"{prefix}/{name}" if prefix else name
        if isinstance(child, Group):
            yield from _datasets(child, path)
        else:
            yield path, child


def _fill_in_place(model: Any, root: Group) -> None:
    """Read each stored value that Keras's load walk would assign to a variable straight into
    that variable's buffer (see ``_inplace``), leaving an :class:`InPlaceValue` for the walk.
    Only when the file holds exactly the model's paths, with the model's shapes, all checked
    before the first read: anything else is the load walk's to handle and report."""
    from . import _inplace

    if not _library_savers_only(model):
        return  # the save walk would run user code (a layer's own save_own_variables) on a load
    try:
        by_path = _variables_by_path(model)
    except Exception:  # a saver our store does not suit after all: the usual path
        return
    stored = dict(_datasets(root))
    if by_path.keys() != stored.keys():
        return
    targets = []
    for path, variable in by_path.items():
        dataset = stored[path]
        if tuple(int(d) for d in getattr(variable, "shape", ())) != dataset.shape:
            return
        if dataset._in_file is None or dataset.attrs.get("dtype") == "bfloat16":
            continue
        storage = _inplace.storage(variable, dataset.dtype, dataset.shape)
        if storage is not None:
            targets.append((dataset, variable, storage))
    if targets:  # one call: the reads run in parallel across values, without the GIL
        first = targets[0][0]._in_file
        first.ranges.read_many_into([d._in_file.offset for d, _, _ in targets], [s.view for _, _, s in targets], progress=first.progress)
    for dataset, variable, storage in targets:
        value = storage.view.view(dataset.dtype).reshape(dataset.shape).view(InPlaceValue)
        value.target, value.storage = variable, storage
        dataset._data, dataset._in_file = value, None


@contextmanager
def compile_config_intact(model: Any) -> Iterator[None]:
    """While the block runs, the model's compile config is a copy that names its optimizer.

    Keras 3's legacy ``.h5`` save (``model.save("x.h5")``, its ``model_metadata``) pops
    ``"optimizer"`` out of the model's live compile config; every later save of that model, by
    Keras or by us, would then record a compile config without it, and a load compiles with the
    default optimizer (RMSprop) and drops the stored Adam state. The copy protects the model from
    that pop and puts back an optimizer an earlier one took."""
    compile_config = getattr(model, "_compile_config", None)
    live = getattr(compile_config, "config", None)
    if not isinstance(live, dict):
        yield
        return
    working = dict(live)  # the pop is top-level only
    optimizer = getattr(model, "optimizer", None)
    if "optimizer" not in working and optimizer is not None and getattr(model, "compiled", False):
        working["optimizer"] = optimizer
    compile_config.config = working
    try:
        yield
    finally:
        compile_config.config = live


def serialize(model: Any) -> tuple[str, str]:
    """``config.json`` and ``metadata.json`` as ``model.save('x.keras')`` writes them (with the
    optimizer in the compile config even where Keras's own ``.h5`` save took it out)."""
    with compile_config_intact(model):
        return _saving_lib()._serialize_model_as_json(model)


def model_from_config(config_json: str, custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    from . import _tf_keras

    if _tf_keras.active():
        return _tf_keras.model_from_archive_config(config_json, custom_objects, compile, safe_mode)
    return _saving_lib()._model_from_config(config_json, custom_objects, compile, safe_mode)


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="kerasafe-")


def keras212_layout(root: Group) -> Group:
    """A Keras 2.12/2.13 weights file (``.weights.h5`` or in a ``.keras``) laid out as later releases lay it out (dialect tables)."""
    from . import dialect

    for old, new in dialect.KERAS212_GROUP_RENAMES.items():
        group = root.children.get(old)
        if isinstance(group, Group) and new not in root.children:
            names = dialect.keras212_layer_group_names(list(group.children))
            renamed = Group(attrs=group.attrs)
            for name, child in group.children.items():
                renamed.children[names[name]] = child
            root.children[new] = renamed
            del root.children[old]
    return root
