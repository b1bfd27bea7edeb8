"""``tinyscope compare``: device tensors vs the desktop, per layer and per channel.

For a capture (``RUN_DIR/capture.npz`` + ``run.json``) and the build it came from, every
streamed int8 tensor is compared with

* TFLM (the ``tflite-micro`` reference interpreter): the device must equal it bit for bit;
* LiteRT BUILTIN_REF: equal to TFLM except where LiteRT's reference rounds once (see
  docs/pipeline.md);
* LiteRT default (XNNPACK), what users usually run on a desktop: differs by a few LSB where
  its kernels round once instead of twice;
* the float Keras model: quantization drift (dequantized device values vs float values).

It writes ``metrics.json``, PNG figures and one self-contained ``report.html``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyscope.clihelp import HelpFormatter
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
    from tinyscope.convert import quantized_test_inputs
    from tinyscope.data import dequantize

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

    from tinyscope import drift, floatref, reference
    from tinyscope import manifest as manifest_mod
    from tinyscope.model import load_model

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


# --------------------------------------------------------------------------- figures


def _first_layer_figure(metrics: dict, arrays: dict, image: int, out: Path) -> Path:
    from tinyscope import plots
    from tinyscope.data import dequantize

    cap: Capture = arrays["cap"]
    man = arrays["manifest"]
    idx = man["first_layer_output"]
    if idx not in cap.tensors:
        idx = min(cap.tensors, key=lambda k: k)
    t = next(r for r in metrics["tensors"] if r["index"] == idx)
    dev = cap.tensors[idx][image]
    tflm = arrays["tflm"][idx][image]
    rows = {
        "device (int8)": dequantize(dev, t["scale"], t["zero_point"]),
        "desktop TFLM (int8)": dequantize(tflm, t["scale"], t["zero_point"]),
        "float Keras": arrays["float"][idx][image] if idx in arrays["float"] else None,
    }
    diffs = {
        "device - TFLM": dev.astype(np.int32) - tflm,
        "XNNPACK - device": arrays["xnnpack"][idx][image].astype(np.int32) - dev,
    }
    label = metrics["classes"][int(cap.labels[image])]
    fig = plots.comparison_grid(
        rows, diffs, title=f"{t['op']} #{t['op_index']} ({t['keras_layer']}) output, "
        f"image {image} (label {label})")
    return plots.save(fig, out / f"feature_maps_image{image}.png")


def _saliency_figures(metrics: dict, arrays: dict, images: list[int], out: Path) -> list[Path]:
    """Per image: the saliency methods side by side, and a panel input | Grad-CAM | the
    device's first-layer feature maps. Adds the occlusion saliency drift (int8 vs float) to
    ``metrics["saliency"]``."""
    from tinyscope import plots, saliency
    from tinyscope.data import dequantize

    model, x = arrays["model"], arrays["x"]
    if model is None or x is None or not images:
        return []
    cap: Capture = arrays["cap"]
    man = arrays["manifest"]
    imgs = x[images]
    classes = saliency.VanillaGradient(model).predict_classes(imgs)
    maps = saliency.compute_all(model, arrays["model_bytes"], imgs, classes,
                                man.get("logits_tensor"))
    metrics["saliency"] = {
        "images": images, "explained_classes": classes.astype(int).tolist(),
        "occlusion_int8_vs_float": saliency.saliency_drift(maps["occlusion float"],
                                                           maps["occlusion int8"]),
    }
    idx = man["first_layer_output"]
    t = next(tt for tt in man["tensors"] if tt["index"] == idx)
    names = metrics["classes"]
    paths = []
    for k, i in enumerate(images):
        title = (f"image {i}: label {names[int(cap.labels[i])]}, float predicts "
                 f"{names[int(classes[k])]}")
        paths.append(plots.save(
            plots.saliency_methods(imgs[k], {m: v[k] for m, v in maps.items()},
                                   f"{title}: saliency of the pre-softmax score"),
            out / f"saliency_image{i}.png"))
        if idx in cap.tensors:
            fmap = dequantize(cap.tensors[idx][i], t["scales"][0], t["zero_points"][0])
            paths.append(plots.save(
                plots.panel(imgs[k], maps["Grad-CAM"][k], fmap, title,
                            saliency_name="Grad-CAM (float)",
                            units="device conv1 (real value)"),
                out / f"panel_image{i}.png"))
    return paths


def figures(metrics: dict, arrays: dict, out: Path, panels: int = DEFAULT_PANELS) -> list[Path]:
    from tinyscope import plots

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    images = list(range(min(panels, metrics["n_images"])))
    for i in images:
        paths.append(_first_layer_figure(metrics, arrays, i, out))
    paths += _saliency_figures(metrics, arrays, images, out)
    paths.append(plots.save(plots.lsb_histograms(
        metrics, key="xnnpack_vs_device", title="LiteRT default (XNNPACK) - device, per tensor"),
        out / "lsb_xnnpack_vs_device.png"))
    d = metrics["dataset"]
    if "confusion_float_vs_device" in d:
        paths.append(plots.save(plots.confusion_chart(
            d["confusion_float_vs_device"], metrics["classes"],
            f"float vs device top-1: {d['device_vs_float_top1_agreement']:.2%} agree",
            "device prediction", "float prediction"), out / "confusion_float_vs_device.png"))
    return paths


# --------------------------------------------------------------------------- report


def _fmt(v: object, digits: int = 3) -> object:
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
            _fmt(fl.get("rmse_over_scale")), _fmt(fl.get("snr_db"), 1), _fmt(fl.get("cosine"), 4),
        ])
    return rows


SUMMARY_COLUMNS = ["op", "operator", "Keras layer", "shape", "device≠TFLM", "max LSB",
                   "XNNPACK≠device", "float RMSE/scale", "SNR dB", "cosine"]


def render_report(metrics: dict, figs: list[Path], out: Path) -> Path:
    from tinyscope import report

    d = metrics["dataset"]
    t = metrics["timing"]
    ok = metrics["device_equals_tflm"]
    cards = {
        "device vs TFLM": "bit-exact" if ok else
        f"{metrics['device_vs_tflm_mismatching_elements']} differ",
        "images": str(metrics["n_images"]),
        "device accuracy": f"{d['device_accuracy']:.1%}" if "device_accuracy" in d else "–",
        "top-1 vs float": f"{d['device_vs_float_top1_agreement']:.1%}"
        if "device_vs_float_top1_agreement" in d else "–",
        "ticks / inference": f"{t['total_ticks_median']:,}" if t.get("total_ticks_median")
        else "–",
    }
    if t.get("total_ticks_median") and t.get("instructions_per_tick"):
        instr = t["total_ticks_median"] * t["instructions_per_tick"]
        cards["instructions / inference"] = f"{instr / 1e6:.2f} M"
    timing_rows = [[r["op_index"], r["op"], str(r["keras_layer"]), r["macs"], _fmt(r["ticks"]),
                    _fmt(r["instructions"], 0), _fmt(r["instructions_per_mac"], 2)]
                   for r in t["per_op"]]
    by_name = {p.name: p for p in figs}
    fm = [report.Figure(p, "Feature maps: device, desktop TFLM, float (shared colour scale, "
                        "real units), then differences in LSB.")
          for n, p in by_name.items() if n.startswith("feature_maps")]
    sal = [report.Figure(p, "Saliency on the input: gradient (Simonyan et al. 2013), "
                         "SmoothGrad and Grad-CAM on the float model; occlusion on the int8 "
                         "model.") for n, p in by_name.items() if n.startswith("saliency")]
    pan = [report.Figure(p, "Input, saliency and the device's first-layer feature maps.")
           for n, p in by_name.items() if n.startswith("panel")]
    other = [report.Figure(p, p.stem.replace("_", " ")) for n, p in by_name.items()
             if not n.startswith(("feature_maps", "saliency", "panel"))]
    sections = [
        report.Section(
            "Per layer", "device≠TFLM counts elements where the device differs from the TFLM "
            "reference interpreter (must be 0). XNNPACK≠device: LiteRT's default desktop "
            "kernels round once where TFLM rounds twice, so a few values differ by 1 LSB or "
            "more: that is expected and not a device bug. float RMSE/scale near 0.289 is "
            "ideal rounding noise.",
            [report.Table(SUMMARY_COLUMNS, summary_rows(metrics))]),
        report.Section("Feature maps", "", [*pan, *fm]),
        report.Section("Saliency", "", sal),
        report.Section(
            "Timing per operator", f"tick unit: {t.get('tick_note') or t.get('tick_hz')}",
            [report.Table(["op", "operator", "Keras layer", "MACs", "ticks (median)",
                           "instructions", "instr/MAC"], timing_rows)]),
        report.Section("Distributions", "", other),
    ]
    sub = (f"board {metrics['board']} · firmware {metrics['firmware_version']} · model "
           f"{metrics['model_sha256'][:12]} · {metrics['run_dir']}")
    page = report.render("tinyscope: device vs desktop", sub, cards,
                         [s for s in sections if s.items])
    return report.write(out / "report.html", page)


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


def run_compare(run_dir: str | Path, out: str | Path | None = None,
                build_dir: str | Path | None = None, model_path: str | Path | None = None,
                panels: int = DEFAULT_PANELS, progress: bool = True) -> tuple[dict, Path]:
    """Compare, draw, write metrics.json and report.html; returns (metrics, report path)."""
    from tinyscope.drift import write_metrics

    out = Path(out or Path(run_dir) / "report")
    metrics, arrays = compare(run_dir, build_dir, model_path, progress)
    figs = figures(metrics, arrays, out, panels)
    metrics["figures"] = [p.name for p in figs]
    out.mkdir(parents=True, exist_ok=True)
    write_metrics(out / "metrics.json", metrics)
    return metrics, render_report(metrics, figs, out)


def _cmd_compare(args: argparse.Namespace) -> int:
    metrics, page = run_compare(args.run_dir, args.out, args.build, args.model, args.panels,
                                progress=not args.no_progress)
    print_summary(metrics)
    print(f"report: {page}")
    return gate_exit_code(metrics, args.max_lsb, args.min_top1)


def add_cli(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare a capture with TFLM, LiteRT and the float model; HTML report",
        description="Dequantize the device's tensors in RUN_DIR and compare them per layer and "
        "per channel with TFLM (expect 0 LSB), LiteRT BUILTIN_REF, LiteRT default (XNNPACK: "
        "a few 1-LSB rounding differences are expected) and the float Keras model. Writes "
        "metrics.json, PNG figures and a self-contained report.html. With --max-lsb or "
        f"--min-top1 it exits {GATE_EXIT_CODE} when a gate fails (for CI).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("run_dir", help="a directory written by 'tinyscope capture'")
    p.add_argument("--out", help="output directory (default: RUN_DIR/report)")
    p.add_argument("--build", help="the build dir (default: the one recorded in run.json)")
    p.add_argument("--model", help="float .keras model (default: the one in manifest.json)")
    p.add_argument("--panels", type=int, default=DEFAULT_PANELS,
                   help="images to draw feature-map and saliency panels for")
    p.add_argument("--max-lsb", type=int, help="fail if device vs TFLM differs by more LSB")
    p.add_argument("--min-top1", type=float,
                   help="fail if top-1 agreement device vs float is below this (0..1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compare)
