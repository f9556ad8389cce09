"""Run inside one producer's virtualenv (see generate.py): train the corpus models a little and
write them in every format this TensorFlow/Keras release supports.

    python produce.py PRODUCER OUT_DIR

Writes ``OUT_DIR/<format>/<kind><ext>``, ``reference.npz`` (``<kind>/in<i>``, ``<kind>/out<i>``)
and ``producer.json`` (versions; every file with its kind, format and the kerasafe function that
loads it; every format the release refused to write, with its message). Must run unchanged on
TF 2.12 … 2.21, Keras 2.12 … 3.15 and tf-keras, so features are guarded by version.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import corpus_models as cm  # noqa: E402

TF_VERSION = tuple(int(p) for p in tf.__version__.split(".")[:2])
if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras

    FLAVOUR = "tf_keras"
elif TF_VERSION <= (2, 15):
    from tensorflow import keras

    FLAVOUR = "tf.keras"
else:
    import keras

    FLAVOUR = "keras3"
KERAS3 = FLAVOUR == "keras3"

# SavedModel directories are 100s of KB each: written for fewer kinds to keep the corpus small.
# (TF <= 2.12 wrote HDF5 under a .keras name: that is the "keras" format of tf2.12-keras2.12.)
SAVEDMODEL_KINDS = {"savedmodel": ["mlp", "custom", "subclassed"], "export": ["mlp", "custom", "subclassed"], "tf_saved_model": ["mlp", "subclassed"]}


def _save_keras(model, path):
    model.save(path)


def _save_h5(model, path):
    if KERAS3:
        model.save(path)
    else:
        model.save(path, save_format="h5")


def _save_weights_h5(model, path):
    model.save_weights(path)


def _save_legacy_weights_h5(model, path):
    model.save_weights(path, save_format="h5")


def _save_tf_weights(model, path):
    model.save_weights(path, save_format="tf")


def _save_tf_checkpoint(model, path):
    tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(path)


def _save_savedmodel(model, path):
    model.save(path, save_format="tf")


def _save_export(model, path):
    model.export(path)


def _save_tf_saved_model(model, path):
    tf.saved_model.save(model, path)


# format -> (saver, path under OUT_DIR, kerasafe loader, producers that have it)
FORMATS = {
    "keras": (_save_keras, "keras/{kind}.keras", "load_model", "all"),
    "h5": (_save_h5, "h5/{kind}.h5", "load_model", "all"),
    "weights_h5": (_save_weights_h5, "weights_h5/{kind}.weights.h5", "load_weights", "all"),
    "legacy_weights_h5": (_save_legacy_weights_h5, "legacy_weights_h5/{kind}.h5", "load_weights", "keras2"),
    "tf_weights": (_save_tf_weights, "tf_weights/{kind}/ckpt", "load_weights", "keras2"),
    "tf_checkpoint": (_save_tf_checkpoint, "tf_checkpoint/{kind}/ckpt", "load_weights", "all"),
    "savedmodel": (_save_savedmodel, "savedmodel/{kind}", "load_model", "keras2"),
    "export": (_save_export, "export/{kind}", "load_model", "keras3"),
    "tf_saved_model": (_save_tf_saved_model, "tf_saved_model/{kind}", "load_model", "all"),
}


def _train(kind):
    model = cm.build(kind, keras)
    model.compile(**cm.compile_args(kind, keras))
    xs = cm.inputs(kind)
    n = 8
    reps = [np.concatenate([x] * (n // len(x) + 1))[:n] for x in xs]
    ys = cm.targets(kind, n)
    model.fit(reps if len(reps) > 1 else reps[0], ys if len(ys) > 1 else ys[0], epochs=2, batch_size=4, verbose=0)
    return model


def _keras_version() -> str:
    version = getattr(keras, "__version__", None)
    if version is None:  # tf.keras in TF <= 2.15 is a lazy loader of the `keras` 2.x package
        import keras as keras_package

        version = keras_package.__version__
    return str(version)


def main(producer: str, out: Path) -> None:
    keras.utils.set_random_seed(0) if hasattr(keras.utils, "set_random_seed") else tf.random.set_seed(0)
    reference: dict[str, np.ndarray] = {}
    files: dict[str, dict] = {}
    refused: dict[str, str] = {}
    for kind in cm.KINDS:
        model = _train(kind)
        xs = cm.inputs(kind)
        for i, x in enumerate(xs):
            reference[f"{kind}/in{i}"] = x
        for i, y in enumerate(cm.outputs(model, kind, xs)):
            reference[f"{kind}/out{i}"] = y
        for fmt, (save, pattern, loader, who) in FORMATS.items():
            if who == "keras2" and KERAS3 or who == "keras3" and not KERAS3:
                continue
            if fmt in SAVEDMODEL_KINDS and kind not in SAVEDMODEL_KINDS[fmt]:
                continue
            rel = pattern.format(kind=kind)
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                save(model, str(path))
            except Exception as exc:  # the release cannot write this: recorded, not fatal
                message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
                refused[f"{fmt}/{kind}"] = message
                print(f"   {fmt}/{kind}: not written ({message})", flush=True)
                if os.environ.get("KERASAFE_PRODUCE_DEBUG"):
                    traceback.print_exc()
                for leftover in (path, *path.parent.glob(path.name + "*")):
                    if leftover.is_dir():
                        shutil.rmtree(leftover)
                    elif leftover.exists():
                        leftover.unlink()
                for d in (path.parent, path.parent.parent):
                    if d != out and d.is_dir() and not any(d.iterdir()):
                        d.rmdir()
                continue
            files[rel] = {"kind": kind, "format": fmt, "loader": loader}
            print(f"   {fmt}/{kind}: {rel}", flush=True)
    np.savez(out / "reference.npz", **reference)
    import h5py

    info = {
        "producer": producer,
        "flavour": FLAVOUR,
        "tensorflow": tf.__version__,
        "keras": _keras_version(),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "python": platform.python_version(),
        "files": dict(sorted(files.items())),
        "not_written": dict(sorted(refused.items())),
    }
    (out / "producer.json").write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
