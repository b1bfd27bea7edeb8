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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyscope.analysis import drift, references, verify
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
    with np.load(npz_path) as npz:
        names = set(npz.files)

        def batch(prefix: str) -> np.ndarray:
            missing = [f"{prefix}_{i}" for i in range(n) if f"{prefix}_{i}" not in names]
            if missing:
                raise TinyscopeError(
                    f"{npz_path}: run.json says {n} images but {missing[0]} is missing; "
                    "the file is damaged or from another run"
                )
            return np.stack([npz[f"{prefix}_{i}"][0] for i in range(n)])

        indices = sorted({int(k[1:].split("_")[0]) for k in names if k.startswith("t")})
        tensors = {i: batch(f"t{i}") for i in indices}
        outputs = batch("output") if "output_0" in names else None
        return Capture(run, batch("input"), tensors, outputs, np.asarray(npz["labels"])[:n])


def _float_inputs(manifest: dict, capture: Capture) -> tuple[np.ndarray, str]:
    """Float images for the float model: the originals if the capture used the build's test
    split (checked by re-quantizing them), else the dequantized int8 inputs."""
    if capture.inputs.dtype == np.float32:  # a float32 model input: the device's inputs
        return capture.inputs, "the float32 inputs sent to the device"
    data = capture.run.get("data") or None
    try:
        x, q, _ = quantized_test_inputs(manifest, len(capture.inputs), data)
        if q.shape == capture.inputs.shape and np.array_equal(q, capture.inputs):
            return x, "original float images"
    except TinyscopeError:
        pass
    inp = manifest["input"]
    return (
        dequantize(capture.inputs, inp["scale"], inp["zero_point"]).astype(np.float32),
        "dequantized int8 inputs (the original images were not found)",
    )


def _ticks_to_instructions(run: dict) -> float | None:
    """Instructions per tick when the board's ticks count instructions (INFO tick_unit, saved
    in run.json's timing), else None."""
    per_tick = run.get("timing", {}).get("instructions_per_tick")
    return float(per_tick) if per_tick else None


def capture_references(run_dir: str | Path, capture: Capture, manifest: dict, tflite_bytes: bytes,
                       model_path: str | Path | None = None, progress: bool = True):
    """The desktop references of a capture, computed once (out of process) and cached in
    ``RUN_DIR/references/``; ``(references, float inputs or None, float note, model or
    None)``. The float Keras model is loaded here (for saliency) while the workers run."""
    from tqdm.auto import tqdm

    src = model_path or manifest_mod.float_model_path(manifest)
    keras_path = src if src and Path(src).is_file() else None
    x, float_note = _float_inputs(manifest, capture) if keras_path else (None, "no float model")
    kinds = (*references.INT8_REFERENCES, *(("float",) if keras_path else ()))
    bar = tqdm(total=len(kinds), desc="desktop references", unit="run", disable=not progress)
    job = references.start(tflite_bytes, capture.inputs, x, keras_path, kinds=kinds,
                           cache_dir=run_dir, on_done=lambda kind: bar.update(1))
    model = load_model(keras_path) if keras_path else None
    refs = job.wait()
    bar.close()
    return refs, x, float_note, model


def exact_comparison(a: np.ndarray, b: np.ndarray) -> dict:
    """Two float32 tensors (a float-I/O model's edges) compared bit for bit: no LSB, no
    drift metrics. ``exact``: elements, elements whose bits differ, largest |a - b|."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"tensor shapes differ: {a.shape} vs {b.shape}")
    differ = a.reshape(-1).view(np.uint32) != b.astype(a.dtype).reshape(-1).view(np.uint32)
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"kind": f"{a.dtype.name}-{b.dtype.name}",
            "exact": {"n": int(a.size), "n_different": int(differ.sum()),
                      "max_abs_diff": float(np.nanmax(diff)) if diff.size else 0.0}}


def comparison_counts(cmp: dict) -> dict:
    """The ``lsb`` (int8) or ``exact`` (float32) counts of a comparison: ``n``,
    ``n_different``."""
    return cmp.get("lsb") or cmp["exact"]


def _tensor_rows(capture: Capture, manifest: dict, refs) -> list[dict]:
    """Per streamed tensor: the device against every reference that ran."""
    ops_by_out = {o["outputs"][0]: o for o in manifest["operators"]}
    tinfo = {t["index"]: t for t in manifest["tensors"]}
    pairs = [("device_vs_tflm", "tflm", False), ("device_vs_litert_ref", "litert_ref", False),
             ("xnnpack_vs_device", "xnnpack", True), ("device_vs_float", "float", False)]
    rows = []
    for idx, dev in capture.tensors.items():
        t, op = tinfo[idx], ops_by_out.get(idx)
        quantized = dev.dtype == np.int8
        sc, zp = (t["scales"][0], t["zero_points"][0]) if quantized else (None, None)
        entry: dict = {
            "index": idx, "op_index": op["index"] if op else None,
            "op": op["op"] if op else "INPUT",
            "keras_layer": manifest_mod.op_label(op),
            "shape": t["shape"], "scale": sc, "zero_point": zp, "dtype": dev.dtype.name,
        }
        for key, kind, device_first in pairs:
            ref_tensor = (refs.get(kind) or {}).get(idx)
            if ref_tensor is not None:
                a, b = (dev, ref_tensor) if device_first else (ref_tensor, dev)
                # float32 edges: bit for bit against the int8 references; against the
                # float model, error metrics in real units (no LSB)
                entry[key] = (drift.compare_tensors(a, b, sc, zp)
                              if quantized or kind == "float" else exact_comparison(a, b))
        if capture.run.get("verify"):
            entry["verified"] = verify.verified_row(capture.run, idx)
        rows.append(entry)
    rows.sort(key=lambda r: -1 if r["op_index"] is None else r["op_index"])
    return rows


def _dataset(capture: Capture, manifest: dict, refs, classes: list[str]) -> dict:
    out_idx = manifest["output"]["index"]
    dev_out = capture.outputs if capture.outputs is not None else capture.tensors.get(out_idx)
    tflm, xnnpack, float_ref = refs.get("tflm"), refs.get("xnnpack"), refs.get("float") or {}
    dataset: dict = {"n": int(len(capture.inputs))}
    if dev_out is None:
        return dataset
    if tflm is not None and dev_out.dtype != np.int8:  # float32 output: bit for bit
        dataset["output_equals_tflm"] = dev_out.tobytes() == tflm[out_idx].tobytes()
        dataset["output_exact_vs_tflm"] = exact_comparison(dev_out, tflm[out_idx])["exact"]
    elif tflm is not None:
        dataset["output_equals_tflm"] = bool(np.array_equal(dev_out, tflm[out_idx]))
        dataset["output_lsb_vs_tflm"] = drift.lsb_stats(dev_out, tflm[out_idx])
    labelled = bool(len(capture.labels)) and bool(np.all(np.asarray(capture.labels) >= 0))
    if labelled:  # inputs without labels (-1: a .npy without y) have no accuracy
        dataset["device_accuracy"] = float(np.mean(dev_out.argmax(-1) == capture.labels))
    if xnnpack is not None:
        dataset["xnnpack_vs_device_top1_agreement"] = float(
            np.mean(xnnpack[out_idx].argmax(-1) == dev_out.argmax(-1)))
    fscores = float_ref.get(out_idx, float_ref.get(manifest.get("logits_tensor", -1)))
    if fscores is not None:
        agree = drift.dataset_agreement(fscores, dev_out,
                                        capture.labels if labelled else None, len(classes))
        dataset.update({
            "device_vs_float_top1_agreement": agree["top1_agreement"],
            "n_disagree_with_float": agree["n_disagree"],
            "disagreeing_images": agree["disagreeing_images"],
            "confusion_float_vs_device": agree["confusion_float_vs_int8"],
            **({"float_accuracy": agree["float_accuracy"],
                "confusion_device": agree["confusion_int8"]} if labelled else {}),
        })
    return dataset


def _timing(capture: Capture, manifest: dict) -> dict:
    timing = capture.run.get("timing", {})
    per_op_ticks = timing.get("per_op_ticks_median") or []
    instr_per_tick = _ticks_to_instructions(capture.run)
    rows = []
    for op in manifest["operators"]:
        i = op["index"]
        ticks = per_op_ticks[i] if i < len(per_op_ticks) else None
        instr = ticks * instr_per_tick if (ticks is not None and instr_per_tick) else None
        rows.append({
            "op_index": i, "op": op["op"], "keras_layer": manifest_mod.op_label(op),
            "macs": op.get("macs", 0), "ticks": ticks, "instructions": instr,
            "instructions_per_mac": (instr / op["macs"]) if instr and op.get("macs") else None,
        })
    return {"tick_hz": timing.get("tick_hz"), "tick_note": timing.get("tick_note"),
            "total_ticks_median": timing.get("total_ticks_median"),
            "instructions_per_tick": instr_per_tick, "per_op": rows}


def references_status(refs) -> dict:
    """Each reference: its label, whether it ran, and why not."""
    return {kind: {"label": label, "available": kind in refs.tensors,
                   **({"missing": refs.missing[kind]} if kind in refs.missing else {})}
            for kind, label in references.LABELS.items()
            if kind in refs.tensors or kind in refs.missing}


def compare(run_dir: str | Path, build_dir: str | Path | None = None,
            model_path: str | Path | None = None, progress: bool = True) -> tuple[dict, dict]:
    """All metrics of a capture; returns ``(metrics, figure_data)`` (what the figures draw). A
    reference that cannot run leaves its comparisons out; ``metrics["references"]`` says
    why."""
    capture = load_capture(run_dir)
    build = Path(build_dir or capture.run.get("build") or "")
    manifest = manifest_mod.load(build)
    if capture.run.get("model_sha256") != manifest["model_sha256"]:
        raise MismatchError(
            f"the capture in {run_dir} ran model {capture.run.get('model_sha256')} but "
            f"{build}/manifest.json is model {manifest['model_sha256']}; pass --build with the "
            "build the device was flashed from"
        )
    tflite_bytes = manifest_mod.model_bytes(build, manifest)
    refs, x, float_note, model = capture_references(run_dir, capture, manifest, tflite_bytes,
                                                    model_path, progress)
    if capture.run.get("verify") and refs.get("tflm"):  # digests proved the rest equal TFLM's
        capture.tensors = verify.verified_tensors(run_dir, capture.run, refs.get("tflm"))
    classes = manifest.get("classes") or [
        str(i) for i in range(int(np.prod(manifest["output"]["shape"][1:])))]
    rows = _tensor_rows(capture, manifest, refs)
    have_tflm = "tflm" in refs.tensors
    worst = max((r["device_vs_tflm"]["lsb"]["max_lsb"] for r in rows
                 if "lsb" in r.get("device_vs_tflm", {})), default=0)
    mismatches = sum(comparison_counts(r["device_vs_tflm"])["n_different"] for r in rows
                     if "device_vs_tflm" in r)
    metrics = {
        "run_dir": str(run_dir), "build": str(build), "model_sha256": manifest["model_sha256"],
        "board": capture.run.get("board"), "cpu_hz": capture.run.get("cpu_hz"),
        "firmware_version": capture.run.get("firmware_version"),
        "n_images": int(len(capture.inputs)), "classes": classes,
        "float_inputs": float_note,
        "references": references_status(refs),
        "device_vs_tflm_max_lsb": int(worst) if have_tflm else None,
        "device_vs_tflm_mismatching_elements": int(mismatches) if have_tflm else None,
        "device_equals_tflm": bool(mismatches == 0) if have_tflm else None,
        "dataset": _dataset(capture, manifest, refs, classes), "tensors": rows,
        "timing": _timing(capture, manifest),
    }
    if capture.run.get("verify") and refs.get("tflm"):
        metrics["verify"] = verify.summary(capture.run, capture.tensors, refs.get("tflm"), manifest)
    figure_data = {
        "cap": capture, "tflm": refs.get("tflm") or {}, "ref": refs.get("litert_ref") or {},
        "xnnpack": refs.get("xnnpack") or {}, "float": refs.get("float") or {}, "x": x,
        "model": model, "manifest": manifest, "model_bytes": tflite_bytes}
    return metrics, figure_data


# --------------------------------------------------------------------------- summary


def check_gates(metrics: dict, max_lsb: int | None, min_top1: float | None) -> list[str]:
    failures = []
    if max_lsb is not None and metrics["device_vs_tflm_max_lsb"] is None:
        failures.append("--max-lsb needs the TFLM reference, which did not run")
    elif max_lsb is not None and metrics["device_vs_tflm_max_lsb"] > max_lsb:
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
