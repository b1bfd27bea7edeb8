"""Saliency maps: which input pixels a class score depends on.

Small classes sharing one base (in the spirit of tf-keras-vis): each is built once for a
model and called on a batch, ``method(images, classes) -> (N, H, W)`` maps normalised to
[0, 1] per image. The explained score is always the **pre-softmax** score of the chosen class
(the logit), as in Simonyan et al. 2013; softmax outputs saturate and couple the classes.

On the float Keras model (gradients, one ``tf.function`` traced once for any batch size):

* :class:`VanillaGradient` -- ``|d score / d input|``, max over channels (Simonyan et al. 2013);
* :class:`SmoothGrad` -- the mean of vanilla maps over noisy copies (Smilkov et al. 2017);
* :class:`GradCAM` -- ReLU of the gradient-weighted last conv feature maps, upsampled
  (Selvaraju et al. 2017).

Without gradients, on either model:

* :class:`Occlusion` -- slide a patch filled with a baseline value over the image and record
  how much the class score drops; :func:`keras_scorer` or :func:`tflite_scorer` (the int8
  model run by LiteRT, logits dequantized) provide the scores.

:func:`saliency_drift` compares two maps (Spearman rank correlation, IoU of the top-k%).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tinyscope.convert.graph import graph
from tinyscope.convert.model import logits_model, rebatch
from tinyscope.data import dequantize, quantize
from tinyscope.errors import TinyscopeError

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (images, classes) -> (N,) scores


def normalise(maps: np.ndarray) -> np.ndarray:
    """Scale each map (axis 0 = image) to [0, 1]; an all-constant map becomes all zeros."""
    maps = np.asarray(maps, np.float32)
    flat = maps.reshape(len(maps), -1)
    lo = flat.min(1, keepdims=True)
    span = flat.max(1, keepdims=True) - lo
    out = np.where(span > 0, (flat - lo) / np.where(span > 0, span, 1), 0.0)
    return out.reshape(maps.shape).astype(np.float32)


def _classes(classes, n: int) -> np.ndarray:
    if classes is None:
        raise ValueError("give the class to explain for each image (e.g. the predicted one)")
    c = np.asarray(classes, np.int32).reshape(-1)
    return np.full(n, c[0], np.int32) if c.size == 1 else c


class SaliencyMethod:
    """Base: holds the batch-``None`` logits model of a float Keras model."""

    name = "saliency"

    def __init__(self, model) -> None:
        net = rebatch(model, None) if model.inputs[0].shape[0] is not None else model
        self.model = logits_model(net)
        self.input_shape = tuple(int(s) for s in self.model.inputs[0].shape[1:])

    def predict_classes(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(np.asarray(images, np.float32))).argmax(-1)

    def __call__(self, images: np.ndarray, classes=None) -> np.ndarray:
        raise NotImplementedError


class VanillaGradient(SaliencyMethod):
    """``|d logit_c / d x|``, max over input channels (Simonyan et al. 2013)."""

    name = "vanilla gradient"

    def __init__(self, model) -> None:
        super().__init__(model)
        import tensorflow as tf

        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._grad = tf.function(self._gradients, input_signature=[
            spec, tf.TensorSpec((None,), tf.int32)
        ])

    def _gradients(self, x, classes):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = self.model(x, training=False)
            score = tf.gather(logits, classes, axis=1, batch_dims=1)
        return tape.gradient(score, x)

    def gradients(self, images: np.ndarray, classes) -> np.ndarray:
        x = np.asarray(images, np.float32)
        return np.asarray(self._grad(x, _classes(classes, len(x))))

    def __call__(self, images: np.ndarray, classes=None) -> np.ndarray:
        return normalise(np.abs(self.gradients(images, classes)).max(-1))


class SmoothGrad(VanillaGradient):
    """Mean of ``|gradient|`` over ``samples`` noisy copies, noise std ``noise`` times the
    input range (Smilkov et al. 2017); seeded, so the same call gives the same map."""

    name = "SmoothGrad"

    def __init__(self, model, samples: int = 24, noise: float = 0.15, seed: int = 0) -> None:
        super().__init__(model)
        self.samples, self.noise, self.seed = samples, noise, seed

    def __call__(self, images: np.ndarray, classes=None) -> np.ndarray:
        x = np.asarray(images, np.float32)
        c = _classes(classes, len(x))
        rng = np.random.default_rng(self.seed)
        span = (x.reshape(len(x), -1).max(1) - x.reshape(len(x), -1).min(1)).reshape(
            -1, *([1] * (x.ndim - 1))
        )
        total = np.zeros(x.shape, np.float32)
        for _ in range(self.samples):
            noisy = x + rng.normal(size=x.shape).astype(np.float32) * self.noise * span
            total += np.abs(self.gradients(noisy, c))
        return normalise((total / self.samples).max(-1))


class GradCAM(SaliencyMethod):
    """Gradient-weighted class activation map of the last conv layer (Selvaraju et al. 2017),
    bilinearly upsampled to the input size."""

    name = "Grad-CAM"

    def __init__(self, model, layer: str | None = None) -> None:
        super().__init__(model)
        import keras
        import tensorflow as tf

        self.layer = layer or last_conv_layer(self.model)
        conv_out = self.model.get_layer(self.layer).output
        self._both = keras.Model(self.model.inputs[0], [conv_out, self.model.outputs[0]])
        self.grid = receptive_grid(self.model, self.layer)
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._cam = tf.function(self._compute, input_signature=[
            spec, tf.TensorSpec((None,), tf.int32)
        ])

    def _compute(self, x, classes):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            feats, logits = self._both(x, training=False)
            score = tf.gather(logits, classes, axis=1, batch_dims=1)
        grads = tape.gradient(score, feats)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(weights * feats, axis=-1))

    def __call__(self, images: np.ndarray, classes=None) -> np.ndarray:
        x = np.asarray(images, np.float32)
        cam = np.asarray(self._cam(x, _classes(classes, len(x))))
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
    """Name of the last layer with a 4-D output that is a convolution."""
    for layer in reversed(model.layers):
        if "Conv" in type(layer).__name__ and len(layer.output.shape) == 4:
            return layer.name
    raise TinyscopeError(f"model {model.name!r} has no Conv2D layer for Grad-CAM")


# --------------------------------------------------------------------------- occlusion


def keras_scorer(model) -> Scorer:
    """Batched logit scores of a float Keras model."""
    base = SaliencyMethod(model)

    def score(images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(images), 512):
            logits = np.asarray(base.model(np.asarray(images[start:start + 512], np.float32)))
            out.append(logits[np.arange(len(logits)), classes[start:start + 512]])
        return np.concatenate(out)

    return score


def tflite_scorer(model_bytes: bytes, logits_tensor: int | None = None) -> Scorer:
    """Scores of the int8 model run by LiteRT (BUILTIN_REF): the class's **logit** (the input
    of the final SOFTMAX, dequantized), for float images quantized like the model input."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    ops, tensors, inputs, outputs = graph(model_bytes)
    if logits_tensor is None:
        logits_tensor = ops[-1].inputs[0] if ops[-1].name == "SOFTMAX" else outputs[0]
    interp = Interpreter(
        model_content=bytes(model_bytes),
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    interp.allocate_tensors()
    t_in, t_out = tensors[inputs[0]], tensors[logits_tensor]

    def score(images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        q = quantize(images, t_in.scales[0], t_in.zero_points[0])
        out = np.empty(len(q), np.float32)
        for i, image in enumerate(q):
            interp.set_tensor(t_in.index, image.reshape(t_in.shape))
            interp.invoke()
            logits = dequantize(interp.get_tensor(t_out.index), t_out.scales[0],
                                t_out.zero_points[0]).reshape(-1)
            out[i] = logits[classes[i]]
        return out

    return score


class Occlusion:
    """Occlusion sensitivity (Zeiler & Fergus 2014): the class score's drop when a ``patch``
    square (moved by ``stride``) is filled with ``baseline``; a pixel's value is the mean drop
    over the patches covering it (rises only: clipped at 0), normalised per image."""

    name = "occlusion"

    def __init__(self, scorer: Scorer, patch: int = 4, stride: int = 2,
                 baseline: float = 0.0, progress: bool = False) -> None:
        self.scorer, self.patch, self.stride = scorer, patch, stride
        self.baseline, self.progress = baseline, progress

    def positions(self, h: int, w: int) -> list[tuple[int, int]]:
        ys = list(range(0, max(h - self.patch, 0) + 1, self.stride))
        xs = list(range(0, max(w - self.patch, 0) + 1, self.stride))
        if ys[-1] != h - self.patch:
            ys.append(h - self.patch)
        if xs[-1] != w - self.patch:
            xs.append(w - self.patch)
        return [(y, x) for y in ys for x in xs]

    def drops(self, images: np.ndarray, classes) -> np.ndarray:
        """Raw (unnormalised, unclipped) mean score drop per pixel, ``(N, H, W)``."""
        from tqdm.auto import tqdm

        x = np.asarray(images, np.float32)
        c = _classes(classes, len(x))
        n, h, w = x.shape[:3]
        pos = self.positions(h, w)
        out = np.zeros((n, h, w), np.float32)
        for i in tqdm(range(n), desc="occlusion", unit="image", disable=not self.progress):
            batch = np.repeat(x[i : i + 1], len(pos) + 1, axis=0)
            for k, (y0, x0) in enumerate(pos, start=1):
                batch[k, y0 : y0 + self.patch, x0 : x0 + self.patch] = self.baseline
            scores = self.scorer(batch, np.full(len(batch), c[i], np.int32))
            total = np.zeros((h, w), np.float32)
            count = np.zeros((h, w), np.float32)
            for k, (y0, x0) in enumerate(pos, start=1):
                total[y0 : y0 + self.patch, x0 : x0 + self.patch] += scores[0] - scores[k]
                count[y0 : y0 + self.patch, x0 : x0 + self.patch] += 1
            out[i] = total / np.maximum(count, 1)
        return out

    def __call__(self, images: np.ndarray, classes=None) -> np.ndarray:
        return normalise(np.maximum(self.drops(images, classes), 0.0))


# --------------------------------------------------------------------------- drift


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's correlation needs)."""
    v = np.asarray(values, np.float64).ravel()
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), np.float64)
    ranks[order] = np.arange(len(v), dtype=np.float64)
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rank(a), rank(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt(np.dot(ra, ra) * np.dot(rb, rb))
    return float(np.dot(ra, rb) / den) if den > 0 else 1.0 if np.array_equal(ra, rb) else 0.0


def top_k_mask(sal: np.ndarray, fraction: float) -> np.ndarray:
    """The ``fraction`` most salient pixels (ties at the threshold broken by position)."""
    flat = np.asarray(sal).ravel()
    k = max(1, int(round(fraction * flat.size)))
    mask = np.zeros(flat.size, bool)
    mask[np.argsort(-flat, kind="stable")[:k]] = True
    return mask.reshape(np.shape(sal))


def iou_top_k(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    ma, mb = top_k_mask(a, fraction), top_k_mask(b, fraction)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 1.0


def saliency_drift(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> dict:
    """How far saliency maps ``b`` are from ``a`` (both ``(N, H, W)``): per image and mean."""
    a, b = np.asarray(a), np.asarray(b)
    rho = [spearman(a[i], b[i]) for i in range(len(a))]
    iou = [iou_top_k(a[i], b[i], fraction) for i in range(len(a))]
    return {
        "spearman": rho, "iou_top_k": iou, "top_k_fraction": fraction,
        "mean_spearman": float(np.mean(rho)), "mean_iou_top_k": float(np.mean(iou)),
        "mean_abs_difference": float(np.mean(np.abs(a - b))),
    }


# --------------------------------------------------------------------------- all at once


def compute_all(
    model, model_bytes: bytes | None, images: np.ndarray, classes,
    logits_tensor: int | None = None, progress: bool = False,
) -> dict[str, np.ndarray]:
    """Every method on ``images`` for ``classes``: ``{"vanilla gradient", "SmoothGrad",
    "Grad-CAM", "occlusion float", "occlusion int8"}`` -> ``(N, H, W)`` maps in [0, 1].
    The int8 occlusion map is left out when ``model_bytes`` is None."""
    x = np.asarray(images, np.float32)
    c = _classes(classes, len(x))
    maps = {
        "vanilla gradient": VanillaGradient(model)(x, c),
        "SmoothGrad": SmoothGrad(model)(x, c),
        "Grad-CAM": GradCAM(model)(x, c),
        "occlusion float": Occlusion(keras_scorer(model))(x, c),
    }
    if model_bytes is not None:
        scorer = tflite_scorer(model_bytes, logits_tensor)
        maps["occlusion int8"] = Occlusion(scorer, progress=progress)(x, c)
    return maps
