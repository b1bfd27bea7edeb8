"""Grad-CAM (Selvaraju et al. 2017) on the float model, upsampled along the receptive-field
grid of the explained layer."""

from __future__ import annotations

import math

import numpy as np

from tinyscope.analysis.saliency.base import FloatModel, as_classes, normalise
from tinyscope.errors import TinyscopeError


class GradCAM:
    """Gradient-weighted class activation map of the last conv layer (Selvaraju et al. 2017),
    bilinearly upsampled to the input size."""

    name = "Grad-CAM"

    def __init__(self, model: FloatModel, layer: str | None = None) -> None:
        import keras

        self.model = model.model
        self.input_shape = model.input_shape
        self.layer = layer or last_conv_layer(self.model)
        conv_out = self.model.get_layer(self.layer).output
        self._both = keras.Model(self.model.inputs[0], [conv_out, self.model.outputs[0]])
        self.grid = receptive_grid(self.model, self.layer)

    def _compute(self, x, classes):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            feats, logits = self._both(x, training=False)
            score = tf.gather(logits, classes, axis=1, batch_dims=1)
        grads = tape.gradient(score, feats)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(weights * feats, axis=-1))

    def __call__(self, images: np.ndarray, classes=None) -> np.ndarray:
        import tensorflow as tf

        x = np.asarray(images, np.float32)
        # run eagerly: a report explains a few images once, and tracing a tf.function costs
        # more than the call (about 1 s for a 96x96 MobileNet)
        cam = np.asarray(self._compute(tf.constant(x),
                                       tf.constant(as_classes(classes, len(x)))))
        return normalise(upsample(cam, self.input_shape[:2], self.grid))


def _spatial(value) -> tuple[int, int]:
    v = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    return int(v[0]), int(v[1])


def receptive_grid(model, layer_name: str):
    """Where the output pixels of ``layer_name`` sit on the input, for a plain chain of conv /
    pooling / padding / element-wise layers: ``((start_y, jump_y), (start_x, jump_x))`` with
    output pixel ``i`` centred at input coordinate ``start + i * jump`` (pixel ``j`` of the
    input spans ``[j, j + 1)``). None if the path is not such a chain."""
    chain = []
    layer = model.get_layer(layer_name)
    while type(layer).__name__ != "InputLayer":
        nodes = getattr(layer, "_inbound_nodes", [])
        if len(nodes) != 1 or len(nodes[0].parent_nodes) != 1:
            return None
        chain.append(layer)
        layer = nodes[0].parent_nodes[0].operation
    grid = [[0.5, 1.0], [0.5, 1.0]]
    for layer in reversed(chain):
        kind = type(layer).__name__
        in_shape = layer.input.shape
        if kind in ("Conv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D"):
            pool = "Pooling" in kind
            k = _spatial(layer.pool_size if pool else layer.kernel_size)
            st = _spatial(layer.strides)
            d = (1, 1) if pool else _spatial(layer.dilation_rate)
            for a in range(2):
                n = int(in_shape[1 + a])
                span = d[a] * (k[a] - 1) + 1
                before = 0
                if layer.padding == "same":
                    total = max((math.ceil(n / st[a]) - 1) * st[a] + span - n, 0)
                    before = total // 2
                start, jump = grid[a]
                grid[a] = [start + (d[a] * (k[a] - 1) / 2 - before) * jump, jump * st[a]]
        elif kind == "ZeroPadding2D":
            pads = layer.padding
            for a in range(2):
                start, jump = grid[a]
                grid[a] = [start - int(pads[a][0]) * jump, jump]
        elif tuple(layer.output.shape[1:3]) != tuple(in_shape[1:3]):
            return None
    return (tuple(grid[0]), tuple(grid[1]))


def upsample(maps: np.ndarray, size: tuple[int, int], grid=None) -> np.ndarray:
    """``(N, h, w)`` maps to ``(N, H, W)``: linear interpolation between the grid positions of
    :func:`receptive_grid` (edge values beyond them), or stretched over the image if None."""
    maps = np.asarray(maps, np.float32)
    n, h, w = maps.shape
    H, W = size
    if grid is None:
        grid = ((H / h / 2, H / h), (W / w / 2, W / w))
    (sy, jy), (sx, jx) = grid
    ys, xs = sy + jy * np.arange(h), sx + jx * np.arange(w)
    ty, tx = np.arange(H) + 0.5, np.arange(W) + 0.5
    rows = np.stack([[np.interp(tx, xs, m[r]) for r in range(h)] for m in maps])  # (N, h, W)
    return np.stack([
        np.stack([np.interp(ty, ys, m[:, c]) for c in range(W)], axis=1) for m in rows
    ]).astype(np.float32)


def last_conv_layer(model) -> str:
    """The layer Grad-CAM explains: the last layer with a spatial 4-D output (more than one
    pixel) that is not a pooling layer, i.e. the last convolution block's activation. A
    1x1 convolution on a globally pooled map (a MobileNet's classifier) does not count."""
    for layer in reversed(model.layers):
        shape = layer.output.shape
        if (len(shape) == 4 and int(shape[1]) * int(shape[2]) > 1
                and "Pooling" not in type(layer).__name__
                and type(layer).__name__ != "InputLayer"):
            return layer.name
    raise TinyscopeError(f"model {model.name!r} has no convolution layer for Grad-CAM")
