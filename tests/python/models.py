"""Model builders shared by the Keras 3 tests and the tf-keras subprocesses.

The source of this file is executed in both environments with ``keras`` bound to the Keras in
use (Keras 3, or tf-keras as ``keras``), so the same architecture is built on each side.
"""

# ruff: noqa: F821  (keras is injected by whoever executes this source)
import numpy as np


_CLASSES = {}


def scaled_dense_class(keras):
    """One class per Keras module, registered as ``Tests>ScaledDense`` so saved files reload."""
    if keras.__name__ in _CLASSES:
        return _CLASSES[keras.__name__]
    register = keras.saving.register_keras_serializable if hasattr(keras, "saving") and hasattr(keras.saving, "register_keras_serializable") else keras.utils.register_keras_serializable

    @register(package="Tests")
    class ScaledDense(keras.layers.Layer):
        """The tutorial's custom layer: a Dense sublayer times a scale."""

        def __init__(self, units, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.scale = scale
            self.dense = keras.layers.Dense(units)

        def call(self, inputs):
            return self.scale * self.dense(inputs)

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units, "scale": self.scale})
            return config

    _CLASSES[keras.__name__] = ScaledDense
    return ScaledDense


def build(kind, keras):
    layers = keras.layers
    if kind == "mlp":
        return keras.Sequential(
            [keras.Input((8,)), layers.Dense(16, activation="relu"), layers.BatchNormalization(), layers.Dropout(0.2), layers.Dense(3)]
        )
    if kind == "two_in_two_out":
        tokens = keras.Input((5,), dtype="int32", name="tokens")
        feats = keras.Input((4,), name="feats")
        x = layers.Embedding(20, 6)(tokens)
        x = layers.LSTM(7)(x)
        y = layers.Dense(5, activation="tanh")(feats)
        merged = layers.Concatenate()([x, y])
        return keras.Model([tokens, feats], [layers.Dense(1, name="score")(merged), layers.Dense(3, name="probs")(merged)])
    if kind == "cnn":
        return keras.Sequential(
            [keras.Input((8, 8, 2)), layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(), layers.Dense(2)]
        )
    if kind == "nested":
        inner = keras.Sequential([keras.Input((6,)), layers.Dense(5), layers.Dense(4)], name="inner")
        inp = keras.Input((6,))
        return keras.Model(inp, layers.Dense(2)(inner(layers.Dense(6)(inp))))
    if kind == "custom":
        ScaledDense = scaled_dense_class(keras)
        return keras.Sequential([keras.Input((32,)), ScaledDense(8, scale=0.5), layers.Dense(1)])
    raise ValueError(kind)


def sample_input(kind):
    rng = np.random.default_rng(7)
    if kind == "mlp":
        return [rng.standard_normal((4, 8)).astype("float32")]
    if kind == "two_in_two_out":
        return [rng.integers(0, 20, (4, 5)).astype("int32"), rng.standard_normal((4, 4)).astype("float32")]
    if kind == "cnn":
        return [rng.standard_normal((2, 8, 8, 2)).astype("float32")]
    if kind == "nested":
        return [rng.standard_normal((3, 6)).astype("float32")]
    if kind == "custom":
        return [np.linspace(-1.0, 1.0, 32, dtype="float32").reshape(1, 32)]
    raise ValueError(kind)


def randomize(model, seed=0):
    """Give every weight (BatchNorm statistics too) distinct values, so a mix-up shows."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.uniform(0.5, 1.5, tuple(w.shape)) if "variance" in w.name else rng.standard_normal(tuple(w.shape)) * 0.3
        w.assign(value.astype(str(w.dtype).replace("<dtype: '", "").replace("'>", "")))


def predict(model, kind):
    out = model(sample_input(kind) if kind == "two_in_two_out" else sample_input(kind)[0], training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in outs]


KINDS = ["mlp", "two_in_two_out", "cnn", "nested", "custom"]
