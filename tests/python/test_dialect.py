"""One test per table in kerasafe.dialect (Keras 2 ⇄ Keras 3 differences)."""

from __future__ import annotations

import numpy as np

from kerasafe import dialect


def test_loss_aliases():
    # Metric names name the logs (val_mae): only the loss is respelled.
    assert dialect.fix_training_config({"loss": "mse", "metrics": ["mae"]}) == {"loss": "mean_squared_error", "metrics": ["mae"]}
    wrapped = {"class_name": "MeanMetricWrapper", "config": {"name": "mae", "dtype": "float32", "fn": "mean_absolute_error"}}
    renamed = {"class_name": "MeanMetricWrapper", "config": {"name": "err", "dtype": "float32", "fn": "mean_absolute_error"}}
    assert dialect.fix_training_config({"metrics": [[wrapped, renamed]]})["metrics"] == [["mae", "mean_absolute_error"]]
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


def test_keras3_to_keras2_renamed_and_dropped_args():
    layer = {"class_name": "InputLayer", "config": {"batch_shape": [None, 5], "dtype": "int32", "name": "t", "optional": False}, "name": "t", "inbound_nodes": []}
    out = dialect.keras3_to_keras2(layer)["config"]
    assert out == {"batch_input_shape": [None, 5], "dtype": "int32", "name": "t"}
    lstm = {"class_name": "LSTM", "config": {"name": "l", "units": 3, "seed": None, "use_cudnn": "auto", "quantization_config": None}}
    assert dialect.keras3_to_keras2(lstm)["config"] == {"name": "l", "units": 3}
    seeded = {"class_name": "LSTM", "config": {"name": "l", "seed": 3}}
    assert dialect.keras3_to_keras2(seeded)["config"]["seed"] == 3  # not harmless: left for tf-keras to name


def test_keras3_dtype_policies_to_keras2():
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    assert dialect.keras3_to_keras2({"class_name": "Dense", "config": {"name": "d", "dtype": policy}})["config"]["dtype"] == "float32"
    mixed = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}
    assert dialect.keras3_to_keras2({"class_name": "Dense", "config": {"dtype": mixed}})["config"]["dtype"]["class_name"] == "Policy"


def test_keras3_inbound_nodes_and_io_lists_to_keras2():
    tensor = lambda name: {"class_name": "__keras_tensor__", "config": {"shape": [None, 3], "dtype": "float32", "keras_history": [name, 0, 0]}}  # noqa: E731
    config = {
        "class_name": "Functional",
        "config": {
            "layers": [
                {"class_name": "Dense", "config": {"name": "d"}, "name": "d", "inbound_nodes": [{"args": [tensor("x")], "kwargs": {}}]},
                {"class_name": "Concatenate", "config": {"name": "c"}, "name": "c", "inbound_nodes": [{"args": [[tensor("d"), tensor("x")]], "kwargs": {"training": False, "mask": None}}]},
            ],
            "input_layers": ["x", 0, 0],
            "output_layers": [["c", 0, 0]],
        },
    }
    out = dialect.keras3_to_keras2(config)["config"]
    assert out["layers"][0]["inbound_nodes"] == [[["x", 0, 0, {}]]]
    assert out["layers"][1]["inbound_nodes"] == [[["d", 0, 0, {}], ["x", 0, 0, {}]]]
    assert out["input_layers"] == [["x", 0, 0]] and out["output_layers"] == [["c", 0, 0]]


def test_keras3_optimizer_only_args_and_class_renames():
    opt = {"module": "keras.optimizers", "class_name": "Adam", "config": {"learning_rate": 0.01, "loss_scale_factor": None, "use_ema": False, "weight_decay": None}}
    assert dialect.keras3_to_keras2(opt)["config"] == {"learning_rate": 0.01}
    init = {"module": "keras.initializers", "class_name": "OrthogonalInitializer", "config": {"gain": 1.0, "seed": None}}
    assert dialect.keras3_to_keras2(init)["class_name"] == "Orthogonal"
    glorot = {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None, "input_axes": None, "output_axes": None}}
    assert dialect.keras3_to_keras2(glorot)["config"] == {"seed": None}
    functional = {"module": "keras.src.models.functional", "class_name": "Functional", "config": {"layers": []}}
    assert dialect.keras3_to_keras2(functional)["module"] == "tf_keras.src.engine.functional"


def test_first_keras3_only_layer():
    config = {"class_name": "Functional", "config": {"layers": [{"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 3]}}]}}
    assert dialect.first_keras3_only_layer(config) == ("x", "InputLayer", "batch_shape")
    assert dialect.first_keras3_only_layer({"class_name": "Dense", "config": {"name": "d", "dtype": "float32"}}) is None


def test_keras2_layer_group_names():
    assert dialect.snake_case("BatchNormalization") == "batch_normalization" and dialect.snake_case("Conv2D") == "conv2d"
    assert dialect.keras2_layer_group_names(["Dense", "Dense", "Conv2D"]) == ["dense", "dense_1", "conv2d"]


def test_keras3_checkpoint_key():
    assert dialect.keras3_checkpoint_key("hidden/kernel/.ATTRIBUTES/VARIABLE_VALUE") == "hidden/_kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert dialect.keras3_checkpoint_key("hidden/bias/.ATTRIBUTES/VARIABLE_VALUE") == "hidden/bias/.ATTRIBUTES/VARIABLE_VALUE"


def test_optimizer_values_for_tf_keras():
    names = ["adam/iteration", "adam/learning_rate", "m0", "v0", "m1", "v1"]
    values = ["it", "lr", "m0", "v0", "m1", "v1"]
    assert dialect.optimizer_values_for_tf_keras(names, values, 2, 5, grouped=True) == ["it", "m0", "m1", "v0", "v1"]
    assert dialect.optimizer_values_for_tf_keras(names, values, 2, 5, grouped=False) == ["it", "m0", "v0", "m1", "v1"]
    k2 = ["iteration:0", "Adam/m/d/kernel:0", "Adam/v/d/kernel:0"]
    assert dialect.optimizer_values_for_tf_keras(k2, ["it", "m0", "v0"], 1, 3, grouped=True) == ["it", "m0", "v0"]
    assert dialect.optimizer_values_for_tf_keras(k2, ["it", "m0", "v0"], 1, 7, grouped=True) == ["it", "m0", "v0"]  # unrecognised: unchanged


def test_keras2_metric_wrapper_becomes_the_metric_name():
    wrapper = {"class_name": "MeanMetricWrapper", "config": {"name": "mae", "dtype": "float32", "fn": "mean_absolute_error"}}
    fixed = dialect.fix_training_config({"loss": "mse", "metrics": [[wrapper]]})
    assert fixed["metrics"] == [["mae"]]  # compile("mae") makes the wrapper, named as the user did
    resolved = {"class_name": "MeanMetricWrapper", "config": {"name": "accuracy", "fn": "categorical_accuracy"}}
    assert dialect.fix_training_config({"metrics": [resolved]})["metrics"] == ["accuracy"]
    assert wrapper["config"]["fn"] == "mean_absolute_error"  # the input is left alone
    fn = {"module": "keras.metrics", "class_name": "function", "config": "mean_absolute_error", "registered_name": "mean_absolute_error"}
    serialized = {"class_name": "MeanMetricWrapper", "config": {"name": "m", "fn": dict(fn)}}
    assert dialect.fix_training_config({"metrics": [serialized]})["metrics"][0] == serialized  # already a reference


def test_keras2_compile_none_args_dropped():
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": []}, "compile_config": {"optimizer": "adam", "loss": "mse", "steps_per_execution": None, "jit_compile": None, "run_eagerly": None}}
    assert dialect.keras2_archive_to_keras3(config)["compile_config"] == {"optimizer": "adam", "loss": "mse"}
    kept = {"class_name": "Sequential", "config": {"name": "s", "layers": []}, "compile_config": {"steps_per_execution": 4}}
    assert dialect.keras2_archive_to_keras3(kept)["compile_config"] == {"steps_per_execution": 4}


def test_keras2_optimizer_class_prefix_stripped():
    config = {"class_name": "Custom>SGD", "config": {"name": "SGD", "learning_rate": 0.01, "momentum": 0.9, "is_legacy_optimizer": False, "jit_compile": False}}
    fixed = dialect.fix_training_config({"loss": "mse", "optimizer_config": config})["optimizer_config"]
    assert fixed == {"class_name": "SGD", "config": {"name": "SGD", "learning_rate": 0.01, "momentum": 0.9}}
    custom = {"class_name": "Custom>MyOptimizer", "config": {"name": "x"}}
    assert dialect.fix_training_config({"optimizer_config": custom})["optimizer_config"] == custom


def test_keras2_wrapped_layers_get_keras3_module():
    lstm = {"class_name": "LSTM", "config": {"name": "lstm", "units": 3, "time_major": False}}
    dense = {"class_name": "Dense", "config": {"name": "d", "units": 2}}
    custom = {"class_name": "MyLayer", "config": {"name": "m"}, "module": "my.module"}
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "Bidirectional", "config": {"name": "b", "layer": lstm, "backward_layer": custom}},
                {"class_name": "TimeDistributed", "config": {"name": "t", "layer": dense}},
                {"class_name": "RNN", "config": {"name": "r", "cell": {"class_name": "StackedRNNCells", "config": {"cells": [{"class_name": "LSTMCell", "config": {"units": 2}}]}}}},
            ],
        },
    }
    layers = dialect.keras2_to_keras3(config)["config"]["layers"]
    assert layers[0]["config"]["layer"] == {"class_name": "LSTM", "config": {"name": "lstm", "units": 3}, "module": "keras.layers"}
    assert layers[0]["config"]["backward_layer"]["module"] == "my.module"
    assert layers[1]["config"]["layer"]["module"] == "keras.layers"
    cell = layers[2]["config"]["cell"]
    assert cell["module"] == "keras.layers" and cell["config"]["cells"][0]["module"] == "keras.layers"
