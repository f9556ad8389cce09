"""Load every corpus file with kerasafe into the installed Keras and compare with the producer's
outputs. ``TF_USE_LEGACY_KERAS=1`` makes tf-keras the consumer, as it does for kerasafe.

    python consume.py RESULTS.json [PRODUCER/REL ...]

Writes ``{"consumer": ..., "results": {"<producer>/<rel>": {"status": "ok" | "error" |
"mismatch", ...}}}``. Used by tests/python/test_cross_version.py and matrix.py.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

import corpus_models as cm  # noqa: E402

# LSTM (two_io) outputs go through sigmoid/tanh recurrences whose kernels (oneDNN vs. Eigen,
# fused vs. unrolled) differ between releases in the last bits; 1e-5 holds for the rest.
TOLERANCE = {"two_io": 1e-4}
DEFAULT_TOLERANCE = 1e-5


def cases() -> list[tuple[str, str, dict]]:
    """``(producer, rel, entry)`` for every file every producer wrote, in a stable order."""
    out = []
    for info_path in sorted(HERE.glob("*/producer.json")):
        info = json.loads(info_path.read_text())
        for rel, entry in info["files"].items():
            out.append((info_path.parent.name, rel, entry))
    return out


def consumer_keras():
    from kerasafe.keras_bridge import keras_module

    return keras_module()


def consumer_name(keras) -> str:
    return f"tf-keras {keras.__version__}" if keras.__name__ == "tf_keras" else f"Keras {keras.__version__}"


def _loaded_into(model, keras) -> str | None:
    """``"keras"`` for a model of the consumer's Keras, ``"serving"`` for kerasafe's InferenceModel
    over a SavedModel signature, None for a model of the other Keras."""
    if type(model).__name__ == "InferenceModel" and type(model).__module__.startswith("kerasafe"):
        return "serving"
    package = keras.__name__.split(".")[0]
    if any(c.__module__.split(".")[0] == package for c in type(model).__mro__):
        return "keras"
    return None


def run_case(producer: str, rel: str, entry: dict, keras) -> dict:
    import kerasafe

    cm.custom_objects(keras)  # registered under "Course", as the producer had them
    kind = entry["kind"]
    path = HERE / producer / rel
    reference = np.load(HERE / producer / "reference.npz")
    xs = [reference[f"{kind}/in{i}"] for i in range(len(cm.inputs(kind)))]
    expected = [reference[k] for k in sorted((k for k in reference.files if k.startswith(f"{kind}/out")), key=lambda k: int(k.rsplit("out", 1)[1]))]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if entry["loader"] == "load_model":
                model = kerasafe.load_model(path)
            else:
                model = cm.build(kind, keras)
                kerasafe.load_weights(model, path)
            got = cm.outputs(model, kind, xs)
    except Exception as exc:  # recorded; the test decides whether it was expected
        return {
            "status": "error",
            "type": type(exc).__name__,
            "kerasafe_error": type(exc).__module__.startswith("kerasafe"),
            "message": str(exc)[:2000],
            "traceback": traceback.format_exc()[-3000:],
        }
    loaded_into = _loaded_into(model, keras)
    if loaded_into is None:
        return {"status": "wrong_keras", "message": f"loaded as {type(model).__module__}.{type(model).__name__}, not a {keras.__name__} model"}
    kerasafe_warnings = sorted({str(w.message)[:300] for w in caught if type(w.category).__name__ and w.category.__name__ == "KerasafeWarning"})
    if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
        return {"status": "mismatch", "message": f"outputs {[g.shape for g in got]}, reference {[e.shape for e in expected]}", "warnings": kerasafe_warnings}
    diff = max(float(np.max(np.abs(g.astype("float64") - e.astype("float64")))) for g, e in zip(got, expected))
    tol = TOLERANCE.get(kind, DEFAULT_TOLERANCE)
    status = "ok" if diff <= tol else "mismatch"
    return {"status": status, "max_abs_diff": diff, "tolerance": tol, "model": type(model).__name__, "loaded_into": loaded_into, "warnings": kerasafe_warnings}


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = consumer_keras()
    wanted = set(argv[1:])
    results = {}
    for producer, rel, entry in cases():
        key = f"{producer}/{rel}"
        if wanted and key not in wanted:
            continue
        results[key] = run_case(producer, rel, entry, keras)
    backend = keras.backend.backend() if hasattr(keras.backend, "backend") else "tensorflow"
    out = {"consumer": consumer_name(keras), "backend": backend, "results": results}
    Path(argv[0]).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
