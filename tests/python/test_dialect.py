"""One test per table in kerasafe.dialect (Keras 2 ⇄ Keras 3 differences)."""

from __future__ import annotations

import numpy as np

from kerasafe import dialect


def test_loss_aliases():
    assert dialect.fix_training_config({"loss": "mse", "metrics": ["mae"]}) == {"loss": "mean_squared_error", "metrics": ["mean_absolute_error"]}
    ref = {"module": "keras.metrics", "class_name": "function", "config": "mse", "registered_name": "mse"}
    assert dialect.fix_training_config({"loss": ref})["loss"] == "mean_squared_error"


def test_keras2_only_args_dropped_when_harmless():
    lstm = {"class_name": "LSTM", "config": {"name": "l", "units": 3, "time_major": False}}
    assert "time_major" not in dialect.keras2_to_keras3(lstm)["config"]
    kept = {"class_name": "LSTM", "config": {"name": "l", "units": 3, "time_major": True}}
    assert dialect.keras2_to_keras3(kept)["config"]["time_major"] is True


def test_nested_model_node_indices_shift():
    config = {
        "class_name": "Functional",
        "config": {
            "layers": [
                {"class_name": "Sequential", "config": {"name": "inner"}, "name": "inner", "inbound_nodes": []},
                {"class_name": "Dense", "config": {"name": "d"}, "name": "d", "inbound_nodes": [[["inner", 1, 0, {}]]]},
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["inner", 1, 0]],
        },
    }
    out = dialect.keras2_nested_node_indices(config)["config"]
    assert out["layers"][1]["inbound_nodes"] == [[["inner", 0, 0, {}]]]
    assert out["output_layers"] == [["inner", 0, 0]]


def test_keras3_module_by_class():
    for module in ("keras.src.engine.functional", "tf_keras.src.engine.functional"):
        out = dialect.keras2_archive_to_keras3({"module": module, "class_name": "Functional", "config": {"layers": []}})
        assert out["module"] == "keras.src.models.functional"
    seq = dialect.keras2_archive_to_keras3({"module": "keras", "class_name": "Sequential", "config": {"layers": []}})
    assert seq["module"] == "keras"


def test_keras2_module_prefixes():
    out = dialect.keras2_archive_to_keras3({"module": "tf_keras.layers", "class_name": "Dense", "config": {"name": "d", "trainable": True}})
    assert out["module"] == "keras.layers"
    out = dialect.keras2_archive_to_keras3({"module": "tf_keras.src.layers.core.dense", "class_name": "Dense", "config": {}})
    assert out["module"] == "keras.src.layers.core.dense"


def test_keras2_archive_only_args():
    layer = dialect.keras2_archive_to_keras3({"module": "keras.layers", "class_name": "InputLayer", "config": {"name": "i", "ragged": False, "sparse": False}})
    assert "ragged" not in layer["config"]
    ragged = dialect.keras2_archive_to_keras3({"module": "keras.layers", "class_name": "InputLayer", "config": {"name": "i", "ragged": True}})
    assert ragged["config"]["ragged"] is True  # not harmless: left for Keras 3 to name
    opt = dialect.keras2_archive_to_keras3({"module": "keras.optimizers", "class_name": "Adam", "config": {"learning_rate": 0.1, "is_legacy_optimizer": False, "jit_compile": True}})
    assert opt["config"] == {"learning_rate": 0.1}


def test_keras2_renamed_args():
    layer = dialect.keras2_archive_to_keras3({"module": "keras.layers", "class_name": "InputLayer", "config": {"name": "i", "batch_input_shape": [None, 3]}})
    assert layer["config"] == {"name": "i", "batch_shape": [None, 3]}


def test_keras2_layer_input_args():
    layer = {"module": "keras.layers", "class_name": "Embedding", "config": {"name": "e", "trainable": True, "batch_input_shape": [None, None], "input_length": None, "input_dim": 3}}
    out = dialect.keras2_archive_to_keras3(layer)["config"]
    assert "batch_input_shape" not in out and "input_length" not in out and out["input_dim"] == 3


def test_keras2_list_args():
    bn = dialect.keras2_archive_to_keras3({"module": "keras.layers", "class_name": "BatchNormalization", "config": {"name": "b", "trainable": True, "axis": [1]}})
    assert bn["config"]["axis"] == 1
    two = dialect.keras2_archive_to_keras3({"module": "keras.layers", "class_name": "BatchNormalization", "config": {"name": "b", "trainable": True, "axis": [1, 2]}})
    assert two["config"]["axis"] == [1, 2]


def test_keras2_versions():
    assert dialect.is_keras2_version("2.15.0") and dialect.is_keras2_version("2.21.0")
    assert not dialect.is_keras2_version("3.0.5") and not dialect.is_keras2_version(None)


def test_keras212_layer_group_names():
    names = dialect.keras212_layer_group_names(["dense", "dense_2", "dense_4", "embedding", "input_layer", "input_layer_1", "lstm"])
    assert names == {"dense": "dense", "dense_2": "dense_1", "dense_4": "dense_2", "embedding": "embedding", "input_layer": "input_layer", "input_layer_1": "input_layer_1", "lstm": "lstm"}
    assert dialect.KERAS212_GROUP_RENAMES == {"_layer_checkpoint_dependencies": "layers"}


class _Var:
    def __init__(self, value):
        self.value = np.asarray(value)

    def numpy(self):
        return self.value


def test_keras2_optimizer_values_get_the_learning_rate():
    names = ["iteration:0", "Adam/m/dense/kernel:0", "Adam/v/dense/kernel:0"]
    values = [np.int64(3), np.ones(2), np.zeros(2)]
    paths = ["adam/iteration", "adam/learning_rate", "adam/dense_kernel_momentum", "adam/dense_kernel_velocity"]
    variables = [_Var(0), _Var(0.01), _Var([0, 0]), _Var([0, 0])]
    out = dialect.keras2_optimizer_values(names, values, paths, variables)
    assert len(out) == 4 and abs(float(out[1]) - 0.01) < 1e-9
    assert out[2] is values[1]
    # A Keras 3 file (learning_rate stored) passes unchanged.
    same = dialect.keras2_optimizer_values(["adam/iteration", "adam/learning_rate"], values[:2], paths[:2], variables[:2])
    assert same == values[:2]
