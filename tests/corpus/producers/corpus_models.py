"""The corpus models, built the same way by every producer (Keras 2.12 … 3.15, tf-keras) and by
the consumer tests. ``keras`` is passed in: ``tf.keras`` (TF <= 2.15), ``tf_keras`` or Keras 3.

The custom objects are the tutorial's: ``ScaledDense`` (a layer), ``WeightedMSE`` (a loss) and a
subclassed model ``TinyModel`` with ``get_config``, registered under the package ``Course``.
"""

from __future__ import annotations

import numpy as np

KINDS = ["mlp", "two_io", "cnn", "custom", "subclassed"]

_CLASSES: dict = {}


def _register(keras):
    saving = getattr(keras, "saving", None)
    register = getattr(saving, "register_keras_serializable", None) or keras.utils.register_keras_serializable
    return register(package="Course")


def custom_objects(keras) -> dict:
    """``{"ScaledDense": cls, "WeightedMSE": cls, "TinyModel": cls}``, registered under ``Course``."""
    key = keras.__name__
    if key in _CLASSES:
        return _CLASSES[key]
    register = _register(keras)
    ops = getattr(keras, "ops", None)
    if ops is None:  # Keras 2
        import tensorflow as tf

        mean, square = tf.reduce_mean, tf.square
    else:
        mean, square = ops.mean, ops.square

    @register
    class ScaledDense(keras.layers.Layer):
        """A Dense layer whose output is multiplied by a fixed scale."""

        def __init__(self, units, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.scale = scale
            self.dense = keras.layers.Dense(units)

        def build(self, input_shape):
            self.dense.build(input_shape)
            super().build(input_shape)

        def call(self, inputs):
            return self.scale * self.dense(inputs)

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units, "scale": self.scale})
            return config

    @register
    class WeightedMSE(keras.losses.Loss):
        """Mean squared error times a constant weight."""

        def __init__(self, weight=1.0, name="weighted_mse", **kwargs):
            super().__init__(name=name, **kwargs)
            self.weight = weight

        def call(self, y_true, y_pred):
            return self.weight * mean(square(y_true - y_pred), axis=-1)

        def get_config(self):
            return {"weight": self.weight, "name": self.name}

    @register
    class TinyModel(keras.Model):
        """A subclassed model with get_config."""

        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.hidden = keras.layers.Dense(units, activation="relu")
            self.head = keras.layers.Dense(2)

        def call(self, inputs):
            return self.head(self.hidden(inputs))

        def get_config(self):
            return {"units": self.units, "name": self.name}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    _CLASSES[key] = {"ScaledDense": ScaledDense, "WeightedMSE": WeightedMSE, "TinyModel": TinyModel}
    return _CLASSES[key]


def build(kind: str, keras):
    """A fresh, built model of the given kind (random weights)."""
    layers = keras.layers
    if kind == "mlp":
        return keras.Sequential(
            [keras.Input((8,)), layers.Dense(16, activation="relu"), layers.BatchNormalization(), layers.Dropout(0.2), layers.Dense(3)],
            name="mlp",
        )
    if kind == "two_io":
        tokens = keras.Input((5,), dtype="int32", name="tokens")
        feats = keras.Input((4,), name="feats")
        x = layers.Embedding(20, 6)(tokens)
        x = layers.LSTM(7)(x)
        y = layers.Dense(5, activation="tanh")(feats)
        merged = layers.Concatenate()([x, y])
        return keras.Model([tokens, feats], [layers.Dense(1, name="score")(merged), layers.Dense(3, name="probs")(merged)], name="two_io")
    if kind == "cnn":
        return keras.Sequential(
            [keras.Input((8, 8, 2)), layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(), layers.Dense(2)],
            name="cnn",
        )
    if kind == "custom":
        scaled_dense = custom_objects(keras)["ScaledDense"]
        return keras.Sequential([keras.Input((32,)), scaled_dense(8, scale=0.5), layers.Dense(1)], name="custom")
    if kind == "subclassed":
        model = custom_objects(keras)["TinyModel"](units=4, name="subclassed")
        model(inputs(kind)[0])
        return model
    raise ValueError(kind)


def compile_args(kind: str, keras) -> dict:
    loss = custom_objects(keras)["WeightedMSE"](weight=2.0) if kind == "custom" else "mse"
    return {"optimizer": keras.optimizers.Adam(learning_rate=0.01), "loss": [loss, loss] if kind == "two_io" else loss}


def inputs(kind: str) -> list[np.ndarray]:
    """Fixed reference inputs."""
    rng = np.random.default_rng(11)
    if kind == "mlp":
        return [rng.standard_normal((4, 8)).astype("float32")]
    if kind == "two_io":
        return [rng.integers(0, 20, (4, 5)).astype("int32"), rng.standard_normal((4, 4)).astype("float32")]
    if kind == "cnn":
        return [rng.standard_normal((2, 8, 8, 2)).astype("float32")]
    if kind == "custom":
        return [np.linspace(-1.0, 1.0, 64, dtype="float32").reshape(2, 32)]
    if kind == "subclassed":
        return [rng.standard_normal((3, 6)).astype("float32")]
    raise ValueError(kind)


def targets(kind: str, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    if kind == "two_io":
        return [rng.standard_normal((n, 1)).astype("float32"), rng.standard_normal((n, 3)).astype("float32")]
    width = {"mlp": 3, "cnn": 2, "custom": 1, "subclassed": 2}[kind]
    return [rng.standard_normal((n, width)).astype("float32")]


def outputs(model, kind: str, xs: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The model's outputs on the reference inputs (inference mode), as a list of arrays."""
    xs = inputs(kind) if xs is None else xs
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in outs]
