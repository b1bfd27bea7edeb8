"""The answers the report puts first, as numbers: which layer drifts most (accumulated and
layer-local), what to try about it, and accuracy per class."""

from __future__ import annotations

import time

import numpy as np

from tinyscope.analysis import drift, saliency
from tinyscope.convert import manifest as manifest_mod

WEIGHTED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}
FIXED_RANGE_OPS = {"SOFTMAX", "LOGISTIC", "TANH"}  # int8 range set by the op, not calibration
CLIPPED_FRACTION = 0.001  # above this share of float values outside the int8 range: clipping
# A layer adding more than this (RMSE in LSB of its output) is worth a look: rounding alone
# gives 0.29, requantizing a sum of several rounded terms a little more.
LOCAL_DRIFT_WARN_LSB = 1.0
# Below this signal-to-noise ratio (device vs float) the accumulated drift is worth a look.
ACCUMULATED_SNR_WARN_DB = 20.0


def _pick(row: dict, key: str) -> dict:
    m = row[key]
    return {"index": row["index"], "op_index": row["op_index"], "op": row["op"],
            "keras_layer": row["keras_layer"], "rmse_over_scale": m["rmse_over_scale"],
            "snr_db": m.get("snr_db")}


def _worst(rows: list[dict], key: str) -> dict | None:
    have = [r for r in rows if r.get(key, {}).get("rmse_over_scale") is not None]
    return _pick(max(have, key=lambda r: r[key]["rmse_over_scale"]), key) if have else None


def _weights(manifest: dict, op_index: int | None) -> dict | None:
    """The weight tensor of an operator (its first constant input with 2+ dimensions)."""
    if op_index is None:
        return None
    op = manifest["operators"][op_index]
    tensors = {t["index"]: t for t in manifest["tensors"]}
    for i in op["inputs"][1:]:
        t = tensors.get(i)
        if t and t.get("kind") == "constant" and len(t["shape"]) >= 2:
            return t
    return None


def suggestions(manifest: dict, rows: list[dict], worst: dict) -> list[dict]:
    """What to try for the layer ``worst``, each with the measured reason."""
    row = next(r for r in rows if r["index"] == worst["index"])
    name = worst["keras_layer"] or worst["op"]
    out = []
    w = _weights(manifest, worst["op_index"])
    channels = int(row["shape"][-1]) if row["shape"] else 1
    if w is not None and worst["op"] in WEIGHTED_OPS and len(w["scales"]) == 1 and channels > 1:
        out.append({"what": f"per-channel quantization of {name}'s weights",
                    "why": f"its {channels} output channels share one weight scale now"})
    clipped = row.get("float_outside_int8_range")
    calib = (manifest.get("calibration") or {}).get("count")
    if clipped is not None and clipped > CLIPPED_FRACTION and row["op"] not in FIXED_RANGE_OPS:
        out.append({"what": "more, or more typical, calibration data",
                    "why": f"{clipped:.1%} of {name}'s float values fall outside its int8 range"
                    + (f"; calibration used {calib} images" if calib else "")})
    elif calib:
        out.append({"what": "more calibration data",
                    "why": f"the int8 ranges were set from {calib} images"})
    if channels <= 16:
        out.append({"what": f"a wider {name} (more channels) or an activation with a bounded "
                    "range (ReLU6) before it",
                    "why": f"{channels} channels carry the signal at "
                    f"{worst['rmse_over_scale']:.2f} LSB RMSE"})
    return out


def drift_summary(manifest: dict, rows: list[dict]) -> dict:
    """Worst accumulated drift (device vs float on the original image), worst layer-local
    drift (device vs the layer run in float on the device's own input), the ``finding``
    (``"layer"``: one layer adds too much; ``"accumulation"``: no layer does, but the drift
    adds up to a low SNR; ``"none"``), the layer it points at and what to try there."""
    acc = _worst(rows, "device_vs_float")
    loc = _worst(rows, "device_vs_float_local")
    finding, target = "none", loc or acc
    if loc and loc["rmse_over_scale"] > LOCAL_DRIFT_WARN_LSB:
        finding, target = "layer", loc
    elif acc and acc.get("snr_db") is not None and acc["snr_db"] < ACCUMULATED_SNR_WARN_DB:
        finding, target = "accumulation", acc
    tips = suggestions(manifest, rows, target) if target and finding != "none" else []
    if finding == "accumulation":
        tips.append({"what": "quantization-aware training",
                     "why": "no layer adds more than "
                     f"{loc['rmse_over_scale'] if loc else 0:.2f} LSB, yet the drift adds up "
                     f"to {acc['rmse_over_scale']:.1f} LSB (SNR {acc['snr_db']:.1f} dB)"})
    return {
        "worst_accumulated": acc, "worst_local": loc, "finding": finding, "target": target,
        "ideal_rmse_over_scale": float(1 / np.sqrt(12)), "suggestions": tips,
    }


def per_class(labels: np.ndarray, device_pred: np.ndarray, float_pred: np.ndarray | None,
              classes: list[str]) -> list[dict]:
    out = []
    for k, name in enumerate(classes):
        sel = np.asarray(labels) == k
        n = int(sel.sum())
        entry = {"class": name, "n": n,
                 "device_accuracy": float(np.mean(device_pred[sel] == k)) if n else None}
        if float_pred is not None:
            entry["float_accuracy"] = float(np.mean(float_pred[sel] == k)) if n else None
        out.append(entry)
    return out


# --------------------------------------------------------------------------- into the metrics


def _local_drift(metrics: dict, arrays: dict) -> None:
    """``device_vs_float_local`` per tensor: the device's values against the layer run alone
    in float on the device's own int8 input (the error this one layer adds), and the share of
    float values outside the tensor's int8 range (clipping)."""
    model, cap, man = arrays.get("model"), arrays["cap"], arrays["manifest"]
    flt = arrays.get("float") or {}
    if model is None:
        return
    int8 = dict(cap.tensors)
    int8[man["input"]["index"]] = cap.inputs
    local = drift.local_float_tensors(model, arrays["model_bytes"], int8)
    arrays["float_local"] = local
    for row in metrics["tensors"]:
        idx, sc, zp = row["index"], row["scale"], row["zero_point"]
        if sc is None:  # a float32 edge: compared bit for bit, no drift in LSB
            continue
        dev = cap.tensors[idx]
        if idx in local and local[idx].shape == dev.shape:
            row["device_vs_float_local"] = drift.compare_tensors(local[idx], dev, sc, zp,
                                                                 per_channel=False)
        if idx in flt:
            lo, hi = (-128 - zp) * sc, (127 - zp) * sc
            f = flt[idx]
            row["float_outside_int8_range"] = float(np.mean((f < lo - sc / 2) |
                                                            (f > hi + sc / 2)))


def add_drift_and_accuracy(metrics: dict, arrays: dict) -> None:
    """Adds ``metrics["drift"]`` (worst layers, what to try), the layer-local drift per tensor
    and ``metrics["dataset"]["per_class"]``."""
    _local_drift(metrics, arrays)
    man, cap = arrays["manifest"], arrays["cap"]
    metrics["drift"] = drift_summary(man, metrics["tensors"])
    out_idx = man["output"]["index"]
    dev_out = cap.outputs if cap.outputs is not None else cap.tensors.get(out_idx)
    if dev_out is None or not np.all(np.asarray(cap.labels) >= 0):
        return  # no labels (a .npy without y): no accuracy per class
    flt = arrays.get("float") or {}
    fscores = flt.get(out_idx, flt.get(man.get("logits_tensor", -1)))
    metrics["dataset"]["per_class"] = per_class(
        cap.labels, dev_out.argmax(-1), None if fscores is None else fscores.argmax(-1),
        metrics["classes"])


def panel_images(metrics: dict, panels: int) -> list[int]:
    return list(range(min(panels, metrics["n_images"])))


def inputs(arrays: dict) -> np.ndarray:
    """The float inputs of the capture: the originals, else the device's int8 inputs
    dequantized (exactly what the int8 model saw)."""
    from tinyscope.data import dequantize

    if arrays.get("x") is not None:
        return arrays["x"]
    device_inputs = arrays["cap"].inputs
    if device_inputs.dtype != np.int8:  # a float32 input edge: the device took them as they are
        return np.asarray(device_inputs, np.float32)
    inp = arrays["manifest"]["input"]
    return dequantize(device_inputs, inp["scale"], inp["zero_point"]).astype(np.float32)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the int8 occlusion runs in
    one)."""
    import os

    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def explained(target: str, float_model: bool) -> str:
    if target == saliency.RECONSTRUCTION:
        return "the mean squared reconstruction error (the anomaly score of an autoencoder)"
    who = "the float model's" if float_model else "the int8 model's"
    return f"{who} predicted class, pre-softmax score"


def add_saliency(metrics: dict, arrays: dict, images: list[int]) -> dict[str, np.ndarray]:
    """Saliency maps of the panel images (every method that can run) and, in
    ``metrics["saliency"]``, the explained classes, the int8-vs-float occlusion agreement,
    the methods left out (and why) and the seconds each method took. Without a float model
    only occlusion on the int8 model runs, explaining the device's prediction. Returns the
    maps (name -> ``(len(images), *map shape)``)."""
    model, man = arrays.get("model"), arrays["manifest"]
    if not images:
        return {}
    x = inputs(arrays)
    start, cpu = time.monotonic(), cpu_seconds()
    fm = saliency.FloatModel(model) if model is not None else None
    imgs = x[images]
    if fm is not None:
        classes, target = fm.predict_classes(imgs), fm.target
    else:
        cap = arrays["cap"]
        out = cap.outputs if cap.outputs is not None else cap.tensors.get(man["output"]["index"])
        target = saliency.explained_target(arrays["model_bytes"])[0]
        classes = (np.zeros(len(images), np.int64) if out is None or
                   target == saliency.RECONSTRUCTION else
                   np.asarray(out)[images].reshape(len(images), -1).argmax(-1))
    seconds: dict[str, float] = {}
    info: dict = {}
    maps = saliency.compute_all(fm, arrays["model_bytes"], imgs, classes,
                                man.get("logits_tensor"),
                                255.0 * manifest_mod.input_quant(man)["scale"], seconds, info)
    metrics["saliency"] = {
        "images": images, "explained_classes": np.asarray(classes).astype(int).tolist(),
        "explained": explained(target, fm is not None), "target": target,
        "methods": list(maps), "left_out": info.get("left_out", {}),
        "flat": info.get("flat", {}), "flat_note": saliency.flat_note(info.get("flat", {})),
        **saliency.agreement(maps, info),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "total_seconds": round(time.monotonic() - start, 3),
        "total_cpu_seconds": round(cpu_seconds() - cpu, 3),
    }
    return maps
