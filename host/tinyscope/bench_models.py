"""Keras twins of the four MLPerf Tiny reference architectures, for ``make bench-suite``.

Written here from the published layer lists (no code copied), seeded random weights, no
BatchNorm (conversion folds it into the convolutions: the operators and MACs are the same)
and logits heads (no softmax: with random weights ``beta * input_scale`` can overflow and
TFLM aborts). Instruction counts depend on shapes, not on the weights' values.

- ``mobilenet``: MobileNetV1 alpha 0.25, 96x96x3, 2 classes (person detection, 7.49 M MACs)
- ``resnet8``: ResNet-8, 32x32x3, 16/32/64 filters, 10 classes (CIFAR-10, 12.5 M MACs)
- ``dscnn``: DS-CNN, 49x10x1 MFCC, 64 filters, 12 classes (keyword spotting, 2.66 M MACs)
- ``autoencoder``: FC autoencoder 640-128-128-128-128-8-128-128-128-128-640 (anomaly
  detection, 0.26 M MACs); its 640 inputs enter as a 5x128x1 image and a RESHAPE.

Calibration and test inputs are a seeded ``.npy`` of uniform float inputs in [0, 1) of the
model's input shape (``twin_inputs``): they only set the quantization ranges, which do not
change instruction counts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

TWINS_VERSION = 2  # bump when a twin's layers change (the file names carry it)


def _keras():
    from tinyscope.convert.model import _keras as k

    return k()


def mobilenet_v1_025():
    keras = _keras()
    L = keras.layers
    inp = keras.Input((96, 96, 3), batch_size=1, name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(inp)
    # (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks, alpha 0.25
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
              (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)]
    for i, (f, s) in enumerate(blocks, 1):
        x = L.DepthwiseConv2D(3, strides=s, padding="same", activation="relu", name=f"dw{i}")(x)
        x = L.Conv2D(f, 1, activation="relu", name=f"pw{i}")(x)
    x = L.AveragePooling2D(3, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(2, name="logits")(x)
    return keras.Model(inp, out, name="mobilenet_v1_025")


def resnet8():
    keras = _keras()
    L = keras.layers
    inp = keras.Input((32, 32, 3), batch_size=1, name="image")
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    for i, (f, s) in enumerate([(16, 1), (32, 2), (64, 2)], 1):
        y = L.Conv2D(f, 3, strides=s, padding="same", activation="relu", name=f"s{i}a")(x)
        y = L.Conv2D(f, 3, padding="same", name=f"s{i}b")(y)
        if s != 1:
            x = L.Conv2D(f, 1, strides=s, name=f"s{i}short")(x)
        x = L.Activation("relu", name=f"s{i}relu")(L.Add(name=f"s{i}add")([x, y]))
    x = L.AveragePooling2D(8, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(10, name="logits")(x)
    return keras.Model(inp, out, name="resnet8")


def dscnn():
    keras = _keras()
    L = keras.layers
    inp = keras.Input((49, 10, 1), batch_size=1, name="mfcc")
    x = L.Conv2D(64, (10, 4), strides=2, padding="same", activation="relu", name="conv1")(inp)
    for i in range(1, 5):
        x = L.DepthwiseConv2D(3, padding="same", activation="relu", name=f"dw{i}")(x)
        x = L.Conv2D(64, 1, activation="relu", name=f"pw{i}")(x)
    x = L.AveragePooling2D((25, 5), name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(12, name="logits")(x)
    return keras.Model(inp, out, name="dscnn")


def autoencoder():
    keras = _keras()
    L = keras.layers
    inp = keras.Input((5, 128, 1), batch_size=1, name="frames")
    x = L.Reshape((640,), name="flatten")(inp)
    for i, n in enumerate([128, 128, 128, 128, 8, 128, 128, 128, 128], 1):
        x = L.Dense(n, activation="relu", name=f"fc{i}")(x)
    out = L.Dense(640, name="fc10")(x)
    return keras.Model(inp, out, name="fc_autoencoder")


TWINS: dict[str, Callable] = {
    "mobilenet": mobilenet_v1_025, "resnet8": resnet8, "dscnn": dscnn,
    "autoencoder": autoencoder,
}


def twin_model(name: str, work: Path) -> Path:
    """The twin ``name`` saved under ``work`` (written once, seeded); returns its path."""
    path = work / f"{name}-v{TWINS_VERSION}.keras"
    if not path.is_file():
        keras = _keras()
        keras.utils.set_random_seed(7)
        work.mkdir(parents=True, exist_ok=True)
        TWINS[name]().save(path)
    return path


def twin_inputs(name: str, work: Path, n: int = 32) -> Path:
    """Seeded uniform float inputs for the twin ``name`` as ``.npy`` (written once)."""
    path = work / f"{name}-v{TWINS_VERSION}-inputs.npy"
    if not path.is_file():
        shape = tuple(int(s) for s in TWINS[name]().inputs[0].shape[1:])
        rng = np.random.default_rng(3)
        work.mkdir(parents=True, exist_ok=True)
        np.save(path, rng.uniform(0.0, 1.0, size=(n, *shape)).astype(np.float32))
    return path
