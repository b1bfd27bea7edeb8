"""The one interface every saliency method follows, and the float model they share.

A method is built once and called on a batch: ``method(images, classes) -> (N, H, W)`` maps
normalised to [0, 1] per image, explaining the **pre-softmax** score (the logit) of each
image's class (Simonyan et al. 2013): softmax outputs saturate and couple the classes.

:class:`FloatModel` holds the batch-``None`` logits model of a float Keras model and its
traced functions, so building several methods rebuilds and traces the model once.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from tinyscope.convert.model import logits_model, rebatch

CLASS = "class"  # explain a classifier's pre-softmax score of a class
RECONSTRUCTION = "reconstruction"  # explain an autoencoder's mean squared reconstruction error


class SaliencyMethod(Protocol):
    name: str

    def __call__(self, images: np.ndarray, classes: np.ndarray) -> np.ndarray: ...


def normalise(maps: np.ndarray) -> np.ndarray:
    """Scale each map (axis 0 = image) to [0, 1]; an all-constant map becomes all zeros."""
    maps = np.asarray(maps, np.float32)
    flat = maps.reshape(len(maps), -1)
    lo = flat.min(1, keepdims=True)
    span = flat.max(1, keepdims=True) - lo
    out = np.where(span > 0, (flat - lo) / np.where(span > 0, span, 1), 0.0)
    return out.reshape(maps.shape).astype(np.float32)


def map_shape(input_shape) -> tuple[int, ...]:
    """The axes a saliency map has for one input of ``input_shape`` (no batch axis): an
    image's ``(H, W)`` (channels reduced), a 2-D input's ``(T, F)``, a vector's ``(N,)``."""
    s = tuple(int(v) for v in input_shape)
    if len(s) == 3:
        return s[:2]
    if len(s) in (1, 2):
        return s
    n = int(np.prod(s)) if s else 1
    return (n,)


def reduce_channels(values: np.ndarray, input_ndim: int) -> np.ndarray:
    """``(N, *input shape)`` -> ``(N, *map shape)``: the max over an image's channels."""
    return values.max(-1) if input_ndim == 3 else values


def as_classes(classes, n: int) -> np.ndarray:
    if classes is None:
        raise ValueError("give the class to explain for each image (e.g. the predicted one)")
    c = np.asarray(classes, np.int32).reshape(-1)
    return np.full(n, c[0], np.int32) if c.size == 1 else c


class FloatModel:
    """A float Keras model as the gradient methods need it: logits, batch ``None``, with the
    input gradient traced once for any batch size. ``target`` is what a score is:
    :data:`CLASS` (the logit of a class) or :data:`RECONSTRUCTION` (an autoencoder's mean
    squared error between output and input); by default a model whose output has the
    input's shape is an autoencoder."""

    def __init__(self, model, target: str | None = None) -> None:
        import tensorflow as tf

        net = rebatch(model, None) if model.inputs[0].shape[0] is not None else model
        self.model = logits_model(net)
        self.input_shape = tuple(int(s) for s in self.model.inputs[0].shape[1:])
        out_shape = tuple(int(s) for s in self.model.outputs[0].shape[1:])
        same = int(np.prod(out_shape)) == int(np.prod(self.input_shape)) > 1
        self.target = target or (RECONSTRUCTION if same else CLASS)
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        # autograph=False: a Keras model has no Python control flow to convert, and
        # converting its layers' code took a third of each trace (~0.4 s for a MobileNet)
        self._logits = tf.function(lambda x: self.model(x, training=False),
                                   input_signature=[spec], autograph=False)
        self._grad = tf.function(self._input_gradient, autograph=False,
                                 input_signature=[spec, tf.TensorSpec((None,), tf.int32)])

    def _input_gradient(self, x, classes):
        """(logits, d score / d x): one traced function serves the predictions too."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            y = self.model(x, training=False)
            if self.target == RECONSTRUCTION:
                n = tf.shape(x)[0]
                score = tf.reduce_mean(tf.square(tf.reshape(y, (n, -1)) -
                                                 tf.reshape(x, (n, -1))), axis=1)
            else:
                score = tf.gather(y, classes, axis=1, batch_dims=1)
        return y, tape.gradient(score, x)

    def scores(self, images: np.ndarray, classes) -> np.ndarray:
        """The explained score of each image: its class's logit, or its reconstruction
        error."""
        x = np.asarray(images, np.float32)
        out = self.logits(x)
        if self.target == RECONSTRUCTION:
            return np.mean((out.reshape(len(x), -1) - x.reshape(len(x), -1)) ** 2, axis=1)
        return out[np.arange(len(out)), as_classes(classes, len(x))]

    def logits(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        x = np.asarray(images, np.float32)
        return np.concatenate([np.asarray(self._logits(x[s:s + batch]))
                               for s in range(0, len(x), batch)])

    def predict_classes(self, images: np.ndarray) -> np.ndarray:
        """The predicted class (0 for an autoencoder: it has one score, its error)."""
        if self.target == RECONSTRUCTION:
            return np.zeros(len(images), np.int64)
        # through the gradient function: the gradient methods trace it anyway, and the
        # logits function is traced only if the float occlusion needs it (~0.5 s each)
        x = np.asarray(images, np.float32)
        return np.concatenate([
            np.asarray(self._grad(x[s:s + 64], np.zeros(len(x[s:s + 64]), np.int32))[0])
            for s in range(0, len(x), 64)]).reshape(len(x), -1).argmax(-1)

    def input_gradients(self, images: np.ndarray, classes, batch: int = 64) -> np.ndarray:
        x = np.asarray(images, np.float32)
        c = as_classes(classes, len(x))
        return np.concatenate([np.asarray(self._grad(x[s:s + batch], c[s:s + batch])[1])
                               for s in range(0, len(x), batch)])
