"""A small Keras CNN converted as users often do: an int8 body with float32 input and output
(``inference_input_type = tf.float32``: the converter puts a QUANTIZE at the input and a
DEQUANTIZE at the output), with operators of today's models inside (hard-swish,
squeeze-and-excite, a transposed convolution, leaky ReLU). Shared by the wire and
end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPE = (12, 12, 1)
CLASSES = 4


def keras_model(seed: int = 1):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input(SHAPE, batch_size=1, name="pixels")
    x = layers.Conv2D(4, 3, padding="same", activation="hard_swish", name="conv")(inp)
    # squeeze-and-excite: MEAN, FULLY_CONNECTED, LOGISTIC, MUL
    se = layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    se = layers.Dense(4, activation="sigmoid", name="excite")(se)
    x = layers.Multiply(name="scale")([x, se])
    x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="up")(x)
    x = layers.MaxPooling2D(4, name="pool")(x)
    x = layers.LeakyReLU(0.2, name="leaky")(x)
    x = layers.Flatten(name="flat")(x)
    return keras.Model(inp, layers.Dense(CLASSES, name="logits")(x), name="float_io")


def float_inputs(n: int, seed: int = 0, outlier: bool = True) -> np.ndarray:
    """Real inputs in -1..1; with ``outlier`` one pixel of each is 3.5, beyond what the
    calibration saw (the QUANTIZE at the input saturates it)."""
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, (n, *SHAPE)).astype(np.float32)
    if outlier:
        x[:, 0, 0, 0] = 3.5
    return x


def float_io_tflite(model, calibration: np.ndarray) -> bytes:
    import tensorflow as tf
    from tinyscope.quiet import native_output

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c[None]] for c in calibration)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.float32
    conv.inference_output_type = tf.float32
    with native_output():
        return bytes(conv.convert())


def write(root: Path) -> tuple[Path, Path]:
    """``root/float_io.keras`` and ``root/float_io.tflite``."""
    root.mkdir(parents=True, exist_ok=True)
    model = keras_model()
    keras_path, tflite_path = root / "float_io.keras", root / "float_io.tflite"
    model.save(keras_path)
    tflite_path.write_bytes(float_io_tflite(model, float_inputs(16, seed=5, outlier=False)))
    return keras_path, tflite_path
