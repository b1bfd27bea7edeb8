"""Drift metrics: how far int8 tensors are from float (or from another int8 run), and why.

Building blocks, reusable by ``tinyscope compare`` (device vs desktop):

* :func:`error_metrics` -- max/mean |err|, mean error, stddev, MSE, RMSE, SNR (dB), cosine
  similarity and L2 relative error of ``test - ref`` (floats);
* :func:`compare_tensors` -- the same for two tensors of which either may be int8 (dequantized
  with the given scale/zero point), plus ``rmse_over_scale`` (1/sqrt(12) = 0.289 is the ideal
  rounding noise), per-channel metrics, and for int8 vs int8 an LSB histogram
  (:func:`lsb_stats`);
* :func:`dataset_agreement` -- top-1 agreement and confusion matrices;
* :func:`requantize` -- TFLM's double rounding and the single rounding of optimized kernels, to
  *explain* LSB differences.

Two float references per tensor (see docs/pipeline.md): *accumulated* (the float Keras model
end to end: what quantization does to the network) and *layer-local* (each Keras layer fed the
dequantized int8 input of its operator: the error one operator adds; this is what TFLite's
``QuantizationDebugger`` reports, and a test checks we agree with it).

``tinyscope drift BUILD_DIR --out DIR`` (:mod:`tinyscope.report.drift`) writes ``metrics.json``
and PNG figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tinyscope.analysis import references
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert.graph import graph
from tinyscope.convert.layermap import layer_ops, map_layers
from tinyscope.convert.model import load_model, rebatch
from tinyscope.data import quantized_test_inputs
from tinyscope.errors import TinyscopeError
from tinyscope.fsutil import atomic_write_text

IDEAL_RMSE_OVER_SCALE = 1.0 / math.sqrt(12.0)
DEFAULT_N = 500


# --------------------------------------------------------------------------- integer maths


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``real = m * 2**(shift - 31)`` with ``m`` in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    m = round(mantissa * (1 << 31))
    if m == 1 << 31:
        m //= 2
        shift += 1
    return m, shift


def requantize(acc: np.ndarray, real_multiplier: float, rounding: str = "double") -> np.ndarray:
    """Scale int32 accumulators by ``real_multiplier`` with integer maths (no zero point added).

    ``"double"``: TFLM reference kernels (SaturatingRoundingDoublingHighMul, then
    RoundingDivideByPOT); ``"single"``: one rounding shift of the 64-bit product, as TFLite's
    optimized kernels (and, measured here, LiteRT's BUILTIN_REF FULLY_CONNECTED).
    """
    acc = np.asarray(acc, np.int64)
    m, shift = quantize_multiplier(real_multiplier)
    if rounding == "single":
        total = 31 - shift
        return (acc * m + (1 << (total - 1))) >> total
    if rounding != "double":
        raise ValueError(f"rounding must be 'double' or 'single', not {rounding!r}")
    x = acc * (1 << max(shift, 0))
    prod = x * m
    nudge = np.where(prod >= 0, 1 << 30, 1 - (1 << 30))
    s = prod + nudge
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))  # division truncating toward zero
    right = max(-shift, 0)
    if right == 0:
        return high
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


# --------------------------------------------------------------------------- metrics


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def error_metrics(ref: np.ndarray, test: np.ndarray) -> dict[str, float | None]:
    """Metrics of ``err = test - ref`` over all elements (float64 maths).

    ``snr_db`` is ``10 log10(sum ref^2 / sum err^2)`` (None when err is 0: infinite);
    ``cosine`` is 1.0 when both are all zero; ``l2_relative`` is ``|err| / |ref|``.
    """
    r = np.asarray(ref, np.float64).ravel()
    t = np.asarray(test, np.float64).ravel()
    if r.shape != t.shape:
        raise ValueError(f"shapes differ: {np.shape(ref)} vs {np.shape(test)}")
    if r.size == 0:
        raise ValueError("empty tensors")
    err = t - r
    sq = float(np.dot(err, err))
    ref_sq = float(np.dot(r, r))
    test_sq = float(np.dot(t, t))
    if ref_sq == 0.0 and test_sq == 0.0:
        cosine = 1.0
    elif ref_sq == 0.0 or test_sq == 0.0:
        cosine = 0.0
    else:
        cosine = float(np.dot(r, t) / math.sqrt(ref_sq * test_sq))
    mse = sq / r.size
    return {
        "n": int(r.size),
        "max_abs_error": float(np.max(np.abs(err))),
        "mean_abs_error": float(np.mean(np.abs(err))),
        "mean_error": float(np.mean(err)),
        "stddev": float(np.std(err)),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "snr_db": _finite(10.0 * math.log10(ref_sq / sq)) if sq > 0 and ref_sq > 0 else None,
        "cosine": cosine,
        "l2_relative": _finite(math.sqrt(sq / ref_sq)) if ref_sq > 0 else None,
    }


def lsb_stats(a: np.ndarray, b: np.ndarray) -> dict:
    """Compare two int8 tensors element by element, in LSB (quantization steps).

    ``histogram`` maps each difference ``a - b`` (in LSB) to its count.
    """
    d = np.asarray(a, np.int32) - np.asarray(b, np.int32)
    values, counts = np.unique(d, return_counts=True)
    n = int(d.size)
    n_diff = int(np.count_nonzero(d))
    return {
        "n": n,
        "n_different": n_diff,
        "fraction_equal": (n - n_diff) / n if n else 1.0,
        "max_lsb": int(np.abs(d).max()) if n else 0,
        "mean_abs_lsb": float(np.mean(np.abs(d))) if n else 0.0,
        "histogram": {int(v): int(c) for v, c in zip(values, counts, strict=True)},
    }


def _dequant(x: np.ndarray, scale, zero_point, channel_axis: int) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind == "f":
        return x.astype(np.float64)
    scale = np.asarray(scale, np.float64).ravel()
    zp = np.asarray(zero_point, np.float64).ravel()
    if scale.size > 1:  # per-channel parameters along channel_axis
        shape = [1] * x.ndim
        shape[channel_axis] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return scale * (x.astype(np.float64) - zp)


def compare_tensors(
    ref: np.ndarray,
    test: np.ndarray,
    scale: float | list[float] | None = None,
    zero_point: int | list[int] | None = None,
    channel_axis: int = -1,
    per_channel: bool = True,
) -> dict:
    """All drift metrics of ``test`` against ``ref`` for one tensor (batch axis first).

    int8 inputs are dequantized with ``scale``/``zero_point`` (required then). The result has
    ``kind`` (``"int8-int8"``, ``"float-int8"``, ...), the :func:`error_metrics` in real units,
    ``rmse_over_scale`` (if ``scale`` given), ``per_channel`` (lists, one entry per channel
    along ``channel_axis``) and, for int8 vs int8, ``lsb`` (:func:`lsb_stats`, overall) and
    ``per_channel_lsb`` (max LSB and fraction equal per channel).
    """
    ref, test = np.asarray(ref), np.asarray(test)
    if ref.shape != test.shape:
        raise ValueError(f"tensor shapes differ: {ref.shape} vs {test.shape}")
    kinds = ["int8" if x.dtype == np.int8 else "float" for x in (ref, test)]
    if "int8" in kinds and scale is None:
        raise ValueError("scale and zero_point are needed to dequantize int8 tensors")
    zp = 0 if zero_point is None else zero_point
    r = _dequant(ref, scale, zp, channel_axis)
    t = _dequant(test, scale, zp, channel_axis)
    out: dict = {"kind": "-".join(kinds), **error_metrics(r, t)}
    first_scale = float(np.ravel(scale)[0]) if scale is not None else None
    if first_scale and np.size(scale) == 1:
        out["scale"] = first_scale
        out["rmse_over_scale"] = out["rmse"] / first_scale
    if kinds == ["int8", "int8"]:
        out["lsb"] = lsb_stats(test, ref)
    if per_channel and ref.ndim >= 2:
        axis = channel_axis % ref.ndim
        rc = np.moveaxis(r, axis, -1).reshape(-1, r.shape[axis])
        tc = np.moveaxis(t, axis, -1).reshape(-1, t.shape[axis])
        chans = [error_metrics(rc[:, c], tc[:, c]) for c in range(rc.shape[1])]
        keys = ("max_abs_error", "mean_abs_error", "mean_error", "rmse", "snr_db", "cosine")
        out["per_channel"] = {k: [c[k] for c in chans] for k in keys}
        if "rmse_over_scale" in out:
            out["per_channel"]["rmse_over_scale"] = [c["rmse"] / first_scale for c in chans]
        if kinds == ["int8", "int8"]:
            d = np.abs(
                np.moveaxis(test.astype(np.int32) - ref.astype(np.int32), axis, -1)
            ).reshape(-1, ref.shape[axis])
            out["per_channel_lsb"] = {
                "max_lsb": d.max(0).astype(int).tolist(),
                "fraction_equal": (d == 0).mean(0).astype(float).tolist(),
            }
    return out


def per_sample_mean(ref: np.ndarray, test: np.ndarray, scale=None, zero_point=None) -> dict:
    """:func:`error_metrics` per sample (axis 0), averaged: QuantizationDebugger's aggregation."""
    zp = 0 if zero_point is None else zero_point
    r = _dequant(ref, scale, zp, -1)
    t = _dequant(test, scale, zp, -1)
    rows = [error_metrics(r[i], t[i]) for i in range(len(r))]
    keys = ("max_abs_error", "mean_abs_error", "mean_error", "stddev", "mse", "rmse")
    return {k: float(np.mean([row[k] for row in rows])) for k in keys}


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(true, np.int64), np.asarray(pred, np.int64)), 1)
    return cm


def dataset_agreement(
    float_scores: np.ndarray, int8_scores: np.ndarray, labels: np.ndarray | None = None,
    num_classes: int | None = None,
) -> dict:
    """Top-1 agreement float vs int8 (and accuracy of each when every input has a label;
    unlabelled inputs carry -1).

    ``confusion_float_vs_int8[i][j]`` counts images the float model puts in class ``i`` and the
    int8 model in class ``j``; ``confusion_int8[i][j]``: true class ``i``, int8 prediction ``j``.
    """
    fp = np.asarray(float_scores).argmax(-1)
    qp = np.asarray(int8_scores).argmax(-1)
    k = num_classes or int(np.asarray(float_scores).shape[-1])
    out = {
        "n": int(len(fp)),
        "top1_agreement": float(np.mean(fp == qp)),
        "n_disagree": int(np.sum(fp != qp)),
        "disagreeing_images": np.flatnonzero(fp != qp).astype(int).tolist()[:50],
        "confusion_float_vs_int8": confusion_matrix(fp, qp, k).tolist(),
    }
    y = None if labels is None else np.asarray(labels)
    if y is not None and len(y) == len(fp) and np.all(y >= 0):  # -1: an unlabelled input
        out["float_accuracy"] = float(np.mean(fp == y))
        out["int8_accuracy"] = float(np.mean(qp == y))
        out["confusion_float"] = confusion_matrix(y, fp, k).tolist()
        out["confusion_int8"] = confusion_matrix(y, qp, k).tolist()
    return out


# --------------------------------------------------------------------------- float references


def local_float_tensors(model, model_bytes: bytes, int8: dict[int, np.ndarray], layer_map=None):
    """Layer-local float reference: each mapped Keras layer (+ layers folded into its op) run
    on the dequantized int8 input(s) of its operator; ``{tensor_index: (N, ...)}``.

    This is the float value each operator *should* produce from the int8 values it actually
    got, so ``int8 - local`` isolates the error that one operator adds.
    """
    ops, tensors, _, _ = graph(model_bytes)
    lmap = layer_map or map_layers(model, model_bytes)
    net = rebatch(model, None) if model.inputs[0].shape[0] is not None else model
    out: dict[int, np.ndarray] = {}
    for op in ops:
        name = lmap.op_layer.get(op.index)
        idx = op.outputs[0]
        if name is None or idx not in lmap.tensor_layer:
            continue
        if len(layer_ops(net.get_layer(name)) or ()) > 1:
            continue  # several ops (SeparableConv2D, Dense + softmax): no op has its input
        acts = [i for i in op.inputs if i in int8]
        if not acts:
            continue
        xs = []
        for i in acts:
            t = tensors[i]
            xs.append(_dequant(int8[i], t.scales, t.zero_points, -1).astype(np.float32))
        y = _run_layer(net, name, xs, lmap.op_fused.get(op.index, []))
        want = (len(xs[0]), *tensors[idx].shape[1:])
        if y is not None and y.size == int(np.prod(want)):
            out[idx] = y.reshape(want)
    return out


def _run_layer(net, name: str, xs: list[np.ndarray], fused: list[str]) -> np.ndarray | None:
    """One Keras layer (and the layers folded into its op) on ``xs``. A ``ZeroPadding2D``
    feeding the layer that the converter folded into the op (a MobileNet's stride-2
    depthwise convolutions) is applied first. None if the layer cannot run on ``xs``."""
    layer = net.get_layer(name)
    pad = None
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(xs) == 1 and len(nodes) == 1 and len(nodes[0].parent_nodes) == 1:
        parent = nodes[0].parent_nodes[0].operation
        if type(parent).__name__ == "ZeroPadding2D":
            pad = parent
    x = xs if len(xs) > 1 else xs[0]
    want = tuple(int(v) for v in layer.output.shape[1:])
    given = tuple(int(v) for v in layer.input.shape[1:]) if len(xs) == 1 else ()
    if pad is not None and tuple(x.shape[1:]) != given:
        x = pad(x)
    elif given and tuple(x.shape[1:]) != given and x[0].size == int(np.prod(given)):
        x = x.reshape(len(x), *given)  # a 1-D layer's (L, C) input held as a 1 x L x C tensor
    from tensorflow.errors import OpError  # loaded with Keras already

    try:
        y = layer(x)
    except (ValueError, TypeError, OpError):  # e.g. a rank the layer's TF op refuses
        return None
    if tuple(y.shape[1:]) != want:
        return None
    for f in fused:
        y = net.get_layer(f)(y)
    return np.asarray(y)


# --------------------------------------------------------------------------- the drift run


def run(
    build_dir: str | Path, n: int = DEFAULT_N, data: str | None = None,
    model_path: str | Path | None = None, progress: bool = True,
) -> tuple[dict, dict]:
    """Compute every metric for a build; returns ``(metrics, figure_data)`` (for the figures).
    The references run out of process, cached in ``BUILD_DIR/references/`` per inputs."""
    manifest = manifest_mod.load(build_dir)
    tflite_bytes = manifest_mod.model_bytes(build_dir, manifest)
    src = model_path or manifest_mod.float_model_path(manifest)
    if not src or not Path(src).is_file():
        raise TinyscopeError(
            f"float model {src!r} (from {Path(build_dir) / 'manifest.json'}) not found; "
            "pass --model MODEL.keras"
        )
    x, q, y = quantized_test_inputs(manifest, n, data)
    bar = _progress(len(references.LABELS), progress)
    job = references.start(tflite_bytes, q, x, src, cache_dir=build_dir,
                           on_done=lambda kind: bar.update(1))
    model = load_model(src)
    lmap = map_layers(model, tflite_bytes)
    refs = job.wait()
    bar.close()
    tflm, float_ref = refs.require("tflm"), refs.require("float")
    local = local_float_tensors(model, tflite_bytes, tflm, layer_map=lmap)
    per_tensor = _tensor_rows(manifest, refs, local)
    out_idx = manifest["output"]["index"]
    scores = {"float": float_ref.get(out_idx, float_ref.get(manifest["logits_tensor"])),
              "tflm": tflm[out_idx]}
    classes = manifest.get("classes") or [str(i) for i in range(scores["tflm"].shape[-1])]
    dataset = dataset_agreement(scores["float"], scores["tflm"], y, len(classes))
    if "xnnpack" in refs.tensors:
        dataset["xnnpack_vs_tflm_top1_agreement"] = float(
            np.mean(refs.tensors["xnnpack"][out_idx].argmax(-1) == scores["tflm"].argmax(-1)))
    metrics = {
        "model_sha256": manifest["model_sha256"],
        "source_model": str(src),
        "data": manifest.get("data") if data is None else data,
        "n_images": int(len(y)),
        "classes": classes,
        "int8_reference": "TFLM (tflite-micro python interpreter): what the device must match",
        "references": refs.status(every=True),
        "ideal_rmse_over_scale": IDEAL_RMSE_OVER_SCALE,
        "dataset": dataset,
        "tensors": per_tensor,
    }
    figure_data = {
        "x": x, "q": q, "y": y, "tflm": tflm, "ref": refs.get("litert_ref") or {},
        "xnnpack": refs.get("xnnpack") or {}, "float": float_ref,
        "local": local, "first_layer_output": manifest["first_layer_output"],
    }
    return metrics, figure_data


def _tensor_rows(manifest: dict, refs, local: dict[int, np.ndarray]) -> list[dict]:
    """Per activation: float (end to end and layer-local) and the other int8 references
    against TFLM."""
    tflm, float_ref = refs.tensors["tflm"], refs.tensors["float"]
    litert_ref, xnnpack = refs.get("litert_ref") or {}, refs.get("xnnpack") or {}
    ops = {o["outputs"][0]: o for o in manifest["operators"]}
    tinfo = {t["index"]: t for t in manifest["tensors"]}
    per_tensor = []
    for idx in manifest["activations"]:
        t = tinfo[idx]
        if not t["scales"]:  # a float32 edge (QUANTIZE input, DEQUANTIZE output): not int8
            continue
        op = ops.get(idx)
        sc, zp = t["scales"][0], t["zero_points"][0]
        entry = {
            "index": idx,
            "op_index": op["index"] if op else None,
            "op": op["op"] if op else "INPUT",
            "keras_layer": manifest_mod.op_label(op),
            "shape": t["shape"],
            "scale": sc,
            "zero_point": zp,
        }
        if idx in float_ref:
            entry["float_vs_int8"] = compare_tensors(float_ref[idx], tflm[idx], sc, zp)
        if idx in local:
            entry["float_local_vs_int8"] = compare_tensors(local[idx], tflm[idx], sc, zp)
        if idx in litert_ref:
            entry["tflm_vs_litert_ref"] = compare_tensors(tflm[idx], litert_ref[idx], sc, zp)
        if idx in xnnpack:
            entry["tflm_vs_xnnpack"] = compare_tensors(tflm[idx], xnnpack[idx], sc, zp)
        per_tensor.append(entry)
    return per_tensor


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="references", unit="run", disable=not enabled)


def write_metrics(path: Path, metrics: dict) -> None:
    atomic_write_text(path, json.dumps(metrics, indent=1, allow_nan=False) + "\n")


def summary_lines(metrics: dict) -> list[str]:
    d = metrics["dataset"]
    lines = [
        f"{metrics['n_images']} images: float accuracy {d.get('float_accuracy', 0):.2%}, "
        f"int8 accuracy {d.get('int8_accuracy', 0):.2%}, top-1 agreement "
        f"{d['top1_agreement']:.2%} ({d['n_disagree']} differ)",
        f"{'tensor':>6} {'op':<16} {'layer':<10} {'RMSE/scale':>10} {'local':>6} "
        f"{'SNR dB':>7} {'cos':>6} {'XNNPACK!=TFLM':>14} {'ref!=TFLM':>9}",
    ]
    for t in metrics["tensors"]:
        fl = t.get("float_vs_int8", {})
        lo = t.get("float_local_vs_int8", {})
        xn = t["tflm_vs_xnnpack"]["lsb"]
        rf = t["tflm_vs_litert_ref"]["lsb"]
        snr = fl.get("snr_db")
        lines.append(
            f"{t['index']:>6} {t['op']:<16} {str(t['keras_layer']):<10} "
            f"{fl.get('rmse_over_scale', float('nan')):>10.3f} "
            f"{lo.get('rmse_over_scale', float('nan')):>6.3f} "
            f"{snr if snr is not None else float('inf'):>7.1f} {fl.get('cosine', 1.0):>6.4f} "
            f"{xn['n_different']:>8} ({xn['max_lsb']} LSB) {rf['n_different']:>9}"
        )
    return lines
