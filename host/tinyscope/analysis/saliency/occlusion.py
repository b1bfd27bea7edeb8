"""Occlusion sensitivity (Zeiler & Fergus 2014) without a grid pattern, for images, 2-D
features (time x feature) and 1-D vectors.

A window (a quarter of each axis, at least 3 values) filled with a baseline value slides
over the input's map axes (height x width of an image, time x feature of a 2-D input, the
positions of a vector) with a stride of half its size (a third on vectors, where runs are
few); each position's score drop is spread over the window with a smooth weight (Hann:
sin^2, which sums to one at that overlap: sin^2 + cos^2), and a value's saliency is the
weighted mean of the drops of the windows covering it. Overlapping windows and a weight
that falls to zero at the window's edge leave no block or grid pattern (the map is a smooth
interpolation of the drops), with 81 model runs per 96x96 image, ~150x fewer than a 4-pixel
patch moved by 2 (a stride of a third of the window is a little smoother and takes 2.4x as
many runs). All occluded copies of all images go to the scorer in one call.

Scores come from a :data:`Scorer`: :func:`keras_scorer` (the float model, batched) or
:func:`tflite_scorer` (the int8 model on LiteRT's builtin kernels, which equal TFLM and the
device bit for bit). The int8 model runs in a child process (:mod:`.int8_worker`): a LiteRT
kernel that aborts on a model takes down the child, not tinyscope (issue #19).

What a score is (:func:`explained_target`): a classifier's pre-softmax score of the explained
class; for a model whose output has the input's shape (an autoencoder), the mean squared
reconstruction error, the anomaly score such models are used for.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tinyscope.analysis.saliency.base import (
    CLASS,
    RECONSTRUCTION,
    FloatModel,
    as_classes,
    map_shape,
    normalise,
)
from tinyscope.convert.graph import graph
from tinyscope.data import dequantize, quantize
from tinyscope.errors import TinyscopeError

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (images, classes) -> (N,) scores
WORKER_TIMEOUT_S = 600.0
FLAT_TOLERANCE = 1e-6  # drops below this (relative to 1 + |score|) are no change at all


class OcclusionError(TinyscopeError):
    """The int8 model could not be scored (its interpreter died or refused the model)."""


def _hann(n: int) -> np.ndarray:
    return (np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)


def window(sizes: Sequence[int]) -> np.ndarray:
    """The separable Hann weight of a window of ``sizes`` (1-D or 2-D)."""
    w = _hann(sizes[0])
    for s in sizes[1:]:
        w = np.multiply.outer(w, _hann(s))
    return w.astype(np.float32)


def positions(size: int, patch: int, stride: int) -> list[int]:
    """Window starts along one axis covering ``[0, size)``: from ``-patch + stride`` so the
    border values are covered as often as the middle ones."""
    return list(range(-patch + stride, size, stride))


class Occlusion:
    """``Occlusion(scorer)(images, classes)``: positive score drops, normalised per image.
    After a call, :attr:`flat` says per image whether no window changed the score at all (a
    constant output: the map means nothing)."""

    name = "occlusion"

    def __init__(self, scorer: Scorer, patch: int | None = None, stride: int | None = None,
                 baseline: float = 0.0) -> None:
        self.scorer, self.patch, self.stride, self.baseline = scorer, patch, stride, baseline
        self.flat: list[bool] = []

    def geometry(self, size: int, axes: int = 2) -> tuple[int, int]:
        """(window, stride) along an axis of ``size`` values of a map with ``axes`` axes: the
        stride is half the window on 2-D maps (the runs grow with its square) and a third on
        vectors (a few runs; a third localises a narrow peak to within a value)."""
        patch = min(size, self.patch or max(3, round(size / 4)))
        stride = self.stride or max(1, patch // (2 if axes >= 2 else 3))
        return patch, stride

    def drops(self, images: np.ndarray, classes) -> np.ndarray:
        """Raw (unnormalised, unclipped) window-weighted mean score drop per map value,
        ``(N, *map_shape)``."""
        x = np.asarray(images, np.float32)
        classes = as_classes(classes, len(x))
        n = len(x)
        axes = map_shape(x.shape[1:])
        geo = [self.geometry(s, len(axes)) for s in axes]
        pos = list(itertools.product(*[positions(s, p, st) for s, (p, st) in zip(axes, geo,
                                                                                strict=True)]))
        m = len(pos) + 1
        batch = np.repeat(x[:, None], m, axis=1)  # (n, m, *input shape); copy 0 untouched
        for k, start in enumerate(pos, start=1):
            region = tuple(slice(max(a, 0), a + p) for a, (p, _) in zip(start, geo, strict=True))
            batch[(slice(None), k, *region)] = self.baseline
        scores = np.asarray(self.scorer(batch.reshape(n * m, *x.shape[1:]),
                                        np.repeat(classes, m)), np.float64).reshape(n, m)
        win = window([p for p, _ in geo])
        pad = [p for p, _ in geo]
        total = np.zeros((n, *[s + 2 * p for s, p in zip(axes, pad, strict=True)]))
        weight = np.zeros(total.shape[1:])
        drop = scores[:, :1] - scores[:, 1:]  # (n, m - 1)
        for k, start in enumerate(pos):
            region = tuple(slice(a + p, a + 2 * p) for a, p in zip(start, pad, strict=True))
            total[(slice(None), *region)] += drop[:, k].reshape(n, *[1] * len(axes)) * win
            weight[region] += win
        inner = tuple(slice(p, p + s) for s, p in zip(axes, pad, strict=True))
        out = total[(slice(None), *inner)] / np.maximum(weight[inner], 1e-6)
        limit = FLAT_TOLERANCE * (1.0 + np.abs(scores).max(1))
        self.flat = [bool(np.abs(drop[i]).max(initial=0.0) <= limit[i]) for i in range(n)]
        return out.astype(np.float32)

    def __call__(self, images: np.ndarray, classes) -> np.ndarray:
        return normalise(np.maximum(self.drops(images, classes), 0.0))


def keras_scorer(model: FloatModel) -> Scorer:
    """Batched scores of the float model (:meth:`FloatModel.scores`)."""

    def score(images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return model.scores(images, classes).astype(np.float32)

    return score


def explained_target(model_bytes: bytes) -> tuple[str, int]:
    """``(target, tensor)`` for an int8 model: ``("class", logits)`` for a classifier (the
    input of a final SOFTMAX, else the output) or ``("reconstruction", output)`` when the
    output has as many values as the input (an autoencoder)."""
    ops, tensors, inputs, outputs = graph(model_bytes)
    n_in = int(np.prod(tensors[inputs[0]].shape))
    n_out = int(np.prod(tensors[outputs[0]].shape))
    if ops and ops[-1].name == "SOFTMAX":
        return CLASS, ops[-1].inputs[0]
    return (RECONSTRUCTION if n_out == n_in and n_in > 1 else CLASS), outputs[0]


def tflite_scorer(model_bytes: bytes, logits_tensor: int | None = None,
                  target: str | None = None) -> Scorer:
    """Scores of the int8 model for float images quantized like the model input, computed in
    a child process on LiteRT's builtin kernels without delegates (equal to TFLM bit for bit,
    ~5x faster than BUILTIN_REF): the class's logit (the input of the final SOFTMAX,
    dequantized), or the reconstruction error of an autoencoder. Raises
    :class:`OcclusionError` when the interpreter dies or refuses the model."""
    ops, tensors, inputs, outputs = graph(model_bytes)
    guess_target, guess_tensor = explained_target(model_bytes)
    target = target or guess_target
    out_index = guess_tensor if logits_tensor is None else logits_tensor
    t_in, t_out = tensors[inputs[0]], tensors[out_index]

    def score(images: np.ndarray, classes: np.ndarray) -> np.ndarray:
        x = np.asarray(images, np.float32)
        # a float32 input or output edge (QUANTIZE / DEQUANTIZE in the model) stays float
        q = (quantize(x, t_in.scales[0], t_in.zero_points[0]) if t_in.scales
             else x.astype(t_in.dtype))
        raw = run_int8(model_bytes, q.reshape(len(q), *t_in.shape[1:]), t_in.index,
                       t_out.index).reshape(len(q), -1)
        out = (dequantize(raw, t_out.scales[0], t_out.zero_points[0]) if t_out.scales
               else raw.astype(np.float32))
        if target == RECONSTRUCTION:
            return np.mean((out - x.reshape(len(x), -1)) ** 2, axis=1).astype(np.float32)
        return out[np.arange(len(q)), np.asarray(classes)].astype(np.float32)

    return score


def run_int8(model_bytes: bytes, q: np.ndarray, input_index: int,
             output_index: int) -> np.ndarray:
    """Run the int8 model on every input of ``q`` in a child process
    (``python -m tinyscope.analysis.saliency.int8_worker``); returns the raw int8 values of
    tensor ``output_index`` per input."""
    with tempfile.TemporaryDirectory(prefix="tinyscope-occlusion-") as tmp:
        work = Path(tmp)
        (work / "model.tflite").write_bytes(bytes(model_bytes))
        np.save(work / "q.npy", np.ascontiguousarray(q))
        (work / "job.json").write_text(json.dumps({"input": int(input_index),
                                                   "output": int(output_index)}))
        pkg_root = str(Path(__file__).resolve().parents[3])
        path = os.environ.get("PYTHONPATH", "")
        env = {**os.environ, "PYTHONPATH": pkg_root + (os.pathsep + path if path else ""),
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "tinyscope.analysis.saliency.int8_worker", str(work)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=env, timeout=WORKER_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as err:
            raise OcclusionError(
                f"the int8 model did not finish {len(q)} occlusion runs in "
                f"{WORKER_TIMEOUT_S:.0f} s; occlusion on the int8 model is left out") from err
        if proc.returncode != 0 or not (work / "out.npy").is_file():
            if proc.returncode < 0:
                try:
                    how = f"aborted ({signal.Signals(-proc.returncode).name})"
                except ValueError:
                    how = f"died (signal {-proc.returncode})"
            else:
                how = f"failed (exit status {proc.returncode})"
            err_text = (work / "error.txt").read_text() if (work / "error.txt").is_file() \
                else proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
            detail = err_text if isinstance(err_text, str) else " ".join(err_text)
            raise OcclusionError(
                f"LiteRT's interpreter {how} running the int8 model for occlusion saliency"
                + (f": {detail[:300]}" if detail else "")
                + "; occlusion on the int8 model is left out (the other figures are not "
                "affected)")
        return np.load(work / "out.npy")
