"""Gradient saliency on the float model: vanilla gradient and SmoothGrad."""

from __future__ import annotations

import numpy as np

from tinyscope.analysis.saliency.base import FloatModel, as_classes, normalise, reduce_channels


def first_stride(model) -> int:
    """The stride of the model's first convolution (1 if it has none)."""
    for layer in model.layers:
        if "Conv" in type(layer).__name__ and hasattr(layer, "strides"):
            return int(max(layer.strides))
    return 1


def phase_average(maps: np.ndarray, stride: int) -> np.ndarray:
    """Mean over each ``stride x stride`` neighbourhood: a first convolution with stride 2
    makes the input gradient alternate between pixels it samples at different kernel taps
    (a checkerboard of period 2); averaging over one period removes that pattern and nothing
    coarser."""
    if stride <= 1 or maps.ndim != 3:
        return maps
    n, h, w = maps.shape
    padded = np.pad(maps, ((0, 0), (0, stride - 1), (0, stride - 1)), mode="edge")
    out = np.zeros_like(maps)
    for dy in range(stride):
        for dx in range(stride):
            out += padded[:, dy:dy + h, dx:dx + w]
    return out / (stride * stride)


class VanillaGradient:
    """``|d score / d x|``, max over an image's channels (Simonyan et al. 2013), averaged over
    the first convolution's stride (:func:`phase_average`); any input shape."""

    name = "vanilla gradient"

    def __init__(self, model: FloatModel) -> None:
        self.model = model
        self.stride = first_stride(model.model)

    def __call__(self, images: np.ndarray, classes) -> np.ndarray:
        x = np.asarray(images, np.float32)
        g = reduce_channels(np.abs(self.model.input_gradients(x, classes)), x.ndim - 1)
        return normalise(phase_average(g, self.stride))


class SmoothGrad:
    """Mean of ``|gradient|`` over ``samples`` noisy copies (Smilkov et al. 2017). The noise
    std is ``noise`` times the model's input range (``input_range``: the real range the int8
    input covers, ``255 * input scale``), the same for every image, so a dark image is not
    given less noise than a bright one. All copies go through one batched gradient call;
    seeded, so the same call gives the same map."""

    name = "SmoothGrad"

    def __init__(self, model: FloatModel, input_range: float, samples: int = 24,
                 noise: float = 0.15, seed: int = 0) -> None:
        self.model, self.input_range = model, input_range
        self.samples, self.noise, self.seed = samples, noise, seed
        self.stride = first_stride(model.model)

    def __call__(self, images: np.ndarray, classes) -> np.ndarray:
        x = np.asarray(images, np.float32)
        c = as_classes(classes, len(x))
        rng = np.random.default_rng(self.seed)
        noisy = np.repeat(x, self.samples, axis=0)
        noisy += rng.normal(size=noisy.shape).astype(np.float32) * (self.noise *
                                                                    self.input_range)
        g = np.abs(self.model.input_gradients(noisy, np.repeat(c, self.samples)))
        g = reduce_channels(g.reshape(len(x), self.samples, *x.shape[1:]).mean(1), x.ndim - 1)
        return normalise(phase_average(g, self.stride))
