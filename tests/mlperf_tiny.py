"""Keras twins of the four MLPerf Tiny reference architectures, written from their published
descriptions (MLPerf Tiny v0.5+, github.com/mlcommons/tiny, benchmark/training/*), with
random weights, and their conversion to a full-int8 ``.tflite`` the way a user's own training
pipeline would do it (TFLiteConverter, representative data, int8 input and output).

The tests treat these files exactly as a user's ``.tflite``: tinyscope never sees the Keras
models. Batch normalization is given random statistics so the folded weights are not trivial.

=====================  ==========  ===================================================  =====
name                   input       architecture                                         ops
=====================  ==========  ===================================================  =====
``vww``                96x96x3     MobileNetV1 alpha 0.25: conv 3x3/2 8, 13 depthwise   31
                                   separable blocks (16 .. 256 channels), avg pool,
                                   dense 2 (person detection)
``resnet8``            32x32x3     ResNet-8: conv 16, three residual stacks 16/32/64    ~13
                                   (1x1 conv shortcut when the shape changes), avg
                                   pool 8, dense 10 (CIFAR-10)
``dscnn``              49x10x1     DS-CNN: conv 10x4/2 64, 4 x (depthwise 3x3 64 +      ~13
                                   pointwise 64), avg pool 25x5, dense 12 (keyword
                                   spotting on MFCCs)
``autoencoder``        640         FC autoencoder 640-128-128-128-128-8-128-128-128-    10
                                   128-640 (anomaly detection on log-mel frames)
=====================  ==========  ===================================================  =====
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np

ARCHITECTURES = ("vww", "resnet8", "dscnn", "autoencoder")
INPUT_SHAPES = {
    "vww": (96, 96, 3),
    "resnet8": (32, 32, 3),
    "dscnn": (49, 10, 1),
    "autoencoder": (640,),
}
# The real input domain each benchmark feeds (what the representative data and test inputs
# are drawn from): images in [0, 1] (VWW: [-1, 1] after MobileNet preprocessing), MFCCs
# roughly in [-250, 50] (scaled), log-mel energies around [-60, 0] dB.
INPUT_RANGES = {
    "vww": (-1.0, 1.0),
    "resnet8": (0.0, 1.0),
    "dscnn": (-4.0, 4.0),
    "autoencoder": (-6.0, 2.0),
}


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def _bn(layers, rng: np.random.Generator, x, name: str):
    """BatchNormalization with random (but sane) statistics, as after training."""
    bn = layers.BatchNormalization(name=name)
    y = bn(x)
    c = bn.gamma.shape[0]
    bn.set_weights([
        rng.uniform(0.5, 1.5, c).astype(np.float32),  # gamma
        rng.uniform(-0.2, 0.2, c).astype(np.float32),  # beta
        rng.uniform(-0.2, 0.2, c).astype(np.float32),  # moving mean
        rng.uniform(0.5, 1.5, c).astype(np.float32),  # moving variance
    ])
    return y


def mobilenet_v1_vww(seed: int = 0, alpha: float = 0.25, classes: int = 2):
    """MobileNetV1 (alpha 0.25) at 96x96x3, the MLPerf Tiny visual wake words model."""
    keras = _keras()
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = keras.Input((96, 96, 3), batch_size=1, name="image")
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False,
                      name="conv1")(inputs)
    x = layers.ReLU(name="conv1_relu")(_bn(layers, rng, x, "conv1_bn"))
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
              (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
    for i, (filters, stride) in enumerate(blocks, 1):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                   name=f"dw{i}")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(_bn(layers, rng, x, f"dw{i}_bn"))
        x = layers.Conv2D(int(filters * alpha), 1, use_bias=False, name=f"pw{i}")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(_bn(layers, rng, x, f"pw{i}_bn"))
    x = layers.AveragePooling2D(pool_size=x.shape[1:3], name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(classes, name="logits")(x)
    outputs = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, outputs, name="vww_mobilenet_v1_025")


def resnet8(seed: int = 0, classes: int = 10):
    """ResNet-8 at 32x32x3, the MLPerf Tiny image classification model (CIFAR-10)."""
    keras = _keras()
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = keras.Input((32, 32, 3), batch_size=1, name="image")
    x = layers.Conv2D(16, 3, padding="same", name="conv0")(inputs)
    x = layers.ReLU(name="conv0_relu")(_bn(layers, rng, x, "conv0_bn"))
    for stack, filters in enumerate((16, 32, 64), 1):
        stride = 1 if stack == 1 else 2
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"s{stack}_conv1")(x)
        y = layers.ReLU(name=f"s{stack}_relu1")(_bn(layers, rng, y, f"s{stack}_bn1"))
        y = layers.Conv2D(filters, 3, padding="same", name=f"s{stack}_conv2")(y)
        y = _bn(layers, rng, y, f"s{stack}_bn2")
        if stride != 1:
            x = layers.Conv2D(filters, 1, strides=stride, name=f"s{stack}_shortcut")(x)
        x = layers.Add(name=f"s{stack}_add")([x, y])
        x = layers.ReLU(name=f"s{stack}_relu2")(x)
    x = layers.AveragePooling2D(pool_size=8, name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(classes, name="logits")(x)
    outputs = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, outputs, name="resnet8")


def ds_cnn(seed: int = 0, filters: int = 64, classes: int = 12):
    """DS-CNN (small) at 49x10x1 MFCCs, the MLPerf Tiny keyword spotting model."""
    keras = _keras()
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = keras.Input((49, 10, 1), batch_size=1, name="mfcc")
    x = layers.Conv2D(filters, (10, 4), strides=2, padding="same", name="conv1")(inputs)
    x = layers.ReLU(name="conv1_relu")(_bn(layers, rng, x, "conv1_bn"))
    for i in range(1, 5):
        x = layers.DepthwiseConv2D(3, padding="same", name=f"dw{i}")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(_bn(layers, rng, x, f"dw{i}_bn"))
        x = layers.Conv2D(filters, 1, name=f"pw{i}")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(_bn(layers, rng, x, f"pw{i}_bn"))
    x = layers.AveragePooling2D(pool_size=x.shape[1:3], name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(classes, name="logits")(x)
    outputs = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, outputs, name="ds_cnn")


def fc_autoencoder(seed: int = 0, dim: int = 640):
    """The MLPerf Tiny anomaly detection autoencoder, 640-128x4-8-128x4-640 (no softmax)."""
    keras = _keras()
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = keras.Input((dim,), batch_size=1, name="logmel")
    x = inputs
    for i, units in enumerate((128, 128, 128, 128, 8, 128, 128, 128, 128), 1):
        x = layers.Dense(units, name=f"dense{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(_bn(layers, rng, x, f"bn{i}"))
    outputs = layers.Dense(dim, name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="fc_autoencoder")


BUILDERS: dict[str, Callable] = {
    "vww": mobilenet_v1_vww,
    "resnet8": resnet8,
    "dscnn": ds_cnn,
    "autoencoder": fc_autoencoder,
}


def inputs(name: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` float inputs for ``name`` in its input domain, shape ``(n, *input shape)``."""
    lo, hi = INPUT_RANGES[name]
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, (n, *INPUT_SHAPES[name])).astype(np.float32)


def to_int8_tflite(model, calibration: np.ndarray) -> bytes:
    """Full-int8 conversion (int8 input and output), as in the TFLite documentation."""
    import tensorflow as tf

    def representative() -> Iterator[list[np.ndarray]]:
        for sample in calibration:
            yield [sample[None, ...].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def build_int8(name: str, seed: int = 0, calib: int = 16):
    """``(keras_model, int8 .tflite bytes)`` of architecture ``name``."""
    model = BUILDERS[name](seed=seed)
    return model, to_int8_tflite(model, inputs(name, calib, seed=seed + 1))


def cached_int8(name: str, cache_dir, seed: int = 0) -> tuple:
    """``(keras_path, tflite_path)`` of architecture ``name``, built once and kept in
    ``cache_dir`` under a key of this module's source and the TensorFlow version (so a
    change to an architecture or to TF builds it again)."""
    import hashlib
    from pathlib import Path

    import tensorflow as tf

    key = hashlib.sha256(Path(__file__).read_bytes() + tf.__version__.encode()).hexdigest()[:12]
    root = Path(cache_dir) / f"{name}-{seed}-{key}"
    keras_path, tflite_path = root / f"{name}.keras", root / f"{name}.tflite"
    if not (keras_path.is_file() and tflite_path.is_file()):
        root.mkdir(parents=True, exist_ok=True)
        model, tfl = build_int8(name, seed=seed)
        model.save(keras_path)
        tmp = tflite_path.with_suffix(".tmp")
        tmp.write_bytes(tfl)
        tmp.replace(tflite_path)
    return keras_path, tflite_path
