#!/usr/bin/env python3
"""Write the hostile-file corpus under tests/corpus/unsafe/ (read by tests/python/test_registry.py).

Run from the repository root with Keras 3.15 (and, for the tf-keras files, `.venv-tfkeras`):

    python tests/corpus/generate_unsafe.py

Each file carries one attack pattern from spec §4.7 (or a missing custom object); `manifest.json`
lists, per file, the exception a safe-mode load must raise and the config paths (and names) its
message must contain. Payloads that would run do one visible thing: write the file named by
`$KERASAFE_MARKER` (default `/tmp/kerasafe-corpus-marker`), so a test can assert that no load
ran them. Real Keras writes the Lambda files (the bytecode is genuine and does run under
`safe_mode=False`); the other files are Keras-written configs with the pattern spliced in.

* `.keras` archives: Keras 3 Lambda bytecode; a `__lambda__` activation; `os.system`,
  `builtins.eval`, `subprocess.Popen`, `keras.utils.get_file`; the CVE-2025-8747 chain
  (`keras.config.enable_unsafe_deserialization` then a Lambda); a `__lambda__` hidden in a
  Functional node's call kwargs; `TFSMLayer`; a `StringLookup` vocabulary file path; and a
  custom layer missing three models deep (`MissingCustomObjectError`).
* `.h5` files: tf-keras Lambda bytecode (written by tf-keras when available, which loads it
  without complaint); a tf-keras `Lambda` naming `os.system`; `enable_unsafe_deserialization`
  as the loss of `training_config`; a `TFOpLambda` calling `tf.io.write_file`.
* SavedModel directories: kerasafe's `keras_config.json` with Lambda bytecode; a
  `keras_metadata.pb` (tf-keras layout) whose root and layer nodes carry Lambda bytecode; one
  whose layer node names `os.system`.
"""

from __future__ import annotations

import base64
import copy
import json
import marshal
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "unsafe"
REPO = HERE.parents[1]
MARKER_ENV = "KERASAFE_MARKER"

# The payload every live lambda carries: write the marker file.
PAYLOAD_SRC = (
    "lambda x: (__import__('pathlib').Path(__import__('os').environ.get("
    f"'{MARKER_ENV}', '/tmp/kerasafe-corpus-marker')).write_text('pwned'), x)[1]"
)

manifest: dict[str, dict] = {}


def expect(name: str, error: str, paths: list[str], names: list[str] | None = None, note: str = "") -> None:
    manifest[name] = {"error": error, "paths": paths, "names": names or [], "note": note}


def layer_index(config: dict, class_name: str) -> int:
    """Index of the first layer of ``class_name`` in a model config's ``layers``."""
    return next(i for i, layer in enumerate(config["config"]["layers"]) if layer["class_name"] == class_name)


def payload_code_b64() -> str:
    fn = eval(PAYLOAD_SRC)  # noqa: S307 - builds the payload; never called here
    return base64.b64encode(marshal.dumps(fn.__code__)).decode()


def write_keras_zip(name: str, config: dict, metadata: dict) -> None:
    with zipfile.ZipFile(OUT / name, "w") as z:
        z.writestr("metadata.json", json.dumps(metadata))
        z.writestr("config.json", json.dumps(config))


def write_h5(name: str, model_config: dict, training_config: dict | None = None) -> None:
    import h5py

    with h5py.File(OUT / name, "w") as f:
        f.attrs["keras_version"] = "2.21.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(model_config)
        if training_config is not None:
            f.attrs["training_config"] = json.dumps(training_config)
        f.create_group("model_weights").attrs["layer_names"] = []


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(num << 3) + _varint(payload)
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def write_keras_metadata(directory: Path, nodes: list[tuple[int, str, str, dict]]) -> None:
    """A `keras_metadata.pb` (SavedMetadata, spec §2.7), encoded by hand, plus an empty
    `saved_model.pb` so the directory is recognised as a SavedModel."""
    directory.mkdir(parents=True, exist_ok=True)
    blob = b""
    for node_id, path, identifier, metadata in nodes:
        version = _field(1, 2) + _field(2, 1)
        node = _field(2, node_id) + _field(3, path.encode()) + _field(4, identifier.encode())
        node += _field(5, json.dumps(metadata).encode()) + _field(6, version)
        blob += _field(1, node)
    (directory / "keras_metadata.pb").write_bytes(blob)
    (directory / "saved_model.pb").write_bytes(b"")


def keras3_part() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    layers = keras.layers
    code = payload_code_b64()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ[MARKER_ENV] = os.path.join(tmp, "marker")  # the generator's own builds run the payload
        # 1. A real Keras 3 save of a Lambda carrying the payload.
        lam = keras.Sequential([keras.Input((3,)), layers.Lambda(eval(PAYLOAD_SRC), name="payload")], name="lambda_model")  # noqa: S307
        lam.save(OUT / "k3_lambda_bytecode.keras")
        i = layer_index(keras.saving.serialize_keras_object(lam), "Lambda")
        expect("k3_lambda_bytecode.keras", "UnsafeArtifactError", [f"config.layers[{i}].config.function"],
               note="Keras 3 Lambda with marshal bytecode (runs under safe_mode=False)")

        base = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="d1"), layers.Dense(2, name="d2")], name="base")
        base.compile(optimizer="adam", loss="mse")
        base_path = os.path.join(tmp, "base.keras")
        base.save(base_path)
        with zipfile.ZipFile(base_path) as z:
            config = json.loads(z.read("config.json"))
            metadata = json.loads(z.read("metadata.json"))
        inp = keras.Input((3,), name="x")
        functional = keras.Model(inp, layers.Dense(2, name="d")(inp), name="functional")
        fconfig = keras.saving.serialize_keras_object(functional)
        lookup = keras.Sequential([keras.Input((1,), dtype="string"), layers.StringLookup(vocabulary=["a", "b"], name="lookup")])
        lconfig = keras.saving.serialize_keras_object(lookup)

        # 3. A custom layer missing at depth 3 (outer → middle → inner → Corpus>DeepLayer).
        @keras.saving.register_keras_serializable(package="Corpus")
        class DeepLayer(layers.Layer):
            def call(self, x):
                return x

        inner = keras.Sequential([keras.Input((3,)), DeepLayer(name="deep")], name="inner")
        middle = keras.Sequential([keras.Input((3,)), inner], name="middle")
        outer = keras.Sequential([keras.Input((3,)), middle], name="outer")
        outer.save(OUT / "k3_nested_missing_depth3.keras")
        oc = keras.saving.serialize_keras_object(outer)
        a = layer_index(oc, "Sequential")
        mc = oc["config"]["layers"][a]
        b = layer_index(mc, "Sequential")
        c = layer_index(mc["config"]["layers"][b], "DeepLayer")
        expect("k3_nested_missing_depth3.keras", "MissingCustomObjectError",
               [f"config.layers[{a}].config.layers[{b}].config.layers[{c}]", "outer/middle/inner/deep"], ["Corpus>DeepLayer"],
               note="registered when written, unknown to the loading process")

    # Keras 3 Sequential configs list the InputLayer first: layers[1] is d1, layers[2] is d2.
    def with_activation(obj: object) -> dict:
        c = copy.deepcopy(config)
        c["config"]["layers"][1]["config"]["activation"] = obj
        return c

    generic_lambda = {"class_name": "__lambda__", "config": {"value": [code, None, None]}}
    cases = {
        "k3_lambda_in_activation.keras": (with_activation(generic_lambda), ["config.layers[1].config.activation"], "generic __lambda__ payload"),
        "k3_os_system.keras": (
            with_activation({"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}),
            ["config.layers[1].config.activation"], "os.system as a function object"),
        "k3_builtins_eval.keras": (
            with_activation({"module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"}),
            ["config.layers[1].config.activation"], "builtins.eval as a function object"),
        "k3_get_file.keras": (
            with_activation({"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "function"}),
            ["config.layers[1].config.activation"], "keras.utils.get_file (CVE-2025-9906 pattern)"),
    }
    popen = copy.deepcopy(config)
    popen["config"]["layers"].insert(2, {"module": "subprocess", "class_name": "Popen", "registered_name": None,
                                         "config": {"args": ["sh", "-c", f'echo pwned > "${MARKER_ENV}"']}})
    cases["k3_subprocess_popen.keras"] = (popen, ["config.layers[2]"], "subprocess.Popen as a layer class")

    chain = copy.deepcopy(config)
    chain["config"]["layers"][1]["config"]["kernel_initializer"] = {
        "module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization", "registered_name": "function"}
    chain["config"]["layers"].append({"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
                                      "config": {"name": "then_lambda", "trainable": True, "dtype": "float32",
                                                 "function": {"class_name": "__lambda__", "config": {"code": code, "defaults": None, "closure": None}},
                                                 "arguments": {}}})
    cases["k3_enable_unsafe_chain.keras"] = (
        chain, ["config.layers[1].config.kernel_initializer", "config.layers[3].config.function"],
        "CVE-2025-8747: enable_unsafe_deserialization, then a Lambda")

    node = copy.deepcopy(fconfig)
    dense = next(layer for layer in node["config"]["layers"] if layer["class_name"] == "Dense")
    dense["inbound_nodes"][0]["kwargs"]["mask"] = generic_lambda
    index = node["config"]["layers"].index(dense)
    cases["k3_lambda_in_node_kwargs.keras"] = (node, [f"config.layers[{index}].inbound_nodes[0].kwargs.mask"], "__lambda__ hidden in call kwargs")

    tfsm = copy.deepcopy(config)
    tfsm["config"]["layers"][2] = {"module": "keras.layers", "class_name": "TFSMLayer", "registered_name": None,
                                   "config": {"name": "ext", "filepath": "/tmp/elsewhere", "call_endpoint": "serve"}}
    cases["k3_tfsmlayer.keras"] = (tfsm, ["config.layers[2]"], "TFSMLayer loads an external SavedModel")

    vocab = copy.deepcopy(lconfig)
    lk = next(layer for layer in vocab["config"]["layers"] if layer["class_name"] == "StringLookup")
    lk["config"]["vocabulary"] = "/etc/passwd"
    index = vocab["config"]["layers"].index(lk)
    cases["k3_vocabulary_file.keras"] = (vocab, [f"config.layers[{index}].config.vocabulary"], "StringLookup reading a file path")

    for name, (cfg, paths, note) in cases.items():
        write_keras_zip(name, cfg, metadata)
        expect(name, "UnsafeArtifactError", paths, note=note)

    # .h5 files crafted from a tf-keras style model_config.
    def tk_model(extra: dict) -> dict:
        return {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "dtype": "float32", "sparse": False, "ragged": False, "name": "input_1"}},
            extra,
            {"class_name": "Dense", "config": {"name": "dense", "trainable": True, "dtype": "float32", "units": 1, "activation": "linear"}}]}}

    write_h5("tk_lambda_os_system.h5", tk_model(
        {"class_name": "Lambda", "config": {"name": "lambda", "trainable": True, "dtype": "float32", "function": "system",
                                            "function_type": "function", "module": "os", "output_shape": None,
                                            "output_shape_type": "raw", "output_shape_module": None, "arguments": {}}}))
    expect("tk_lambda_os_system.h5", "UnsafeArtifactError", ["model_config.config.layers[1].config.function"],
           note="tf-keras Lambda naming os.system")
    write_h5("tk_tfop_write_file.h5", tk_model(
        {"class_name": "TFOpLambda", "config": {"name": "tf.io.write_file", "trainable": True, "dtype": "float32", "function": "io.write_file"}}))
    expect("tk_tfop_write_file.h5", "UnsafeArtifactError", ["model_config.config.layers[1].config.function"],
           note="TFOpLambda calling tf.io.write_file")
    write_h5("tk_enable_unsafe_loss.h5",
             tk_model({"class_name": "Dense", "config": {"name": "d0", "trainable": True, "dtype": "float32", "units": 3}}),
             {"loss": {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization", "registered_name": "function"},
              "metrics": None, "weighted_metrics": None, "loss_weights": None, "optimizer_config": {"class_name": "Custom>Adam", "config": {"name": "Adam"}}})
    expect("tk_enable_unsafe_loss.h5", "UnsafeArtifactError", ["training_config.loss"],
           note="enable_unsafe_deserialization as the training loss")

    # SavedModel directories.
    sm = OUT / "sm_keras_config_lambda"
    sm.mkdir()
    (sm / "saved_model.pb").write_bytes(b"")
    with zipfile.ZipFile(OUT / "k3_lambda_bytecode.keras") as z:
        lam_config = json.loads(z.read("config.json"))
    (sm / "keras_config.json").write_text(json.dumps({"format": "kerasafe-savedmodel", "version": 1, "config": lam_config}, indent=1))
    i = layer_index(lam_config, "Lambda")
    expect("sm_keras_config_lambda", "UnsafeArtifactError", [f"config.config.layers[{i}].config.function"],
           note="kerasafe SavedModel record carrying Lambda bytecode")

    tk_lambda = {"class_name": "Lambda", "config": {"name": "payload", "trainable": True, "dtype": "float32",
                                                     "function": [code, None, None], "function_type": "lambda", "module": "__main__",
                                                     "output_shape": None, "output_shape_type": "raw", "output_shape_module": None, "arguments": {}}}
    root = {"name": "sequential", "class_name": "Sequential", "config": tk_model(tk_lambda)["config"],
            "model_config": tk_model(tk_lambda), "is_graph_network": True}
    write_keras_metadata(OUT / "sm_keras_metadata_lambda", [
        (0, "root", "_tf_keras_sequential", root),
        (1, "root.layer-0", "_tf_keras_layer", {"name": "payload", "class_name": "Lambda", "config": tk_lambda["config"]}),
    ])
    expect("sm_keras_metadata_lambda", "UnsafeArtifactError",
           ["root.model_config.config.layers[1].config.function", '["root.layer-0"].config.function'],
           note="tf-keras keras_metadata.pb with Lambda bytecode in the root and the layer node")
    os_lambda = {"name": "sys", "class_name": "Lambda", "config": {"name": "sys", "function": "system", "function_type": "function", "module": "os"}}
    write_keras_metadata(OUT / "sm_keras_metadata_os_system", [
        (0, "root", "_tf_keras_sequential", {"name": "sequential", "class_name": "Sequential", "config": {"name": "sequential", "layers": []}}),
        (1, "root.layer-0", "_tf_keras_layer", os_lambda),
    ])
    expect("sm_keras_metadata_os_system", "UnsafeArtifactError", ['["root.layer-0"].config.function'],
           note="keras_metadata.pb layer node naming os.system")


TF_KERAS_SCRIPT = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tf_keras as keras
os.environ[{env!r}] = sys.argv[2]
model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda({payload}, name="payload")])
model.save(sys.argv[1])
"""


def tf_keras_part() -> None:
    python = os.environ.get("TF_KERAS_PYTHON") or str(REPO / ".venv-tfkeras" / "bin" / "python")
    name = "tk_lambda_bytecode.h5"
    if not Path(python).exists():
        print("no tf-keras interpreter: tk_lambda_bytecode.h5 not written")
        return
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory() as tmp:
        script = TF_KERAS_SCRIPT.format(env=MARKER_ENV, payload=PAYLOAD_SRC)
        subprocess.run([python, "-c", script, str(OUT / name), os.path.join(tmp, "marker")], env=env, check=True, capture_output=True)
    import h5py

    with h5py.File(OUT / name, "r") as f:
        i = layer_index(json.loads(f.attrs["model_config"]), "Lambda")
    expect(name, "UnsafeArtifactError", [f"model_config.config.layers[{i}].config.function"],
           note="tf-keras Lambda .h5 (tf-keras loads it and runs the bytecode, even in safe mode)")


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    keras3_part()
    tf_keras_part()
    (OUT / "manifest.json").write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    print(f"wrote {len(manifest)} cases to {OUT} (python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
