"""The report of ``tinyscope compare``: figures, ``metrics.json`` and ``report.html``.

:func:`run_compare` computes every metric (:func:`tinyscope.analysis.compare.compare`), draws
the figures, writes ``metrics.json`` and the self-contained ``report.html``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyscope.analysis import saliency
from tinyscope.analysis.compare import (
    DEFAULT_PANELS,
    SUMMARY_COLUMNS,
    Capture,
    compare,
    format_value,
    summary_rows,
)
from tinyscope.analysis.drift import write_metrics
from tinyscope.data import dequantize
from tinyscope.report import figures as figures_mod
from tinyscope.report import html


def _first_layer_figure(metrics: dict, arrays: dict, image: int, out: Path) -> Path:
    cap: Capture = arrays["cap"]
    man = arrays["manifest"]
    idx = man["first_layer_output"]
    if idx not in cap.tensors:
        idx = min(cap.tensors, key=lambda k: k)
    t = next(r for r in metrics["tensors"] if r["index"] == idx)
    dev = cap.tensors[idx][image]
    # a reference that did not run (metrics["references"] says why) leaves its panels empty
    tflm = arrays["tflm"][idx][image] if idx in arrays["tflm"] else None
    xnn = arrays["xnnpack"][idx][image] if idx in arrays["xnnpack"] else None
    rows = {
        "device (int8)": dequantize(dev, t["scale"], t["zero_point"]),
        "desktop TFLM (int8)": (dequantize(tflm, t["scale"], t["zero_point"])
                                if tflm is not None else None),
        "float Keras": arrays["float"][idx][image] if idx in arrays["float"] else None,
    }
    diffs = {}
    if tflm is not None:
        diffs["device - TFLM"] = dev.astype(np.int32) - tflm
    if xnn is not None:
        diffs["XNNPACK - device"] = xnn.astype(np.int32) - dev
    label = metrics["classes"][int(cap.labels[image])]
    fig = figures_mod.comparison_grid(
        rows, diffs, title=f"{t['op']} #{t['op_index']} ({t['keras_layer']}) output, "
        f"image {image} (label {label})")
    return figures_mod.save(fig, out / f"feature_maps_image{image}.png")


def _saliency_figures(metrics: dict, arrays: dict, images: list[int], out: Path) -> list[Path]:
    """Per image: the saliency methods side by side, and a panel input | Grad-CAM | the
    device's first-layer feature maps. Adds the occlusion saliency drift (int8 vs float) to
    ``metrics["saliency"]``."""
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
        paths.append(figures_mod.save(
            figures_mod.saliency_methods(imgs[k], {m: v[k] for m, v in maps.items()},
                                   f"{title}: saliency of the pre-softmax score"),
            out / f"saliency_image{i}.png"))
        if idx in cap.tensors:
            fmap = dequantize(cap.tensors[idx][i], t["scales"][0], t["zero_points"][0])
            paths.append(figures_mod.save(
                figures_mod.panel(imgs[k], maps["Grad-CAM"][k], fmap, title,
                            saliency_name="Grad-CAM (float)",
                            units="device conv1 (real value)"),
                out / f"panel_image{i}.png"))
    return paths


def figures(metrics: dict, arrays: dict, out: Path, panels: int = DEFAULT_PANELS) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    images = list(range(min(panels, metrics["n_images"])))
    for i in images:
        paths.append(_first_layer_figure(metrics, arrays, i, out))
    paths += _saliency_figures(metrics, arrays, images, out)
    if any("xnnpack_vs_device" in t for t in metrics["tensors"]):
        paths.append(figures_mod.save(figures_mod.lsb_histograms(
            metrics, key="xnnpack_vs_device",
            title="LiteRT default (XNNPACK) - device, per tensor"),
            out / "lsb_xnnpack_vs_device.png"))
    d = metrics["dataset"]
    if "confusion_float_vs_device" in d:
        paths.append(figures_mod.save(figures_mod.confusion_chart(
            d["confusion_float_vs_device"], metrics["classes"],
            f"float vs device top-1: {d['device_vs_float_top1_agreement']:.2%} agree",
            "device prediction", "float prediction"), out / "confusion_float_vs_device.png"))
    return paths


def render_report(metrics: dict, figs: list[Path], out: Path) -> Path:
    d = metrics["dataset"]
    t = metrics["timing"]
    ok = metrics["device_equals_tflm"]
    missing = {k: r for k, r in metrics.get("references", {}).items() if not r["available"]}
    cards = {
        "device vs TFLM": "bit-exact" if ok else "TFLM missing" if ok is None else
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
    timing_rows = [[r["op_index"], r["op"], str(r["keras_layer"]), r["macs"],
                    format_value(r["ticks"]), format_value(r["instructions"], 0),
                    format_value(r["instructions_per_mac"], 2)]
                   for r in t["per_op"]]
    by_name = {p.name: p for p in figs}
    fm = [html.Figure(p, "Feature maps: device, desktop TFLM, float (shared colour scale, "
                        "real units), then differences in LSB.")
          for n, p in by_name.items() if n.startswith("feature_maps")]
    sal = [html.Figure(p, "Saliency on the input: gradient (Simonyan et al. 2013), "
                         "SmoothGrad and Grad-CAM on the float model; occlusion on the int8 "
                         "model.") for n, p in by_name.items() if n.startswith("saliency")]
    pan = [html.Figure(p, "Input, saliency and the device's first-layer feature maps.")
           for n, p in by_name.items() if n.startswith("panel")]
    other = [html.Figure(p, p.stem.replace("_", " ")) for n, p in by_name.items()
             if not n.startswith(("feature_maps", "saliency", "panel"))]
    sections = [
        html.Section(
            "Missing references", "These desktop references could not run; their columns "
            "and panels are left out. " + " ".join(r["missing"] for r in missing.values()),
            [html.Table(["reference", "why"], [[r["label"], r["missing"]]
                                               for r in missing.values()])] if missing else []),
        html.Section(
            "Per layer", "device≠TFLM counts elements where the device differs from the TFLM "
            "reference interpreter (must be 0). XNNPACK≠device: LiteRT's default desktop "
            "kernels round once where TFLM rounds twice, so a few values differ by 1 LSB or "
            "more: that is expected and not a device bug. float RMSE/scale near 0.289 is "
            "ideal rounding noise.",
            [html.Table(SUMMARY_COLUMNS, summary_rows(metrics))]),
        html.Section("Feature maps", "", [*pan, *fm]),
        html.Section("Saliency", "", sal),
        html.Section(
            "Timing per operator", f"tick unit: {t.get('tick_note') or t.get('tick_hz')}",
            [html.Table(["op", "operator", "Keras layer", "MACs", "ticks (median)",
                           "instructions", "instr/MAC"], timing_rows)]),
        html.Section("Distributions", "", other),
    ]
    sub = (f"board {metrics['board']} · firmware {metrics['firmware_version']} · model "
           f"{metrics['model_sha256'][:12]} · {metrics['run_dir']}")
    page = html.render("tinyscope: device vs desktop", sub, cards,
                         [s for s in sections if s.items])
    return html.write(out / "report.html", page)


def run_compare(run_dir: str | Path, out: str | Path | None = None,
                build_dir: str | Path | None = None, model_path: str | Path | None = None,
                panels: int = DEFAULT_PANELS, progress: bool = True) -> tuple[dict, Path]:
    """Compare, draw, write metrics.json and report.html; returns (metrics, report path)."""
    out = Path(out or Path(run_dir) / "report")
    metrics, arrays = compare(run_dir, build_dir, model_path, progress)
    figs = figures(metrics, arrays, out, panels)
    metrics["figures"] = [p.name for p in figs]
    out.mkdir(parents=True, exist_ok=True)
    write_metrics(out / "metrics.json", metrics)
    return metrics, render_report(metrics, figs, out)

