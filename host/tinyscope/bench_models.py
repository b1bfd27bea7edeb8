"""Keras twins of the four MLPerf Tiny reference architectures: ``make bench-suite`` benches
them, and the tests use them as users' own models (tests/mlperf_tiny.py).

Written here from the published layer lists (no code copied), with seeded random weights:

- ``mobilenet``: MobileNetV1 alpha 0.25, 96x96x3, 2 classes (person detection, 7.49 M MACs)
- ``resnet8``: ResNet-8, 32x32x3, 16/32/64 filters, 10 classes (CIFAR-10, 12.5 M MACs)
- ``dscnn``: DS-CNN, 49x10x1 MFCC, 64 filters, 12 classes (keyword spotting, 2.66 M MACs)
- ``autoencoder``: FC autoencoder 640-128-128-128-128-8-128-128-128-128-640 (anomaly
  detection, 0.26 M MACs).

How a twin is finished is a :class:`Finish`. The bench's (:data:`BENCH`): no BatchNorm
(conversion folds it into the convolutions: the operators and MACs are the same), logits
heads (no softmax: with random weights ``beta * input_scale`` can overflow and TFLM aborts)
and the autoencoder's 640 inputs entering as a 5x128x1 image and a RESHAPE; instruction counts
depend on shapes, not on the weights' values. :data:`AS_TRAINED` looks like a user's trained
model: BatchNorm with random (sane) statistics after every convolution and dense layer (so
the folded weights and biases are not trivial), softmax heads, the autoencoder's input a
640-vector.

The bench's calibration and test inputs are a seeded ``.npy`` of uniform float inputs in
[0, 1) of the model's input shape (``twin_inputs``): they only set the quantization ranges,
which do not change instruction counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TWINS_VERSION = 2  # bump when a bench twin's layers change (the file names carry it)
BENCH_SEED = 7


@dataclass(frozen=True)
class Finish:
    """How a twin is finished (see the module docstring)."""

    batchnorm_seed: int | None = None  # BatchNorm with random statistics from this seed
    softmax: bool = False  # classifiers end with a softmax
    vector_input: bool = False  # the autoencoder takes a 640-vector, not a 5x128x1 image


BENCH = Finish()
AS_TRAINED = Finish(batchnorm_seed=0, softmax=True, vector_input=True)


def _keras():
    from tinyscope.convert.model import _keras as k

    return k()


class _Layers:
    """The layers the twins are made of, finished as ``finish`` says."""

    def __init__(self, finish: Finish) -> None:
        self.keras = _keras()
        self.L = self.keras.layers
        self.finish = finish
        seed = finish.batchnorm_seed
        self.rng = np.random.default_rng(seed) if seed is not None else None

    def _bn(self, x, name: str):
        """BatchNormalization with random (but sane) statistics, as after training."""
        bn = self.L.BatchNormalization(name=f"{name}_bn")
        y = bn(x)
        assert self.rng is not None
        c = bn.gamma.shape[0]
        bn.set_weights([self.rng.uniform(lo, hi, c).astype(np.float32) for lo, hi in
                        ((0.5, 1.5), (-0.2, 0.2), (-0.2, 0.2), (0.5, 1.5))])
        return y  # (gamma, beta, moving mean, moving variance)

    def __call__(self, layer: Callable, x, name: str, relu: bool = True, **kw):
        """``layer(name=name, **kw)(x)``, then BatchNorm (when finished so) and a ReLU."""
        if self.rng is None:
            return layer(name=name, activation="relu" if relu else None, **kw)(x)
        y = self._bn(layer(name=name, **kw)(x), name)
        return self.L.ReLU(name=f"{name}_relu")(y) if relu else y

    def head(self, x, classes: int, inputs, model_name: str):
        x = self.L.Dense(classes, name="logits")(x)
        if self.finish.softmax:
            x = self.L.Softmax(name="softmax")(x)
        return self.keras.Model(inputs, x, name=model_name)


def mobilenet_v1_025(finish: Finish = BENCH):
    f = _Layers(finish)
    inp = f.keras.Input((96, 96, 3), batch_size=1, name="image")
    x = f(f.L.Conv2D, inp, "conv1", filters=8, kernel_size=3, strides=2, padding="same")
    # (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks, alpha 0.25
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
              (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)]
    for i, (filters, s) in enumerate(blocks, 1):
        x = f(f.L.DepthwiseConv2D, x, f"dw{i}", kernel_size=3, strides=s, padding="same")
        x = f(f.L.Conv2D, x, f"pw{i}", filters=filters, kernel_size=1)
    x = f.L.AveragePooling2D(3, name="pool")(x)
    return f.head(f.L.Flatten(name="flatten")(x), 2, inp, "mobilenet_v1_025")


def resnet8(finish: Finish = BENCH):
    f = _Layers(finish)
    inp = f.keras.Input((32, 32, 3), batch_size=1, name="image")
    x = f(f.L.Conv2D, inp, "conv1", filters=16, kernel_size=3, padding="same")
    for i, (filters, s) in enumerate([(16, 1), (32, 2), (64, 2)], 1):
        y = f(f.L.Conv2D, x, f"s{i}a", filters=filters, kernel_size=3, strides=s,
              padding="same")
        y = f(f.L.Conv2D, y, f"s{i}b", relu=False, filters=filters, kernel_size=3,
              padding="same")
        if s != 1:
            x = f.L.Conv2D(filters, 1, strides=s, name=f"s{i}short")(x)
        x = f.L.Activation("relu", name=f"s{i}relu")(f.L.Add(name=f"s{i}add")([x, y]))
    x = f.L.AveragePooling2D(8, name="pool")(x)
    return f.head(f.L.Flatten(name="flatten")(x), 10, inp, "resnet8")


def dscnn(finish: Finish = BENCH):
    f = _Layers(finish)
    inp = f.keras.Input((49, 10, 1), batch_size=1, name="mfcc")
    x = f(f.L.Conv2D, inp, "conv1", filters=64, kernel_size=(10, 4), strides=2, padding="same")
    for i in range(1, 5):
        x = f(f.L.DepthwiseConv2D, x, f"dw{i}", kernel_size=3, padding="same")
        x = f(f.L.Conv2D, x, f"pw{i}", filters=64, kernel_size=1)
    x = f.L.AveragePooling2D((25, 5), name="pool")(x)
    return f.head(f.L.Flatten(name="flatten")(x), 12, inp, "dscnn")


def autoencoder(finish: Finish = BENCH):
    f = _Layers(finish)
    if finish.vector_input:
        x = inp = f.keras.Input((640,), batch_size=1, name="logmel")
    else:
        inp = f.keras.Input((5, 128, 1), batch_size=1, name="frames")
        x = f.L.Reshape((640,), name="flatten")(inp)
    for i, n in enumerate([128, 128, 128, 128, 8, 128, 128, 128, 128], 1):
        x = f(f.L.Dense, x, f"fc{i}", units=n)
    out = f.L.Dense(640, name="fc10")(x)
    return f.keras.Model(inp, out, name="fc_autoencoder")


TWINS: dict[str, Callable] = {
    "mobilenet": mobilenet_v1_025, "resnet8": resnet8, "dscnn": dscnn,
    "autoencoder": autoencoder,
}


def build(name: str, finish: Finish = BENCH, seed: int = BENCH_SEED):
    """The twin ``name``, finished as ``finish``, its weights drawn from ``seed``."""
    _keras().utils.set_random_seed(seed)
    return TWINS[name](finish)


def input_shape(name: str, finish: Finish = BENCH) -> tuple[int, ...]:
    """The twin's input shape without the batch axis (without building it)."""
    if name == "autoencoder":
        return (640,) if finish.vector_input else (5, 128, 1)
    return {"mobilenet": (96, 96, 3), "resnet8": (32, 32, 3), "dscnn": (49, 10, 1)}[name]


def twin_model(name: str, work: Path) -> Path:
    """The bench twin ``name`` saved under ``work`` (written once, seeded); its path."""
    path = work / f"{name}-v{TWINS_VERSION}.keras"
    if not path.is_file():
        work.mkdir(parents=True, exist_ok=True)
        build(name).save(path)
    return path


def twin_inputs(name: str, work: Path, n: int = 32) -> Path:
    """Seeded uniform float inputs for the bench twin ``name`` as ``.npy`` (written once)."""
    path = work / f"{name}-v{TWINS_VERSION}-inputs.npy"
    if not path.is_file():
        rng = np.random.default_rng(3)
        work.mkdir(parents=True, exist_ok=True)
        np.save(path, rng.uniform(0.0, 1.0, size=(n, *input_shape(name))).astype(np.float32))
    return path


def default_inputs(model: Path, build_dir: Path, n: int = 32) -> str | None:
    """Without ``--data``, a Keras model whose input is not MNIST's 28x28x1 is calibrated and
    run on seeded uniform [0, 1) inputs of its shape, written to ``BUILD/bench-inputs.npy``
    (as the twins: instruction counts depend on shapes, not values). None: the default data
    fits (or the model is a ``.tflite``, which needs none)."""
    from tinyscope.convert.model import H5, KERAS, load_model, model_format

    if model_format(model) not in (KERAS, H5):
        return None
    shape = tuple(int(s or 1) for s in load_model(model).inputs[0].shape[1:])
    if shape == (28, 28, 1):
        return None
    path = build_dir / "bench-inputs.npy"
    build_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    np.save(path, rng.uniform(0.0, 1.0, size=(n, *shape)).astype(np.float32))
    print(f"note: no --data (DATA=): seeded uniform [0, 1) inputs of the model's shape "
          f"{'x'.join(map(str, shape))} -> {path}")
    return str(path)


DWSEP_VERSION = 2  # bump when dwsep_model's layers change (the file name carries it)


def dwsep_model(path: Path) -> Path:
    """The second benchmark model, written to ``path`` if missing: a small depthwise-separable
    CNN on 28x28x1 (conv 3x3 1->8, depthwise 3x3, pointwise 1x1 8->16, max pool, depthwise
    3x3 'same', pointwise 1x1 16->32, depthwise 3x3 stride 2, global average pool (MEAN),
    dense 10), seeded and untrained: instruction counts do not depend on the weights'
    values, only on shapes.
    The default model has no DEPTHWISE_CONV_2D, 1x1 CONV_2D or MEAN; this one does."""
    if path.is_file():
        return path
    from tinyscope.convert.model import _keras

    keras = _keras()
    layers = keras.layers
    keras.utils.set_random_seed(5)
    inp = keras.Input((28, 28, 1), batch_size=1, name="image")
    x = layers.Conv2D(8, 3, activation="relu", name="conv1")(inp)
    x = layers.DepthwiseConv2D(3, activation="relu", name="dw1")(x)
    x = layers.Conv2D(16, 1, activation="relu", name="pw1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw2")(x)
    x = layers.Conv2D(32, 1, activation="relu", name="pw2")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", name="dw3")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(10, name="logits")(x)
    out = layers.Softmax(name="softmax")(x)
    path.parent.mkdir(parents=True, exist_ok=True)
    keras.Model(inp, out, name="tinyscope_dwsep").save(path)
    return path
