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
from tinyscope.analysis.saliency.base import (
    CLASS,
    RECONSTRUCTION,
    FloatModel,
    SaliencyMethod,
    map_shape,
    normalise,
)
from tinyscope.analysis.saliency.gradcam import GradCAM, last_conv_layer, receptive_grid, upsample
from tinyscope.analysis.saliency.gradient import SmoothGrad, VanillaGradient
from tinyscope.analysis.saliency.occlusion import (
    Occlusion,
    OcclusionError,
    explained_target,
    keras_scorer,
    tflite_scorer,
)
from tinyscope.errors import TinyscopeError

__all__ = [
    "CLASS", "RECONSTRUCTION", "FloatModel", "GradCAM", "Occlusion", "OcclusionError",
    "SaliencyMethod", "SmoothGrad", "VanillaGradient", "compute_all", "explained_target",
    "flat_note", "map_shape", "iou_top_k", "keras_scorer", "last_conv_layer", "normalise", "rank",
    "receptive_grid", "saliency_drift", "spearman", "tflite_scorer", "top_k_mask", "upsample",
]


LEFT_OUT_WITHOUT_FLOAT = ("vanilla gradient", "SmoothGrad", "Grad-CAM", "occlusion float")


def methods(model: FloatModel | None, model_bytes: bytes | None, input_range: float,
            logits_tensor: int | None = None) -> tuple[dict[str, SaliencyMethod], dict[str, str]]:
    """Every method that can run, by the name the report shows, and the ones left out with
    the reason. Without a float model only occlusion on the int8 model runs; Grad-CAM needs
    an image input and a convolution with a spatial output."""
    out: dict[str, SaliencyMethod] = {}
    left: dict[str, str] = {}
    if model is not None:
        out["vanilla gradient"] = VanillaGradient(model)
        out["SmoothGrad"] = SmoothGrad(model, input_range)
        if len(model.input_shape) == 3:
            try:
                out["Grad-CAM"] = GradCAM(model)
            except TinyscopeError as err:
                left["Grad-CAM"] = str(err)
        else:
            left["Grad-CAM"] = "Grad-CAM explains a convolution over an image; this input " \
                f"is {'x'.join(map(str, model.input_shape))}"
        out["occlusion float"] = Occlusion(keras_scorer(model))
    else:
        for name in LEFT_OUT_WITHOUT_FLOAT:
            left[name] = "needs the float model: pass --float-model F (.keras or .h5)"
    if model_bytes is not None:
        target = model.target if model is not None else None
        out["occlusion int8"] = Occlusion(tflite_scorer(model_bytes, logits_tensor, target))
    return out, left


def compute_all(model, model_bytes: bytes | None, images: np.ndarray, classes,
                logits_tensor: int | None = None, input_range: float | None = None,
                seconds: dict[str, float] | None = None,
                info: dict | None = None) -> dict[str, np.ndarray]:
    """Every method that can run on ``images`` for ``classes``: name -> ``(N, *map shape)``
    maps in [0, 1] (``(N, H, W)`` for images, ``(N, T, F)`` for 2-D inputs, ``(N, L)`` for
    vectors). ``model`` is a Keras model, a :class:`FloatModel` or None (then only occlusion
    on the int8 model runs); ``input_range`` defaults to the images' own range.

    The int8 model's occlusion runs in a child process started first, while the float
    methods run here. ``seconds`` (if given) receives the time each method took; ``info``
    receives ``left_out`` (method -> why it did not run) and ``flat`` (occlusion method ->
    per image, True where no window changed the score: a constant output)."""
    from concurrent.futures import ThreadPoolExecutor

    x = np.asarray(images, np.float32)
    seconds = {} if seconds is None else seconds
    info = {} if info is None else info
    start = time.monotonic()
    fm = model if isinstance(model, FloatModel) or model is None else FloatModel(model)
    seconds["float model"] = time.monotonic() - start
    span = input_range if input_range else float(x.max() - x.min()) or 1.0
    todo, left = methods(fm, model_bytes, span, logits_tensor)
    info.setdefault("left_out", {}).update(left)
    flat = info.setdefault("flat", {})
    maps: dict[str, np.ndarray] = {}

    def timed(name: str, method: SaliencyMethod) -> np.ndarray:
        t = time.monotonic()
        try:
            return method(x, classes)
        finally:
            seconds[name] = time.monotonic() - t

    with ThreadPoolExecutor(max_workers=1) as pool:
        int8 = todo.pop("occlusion int8", None)
        pending = pool.submit(timed, "occlusion int8", int8) if int8 is not None else None
        for name, method in todo.items():
            maps[name] = timed(name, method)
            if isinstance(method, Occlusion):
                flat[name] = list(method.flat)
        if pending is not None:
            try:
                maps["occlusion int8"] = pending.result()
                flat["occlusion int8"] = list(int8.flat)
            except OcclusionError as err:
                info["left_out"]["occlusion int8"] = str(err)
    return {k: maps[k] for k in (*METHOD_ORDER, *maps) if k in maps}


METHOD_ORDER = ("vanilla gradient", "SmoothGrad", "Grad-CAM", "occlusion float",
                "occlusion int8")


def agreement(maps: dict[str, np.ndarray], info: dict | None = None) -> dict:
    """The int8-vs-float occlusion agreement (the number the report and CI look at); images
    where either map is flat (the score never changed) are left out of it and named."""
    if "occlusion int8" not in maps or "occlusion float" not in maps:
        return {}
    flat = (info or {}).get("flat", {})
    return {"occlusion_int8_vs_float": saliency_drift(
        maps["occlusion float"], maps["occlusion int8"],
        flat_a=flat.get("occlusion float"), flat_b=flat.get("occlusion int8"))}


def flat_note(flat: dict[str, list[bool]]) -> str | None:
    """A sentence for occlusion maps that are flat, or None."""
    parts = []
    for name, model in (("occlusion int8", "int8"), ("occlusion float", "float")):
        images = [i for i, f in enumerate(flat.get(name) or []) if f]
        if images:
            parts.append(f"the {model} model's score does not change when any part of the "
                         f"input is covered (image{'s' if len(images) > 1 else ''} "
                         f"{', '.join(map(str, images))}): its occlusion map is flat "
                         "(a constant output, e.g. an untrained model)")
    return "; ".join(parts) if parts else None
