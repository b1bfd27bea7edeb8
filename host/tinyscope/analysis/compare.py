"""``tinyscope compare``: device tensors vs the desktop, per layer and per channel.

For a capture (``RUN_DIR/capture.npz`` + ``run.json``) and the build it came from, every
streamed int8 tensor is compared with

* TFLM (the ``tflite-micro`` reference interpreter): the device must equal it bit for bit;
* LiteRT BUILTIN_REF: equal to TFLM except where LiteRT's reference rounds once (see
  docs/pipeline.md);
* LiteRT default (XNNPACK), what users usually run on a desktop: differs by a few LSB where
  its kernels round once instead of twice;
* the float Keras model: quantization drift (dequantized device values vs float values).

The numbers land in one metrics dict; :mod:`tinyscope.report.comparison` draws the figures and
writes ``metrics.json`` and one self-contained ``report.html``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyscope.analysis import drift, floatref, reference
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert.model import load_model
from tinyscope.data import dequantize, quantized_test_inputs
from tinyscope.errors import MismatchError, TinyscopeError

DEFAULT_PANELS = 3
GATE_EXIT_CODE = 5


@dataclass
class Capture:
    """A capture loaded from disk: int8 inputs, streamed tensors and labels, batch axis first."""

    run: dict
    inputs: np.ndarray  # (N, *input shape[1:]) int8
    tensors: dict[int, np.ndarray]  # tensor index -> (N, *shape[1:]) int8
    outputs: np.ndarray | None  # (N, *output shape[1:]) int8
    labels: np.ndarray


def load_capture(run_dir: str | Path) -> Capture:
    run_dir = Path(run_dir)
    run_path, npz_path = run_dir / "run.json", run_dir / "capture.npz"
    for p in (run_path, npz_path):
        if not p.is_file():
            raise TinyscopeError(
                f"{p} not found: RUN_DIR must be a directory written by 'tinyscope capture'"
            )
    run = json.loads(run_path.read_text())
    n = int(run.get("images", 0))
    if n < 1:
        raise TinyscopeError(f"{run_path}: the capture holds no complete image; capture again")
    with np.load(npz_path) as cap:
        names = set(cap.files)

        def batch(prefix: str) -> np.ndarray:
            missing = [f"{prefix}_{i}" for i in range(n) if f"{prefix}_{i}" not in names]
            if missing:
                raise TinyscopeError(
                    f"{npz_path}: run.json says {n} images but {missing[0]} is missing; "
                    "the file is damaged or from another run"
                )
            return np.stack([cap[f"{prefix}_{i}"][0] for i in range(n)])

        indices = sorted({int(k[1:].split("_")[0]) for k in names if k.startswith("t")})
        tensors = {i: batch(f"t{i}") for i in indices}
        outputs = batch("output") if "output_0" in names else None
        return Capture(run, batch("input"), tensors, outputs, np.asarray(cap["labels"])[:n])


def _float_inputs(manifest: dict, cap: Capture) -> tuple[np.ndarray, str]:
    """Float images for the float model: the originals if the capture used the build's test
    split (checked by re-quantizing them), else the dequantized int8 inputs."""
    data = cap.run.get("data") or None
    try:
        x, q, _ = quantized_test_inputs(manifest, len(cap.inputs), data)
        if q.shape == cap.inputs.shape and np.array_equal(q, cap.inputs):
            return x, "original float images"
    except TinyscopeError:
        pass
    inp = manifest["input"]
    return (
        dequantize(cap.inputs, inp["scale"], inp["zero_point"]).astype(np.float32),
        "dequantized int8 inputs (the original images were not found)",
    )


def _ticks_to_instructions(run: dict) -> float | None:
    """Instructions per tick when the board counts instructions (QEMU -icount: the tick note
    reads "1 tick = 40 instructions"), else None."""
    note = str(run.get("timing", {}).get("tick_note", ""))
    m = re.search(r"1 tick\s*=\s*(\d+)\s*instructions", note)
    return float(m.group(1)) if m else None


def compare(run_dir: str | Path, build_dir: str | Path | None = None,
            model_path: str | Path | None = None, progress: bool = True) -> tuple[dict, dict]:
    """All metrics of a capture; returns ``(metrics, arrays)`` (arrays for the figures)."""
    from tqdm.auto import tqdm

    cap = load_capture(run_dir)
    build = Path(build_dir or cap.run.get("build") or "")
    man = manifest_mod.load(build)
    if cap.run.get("model_sha256") != man["model_sha256"]:
        raise MismatchError(
            f"the capture in {run_dir} ran model {cap.run.get('model_sha256')} but "
            f"{build}/manifest.json is model {man['model_sha256']}; pass --build with the "
            "build the device was flashed from"
        )
    tfl = manifest_mod.model_bytes(build, man)
    steps = tqdm(total=4, desc="desktop references", unit="run", disable=not progress)
    tflm = floatref.stack(reference.tflm_tensors(tfl, cap.inputs))
    steps.update(1)
    ref = floatref.stack(reference.litert_tensors(tfl, cap.inputs, resolver="ref"))
    steps.update(1)
    xnn = floatref.stack(reference.litert_tensors(tfl, cap.inputs, resolver="default"))
    steps.update(1)
    src = model_path or man.get("source_model")
    flt: dict[int, np.ndarray] = {}
    float_note = "no float model"
    model = None
    if src and Path(src).is_file():
        model = load_model(src)
        x, float_note = _float_inputs(man, cap)
        flt = floatref.float_tensors(model, tfl, x)
    else:
        x = None
    steps.update(1)
    steps.close()

    ops_by_out = {o["outputs"][0]: o for o in man["operators"]}
    tinfo = {t["index"]: t for t in man["tensors"]}
    timing = cap.run.get("timing", {})
    per_op_ticks = timing.get("per_op_ticks_median") or []
    rows = []
    for idx, dev in cap.tensors.items():
        t, op = tinfo[idx], ops_by_out.get(idx)
        sc, zp = t["scales"][0], t["zero_points"][0]
        entry: dict = {
            "index": idx, "op_index": op["index"] if op else None,
            "op": op["op"] if op else "INPUT",
            "keras_layer": op.get("keras_layer") if op else "input",
            "shape": t["shape"], "scale": sc, "zero_point": zp,
            "device_vs_tflm": drift.compare_tensors(tflm[idx], dev, sc, zp),
            "device_vs_litert_ref": drift.compare_tensors(ref[idx], dev, sc, zp),
            "xnnpack_vs_device": drift.compare_tensors(dev, xnn[idx], sc, zp),
        }
        if idx in flt:
            entry["device_vs_float"] = drift.compare_tensors(flt[idx], dev, sc, zp)
        rows.append(entry)
    rows.sort(key=lambda r: -1 if r["op_index"] is None else r["op_index"])

    out_idx = man["output"]["index"]
    dev_out = cap.outputs if cap.outputs is not None else cap.tensors.get(out_idx)
    classes = man.get("classes") or [str(i) for i in range(tflm[out_idx].shape[-1])]
    dataset: dict = {"n": int(len(cap.inputs))}
    if dev_out is not None:
        dataset["output_equals_tflm"] = bool(np.array_equal(dev_out, tflm[out_idx]))
        dataset["output_lsb_vs_tflm"] = drift.lsb_stats(dev_out, tflm[out_idx])
        dataset["device_accuracy"] = float(np.mean(dev_out.argmax(-1) == cap.labels))
        dataset["xnnpack_vs_device_top1_agreement"] = float(
            np.mean(xnn[out_idx].argmax(-1) == dev_out.argmax(-1)))
        fscores = flt.get(out_idx, flt.get(man.get("logits_tensor", -1)))
        if fscores is not None:
            agree = drift.dataset_agreement(fscores, dev_out, cap.labels, len(classes))
            dataset.update({
                "device_vs_float_top1_agreement": agree["top1_agreement"],
                "n_disagree_with_float": agree["n_disagree"],
                "disagreeing_images": agree["disagreeing_images"],
                "float_accuracy": agree["float_accuracy"],
                "confusion_float_vs_device": agree["confusion_float_vs_int8"],
                "confusion_device": agree["confusion_int8"],
            })

    ipt = _ticks_to_instructions(cap.run)
    timing_rows = []
    for op in man["operators"]:
        i = op["index"]
        ticks = per_op_ticks[i] if i < len(per_op_ticks) else None
        instr = ticks * ipt if (ticks is not None and ipt) else None
        timing_rows.append({
            "op_index": i, "op": op["op"], "keras_layer": op.get("keras_layer"),
            "macs": op.get("macs", 0), "ticks": ticks, "instructions": instr,
            "instructions_per_mac": (instr / op["macs"]) if instr and op.get("macs") else None,
        })

    worst = max((r["device_vs_tflm"]["lsb"]["max_lsb"] for r in rows), default=0)
    mismatches = sum(r["device_vs_tflm"]["lsb"]["n_different"] for r in rows)
    metrics = {
        "run_dir": str(run_dir), "build": str(build), "model_sha256": man["model_sha256"],
        "board": cap.run.get("board"), "cpu_hz": cap.run.get("cpu_hz"),
        "firmware_version": cap.run.get("firmware_version"),
        "n_images": int(len(cap.inputs)), "classes": classes,
        "float_inputs": float_note,
        "device_vs_tflm_max_lsb": int(worst),
        "device_vs_tflm_mismatching_elements": int(mismatches),
        "device_equals_tflm": bool(mismatches == 0),
        "dataset": dataset, "tensors": rows,
        "timing": {"tick_hz": timing.get("tick_hz"), "tick_note": timing.get("tick_note"),
                   "total_ticks_median": timing.get("total_ticks_median"),
                   "instructions_per_tick": ipt, "per_op": timing_rows},
    }
    arrays = {"cap": cap, "tflm": tflm, "ref": ref, "xnnpack": xnn, "float": flt, "x": x,
              "model": model, "manifest": man, "model_bytes": tfl}
    return metrics, arrays


# --------------------------------------------------------------------------- summary


def format_value(v: object, digits: int = 3) -> object:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "∞" if math.isinf(v) else round(v, digits)
    return v


def summary_rows(metrics: dict) -> list[list[object]]:
    """One row per streamed tensor: the numbers a user looks at first."""
    rows = []
    for r in metrics["tensors"]:
        dt = r["device_vs_tflm"]["lsb"]
        xn = r["xnnpack_vs_device"]["lsb"]
        fl = r.get("device_vs_float", {})
        ok = dt["n_different"] == 0
        rows.append([
            r["op_index"] if r["op_index"] is not None else "in", r["op"],
            str(r["keras_layer"]), "x".join(map(str, r["shape"])),
            (f"{dt['n_different']} / {dt['n']}", "ok" if ok else "bad"), dt["max_lsb"],
            f"{xn['n_different']} ({xn['max_lsb']} LSB)",
            format_value(fl.get("rmse_over_scale")), format_value(fl.get("snr_db"), 1),
            format_value(fl.get("cosine"), 4),
        ])
    return rows


SUMMARY_COLUMNS = ["op", "operator", "Keras layer", "shape", "device≠TFLM", "max LSB",
                   "XNNPACK≠device", "float RMSE/scale", "SNR dB", "cosine"]


def print_summary(metrics: dict) -> None:
    d = metrics["dataset"]
    widths = [4, 17, 11, 11, 15, 7, 16, 16, 7, 7]
    head = "".join(f"{c[:w]:<{w + 1}}" for c, w in zip(SUMMARY_COLUMNS, widths, strict=True))
    print(head)
    for row in summary_rows(metrics):
        cells = [c[0] if isinstance(c, tuple) else c for c in row]
        print("".join(f"{str(c)[:w]:<{w + 1}}" for c, w in zip(cells, widths, strict=True)))
    verdict = ("device == TFLM on every streamed tensor (bit-exact)"
               if metrics["device_equals_tflm"] else
               f"device differs from TFLM in {metrics['device_vs_tflm_mismatching_elements']} "
               f"elements (max {metrics['device_vs_tflm_max_lsb']} LSB)")
    print(f"{metrics['n_images']} images: {verdict}")
    if "device_vs_float_top1_agreement" in d:
        print(f"top-1 agreement device vs float: {d['device_vs_float_top1_agreement']:.2%}; "
              f"accuracy device {d['device_accuracy']:.2%}, float {d['float_accuracy']:.2%}")


def check_gates(metrics: dict, max_lsb: int | None, min_top1: float | None) -> list[str]:
    failures = []
    if max_lsb is not None and metrics["device_vs_tflm_max_lsb"] > max_lsb:
        failures.append(f"device differs from TFLM by {metrics['device_vs_tflm_max_lsb']} LSB "
                        f"(--max-lsb {max_lsb})")
    top1 = metrics["dataset"].get("device_vs_float_top1_agreement")
    if min_top1 is not None:
        if top1 is None:
            failures.append("--min-top1 needs the float model and the OUTPUT frames")
        elif top1 < min_top1:
            failures.append(f"top-1 agreement device vs float {top1:.4f} < --min-top1 "
                            f"{min_top1}")
    return failures


def gate_exit_code(metrics: dict, max_lsb: int | None, min_top1: float | None) -> int:
    """Print each failed gate; :data:`GATE_EXIT_CODE` if any failed, else 0."""
    failures = check_gates(metrics, max_lsb, min_top1)
    for f in failures:
        print(f"gate failed: {f}")
    return GATE_EXIT_CODE if failures else 0
