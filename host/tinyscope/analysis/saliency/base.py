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


def as_classes(classes, n: int) -> np.ndarray:
    if classes is None:
        raise ValueError("give the class to explain for each image (e.g. the predicted one)")
    c = np.asarray(classes, np.int32).reshape(-1)
    return np.full(n, c[0], np.int32) if c.size == 1 else c


class FloatModel:
    """A float Keras model as the gradient methods need it: logits, batch ``None``, with the
    input gradient traced once for any batch size."""

    def __init__(self, model) -> None:
        import tensorflow as tf

        net = rebatch(model, None) if model.inputs[0].shape[0] is not None else model
        self.model = logits_model(net)
        self.input_shape = tuple(int(s) for s in self.model.inputs[0].shape[1:])
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._logits = tf.function(lambda x: self.model(x, training=False),
                                   input_signature=[spec])
        self._grad = tf.function(self._input_gradient,
                                 input_signature=[spec, tf.TensorSpec((None,), tf.int32)])

    def _input_gradient(self, x, classes):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.gather(self.model(x, training=False), classes, axis=1, batch_dims=1)
        return tape.gradient(score, x)

    def logits(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        x = np.asarray(images, np.float32)
        return np.concatenate([np.asarray(self._logits(x[s:s + batch]))
                               for s in range(0, len(x), batch)])

    def predict_classes(self, images: np.ndarray) -> np.ndarray:
        return self.logits(images).argmax(-1)

    def input_gradients(self, images: np.ndarray, classes, batch: int = 64) -> np.ndarray:
        x = np.asarray(images, np.float32)
        c = as_classes(classes, len(x))
        return np.concatenate([np.asarray(self._grad(x[s:s + batch], c[s:s + batch]))
                               for s in range(0, len(x), batch)])
