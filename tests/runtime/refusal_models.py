"""Models the reference interpreters cannot prepare, for the refusal tests.

A classifier whose logits come out tiny (an untrained-looking head: conv -> flatten -> dense
with very small weights -> softmax) converts to a valid full-int8 model, but its softmax
input scale is so small that ``beta * input_scale`` is below what the fixed-point softmax of
TFLM and LiteRT's reference kernels can represent: both ``abort()`` the process preparing
it, and the tinyscope runtime refuses it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT_SHAPE = (28, 28, 1)  # MNIST-shaped, so 'tinyscope convert' can calibrate it


def tiny_logit_classifier(weight_scale: float = 1e-6, seed: int = 0, classes: int = 10):
    """conv -> flatten -> dense(softmax) with the dense weights scaled by ``weight_scale``
    and zero biases: the logits span about ``weight_scale`` times their usual range."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(INPUT_SHAPE, batch_size=1)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(classes, activation="softmax", name="head")(x)
    net = keras.Model(inp, x, name="tiny_logits")
    w, b = net.get_layer("head").get_weights()
    net.get_layer("head").set_weights([w * weight_scale, np.zeros_like(b)])
    return net


def calibration_images(n: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, *INPUT_SHAPE)).astype(np.float32)


def tiny_logit_tflite(weight_scale: float = 1e-6, seed: int = 0) -> bytes:
    from tinyscope.convert.quantize import quantize_keras

    return quantize_keras(tiny_logit_classifier(weight_scale, seed), calibration_images())


def save_tiny_logit_keras(path: Path, weight_scale: float = 1e-6) -> Path:
    tiny_logit_classifier(weight_scale).save(path)
    return path
