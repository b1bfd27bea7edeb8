"""Saliency maps: which input pixels a class score depends on.

One module per method, all behind one interface (:class:`~.base.SaliencyMethod`:
``method(images, classes) -> (N, H, W)`` in [0, 1], explaining the pre-softmax score):

* :mod:`.gradient` -- vanilla gradient (Simonyan et al. 2013) and SmoothGrad (Smilkov et al.
  2017) on the float model;
* :mod:`.gradcam` -- Grad-CAM (Selvaraju et al. 2017) on the float model;
* :mod:`.occlusion` -- occlusion (Zeiler & Fergus 2014) on the float or the int8 model.

:mod:`.agreement` compares two maps. :func:`compute_all` runs every method once and measures
how far the int8 model's occlusion map is from the float model's.
"""

from __future__ import annotations

import time

import numpy as np

from tinyscope.analysis.saliency.agreement import (
    iou_top_k,
    rank,
    saliency_drift,
    spearman,
    top_k_mask,
)
from tinyscope.analysis.saliency.base import FloatModel, SaliencyMethod, normalise
from tinyscope.analysis.saliency.gradcam import GradCAM, last_conv_layer, receptive_grid, upsample
from tinyscope.analysis.saliency.gradient import SmoothGrad, VanillaGradient
from tinyscope.analysis.saliency.occlusion import Occlusion, keras_scorer, tflite_scorer

__all__ = [
    "FloatModel", "GradCAM", "Occlusion", "SaliencyMethod", "SmoothGrad", "VanillaGradient",
    "compute_all", "iou_top_k", "keras_scorer", "last_conv_layer", "normalise", "rank",
    "receptive_grid", "saliency_drift", "spearman", "tflite_scorer", "top_k_mask", "upsample",
]


def methods(model: FloatModel, model_bytes: bytes | None, input_range: float,
            logits_tensor: int | None = None) -> dict[str, SaliencyMethod]:
    """Every method, by the name the report shows."""
    out: dict[str, SaliencyMethod] = {
        "vanilla gradient": VanillaGradient(model),
        "SmoothGrad": SmoothGrad(model, input_range),
        "Grad-CAM": GradCAM(model),
        "occlusion float": Occlusion(keras_scorer(model)),
    }
    if model_bytes is not None:
        out["occlusion int8"] = Occlusion(tflite_scorer(model_bytes, logits_tensor))
    return out


def compute_all(model, model_bytes: bytes | None, images: np.ndarray, classes,
                logits_tensor: int | None = None, input_range: float | None = None,
                seconds: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Every method on ``images`` for ``classes``: name -> ``(N, H, W)`` maps in [0, 1].
    ``model`` is a Keras model or a :class:`FloatModel`; ``input_range`` defaults to the
    images' own range. ``seconds`` (if given) receives the time each method took."""
    x = np.asarray(images, np.float32)
    start = time.monotonic()
    fm = model if isinstance(model, FloatModel) else FloatModel(model)
    if seconds is not None:
        seconds["float model"] = time.monotonic() - start
    span = input_range if input_range else float(x.max() - x.min()) or 1.0
    maps = {}
    for name, method in methods(fm, model_bytes, span, logits_tensor).items():
        t = time.monotonic()
        maps[name] = method(x, classes)
        if seconds is not None:
            seconds[name] = time.monotonic() - t
    return maps


def agreement(maps: dict[str, np.ndarray]) -> dict:
    """The int8-vs-float occlusion agreement (the number the report and CI look at)."""
    if "occlusion int8" not in maps:
        return {}
    return {"occlusion_int8_vs_float": saliency_drift(maps["occlusion float"],
                                                      maps["occlusion int8"])}
