"""The report of ``tinyscope compare``: figures, ``metrics.json`` and ``report.html``.

:func:`run_compare` first computes every number (:func:`tinyscope.analysis.compare.compare`,
then :mod:`tinyscope.analysis.findings`: layer-local drift, the worst layers, per-class
accuracy, saliency and its int8-vs-float agreement), writes them to ``metrics.json``, and only
then draws: PNG figures (also written next to the report, for scripts), the layer viewer's
data and the page laid out by :func:`tinyscope.report.sections.comparison_page`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tinyscope.analysis import findings
from tinyscope.analysis.compare import DEFAULT_PANELS, Capture, compare
from tinyscope.analysis.drift import write_metrics
from tinyscope.data import dequantize
from tinyscope.report import figures as figures_mod
from tinyscope.report import page as page_mod
from tinyscope.report import viewer
from tinyscope.report.page import Figure
from tinyscope.report.sections import comparison_page, layer_label

FIRST_LAYER_CHANNELS = 16  # channels in the static first-layer figures


def _predictions(metrics: dict, arrays: dict, images: list[int]) -> list[dict]:
    """Label, float and device prediction of each panel image, as class names."""
    cap: Capture = arrays["cap"]
    man, names = arrays["manifest"], metrics["classes"]
    out_idx = man["output"]["index"]
    dev = cap.outputs if cap.outputs is not None else cap.tensors.get(out_idx)
    flt = (arrays.get("float") or {}).get(out_idx)
    if int(np.prod(man["output"]["shape"])) == int(np.prod(man["input"]["shape"])) > 1:
        dev = flt = None  # an autoencoder: its output is a reconstruction, not a class
    return [{
        "index": i, "label": names[int(cap.labels[i])] if int(cap.labels[i]) >= 0 else None,
        "float_prediction": names[int(flt[i].argmax())] if flt is not None else None,
        "device_prediction": names[int(dev[i].argmax())] if dev is not None else None,
    } for i in images]


def _title(p: dict) -> str:
    if p["float_prediction"] is None and p["device_prediction"] is None:
        return f"image {p['index']}" + (f": label {p['label']}" if p["label"] else "")
    return (f"image {p['index']}: label {p['label'] or '–'} · float predicts "
            f"{p['float_prediction'] or '–'} · device predicts {p['device_prediction'] or '–'}")


def _forms(arrays: dict, t: dict | None) -> tuple[str, str]:
    """How the input and tensor ``t`` are drawn (:func:`figures_mod.input_form`)."""
    kind = figures_mod.input_form(arrays["manifest"]["input"]["shape"][1:])
    return kind, (figures_mod.tensor_form(t["shape"][1:], kind) if t else kind)


def _channels(a: np.ndarray, form: str) -> np.ndarray:
    """The first channels of a map for the static figures (all values of a vector/matrix)."""
    return a[..., :FIRST_LAYER_CHANNELS] if form in (figures_mod.IMAGE, figures_mod.FEATURES) \
        else a


def _first_layer(metrics: dict, arrays: dict, preds: list[dict], out: Path) -> list[Figure]:
    cap: Capture = arrays["cap"]
    idx = arrays["manifest"]["first_layer_output"]
    if idx not in cap.tensors:
        idx = min(cap.tensors)
    t = next(r for r in metrics["tensors"] if r["index"] == idx)
    _, form = _forms(arrays, t)
    image_like = form in (figures_mod.IMAGE, figures_mod.FEATURES)
    shown = min(FIRST_LAYER_CHANNELS, t["shape"][-1]) if image_like else t["shape"][-1]
    more = (f" (channels 0–{shown - 1} of {t['shape'][-1]}; the viewer above shows all)"
            if shown < t["shape"][-1] else "")
    how = {figures_mod.IMAGE: "channels", figures_mod.FEATURES: "channels (each a time × "
           "feature heat map)", figures_mod.MATRIX: "values (a time × channel heat map)",
           figures_mod.VECTOR: "values (a line per source)"}[form]
    figs = []
    for p in preds:
        i = p["index"]
        dev = _channels(cap.tensors[idx][i], form)
        # a reference that did not run (metrics["references"] says why) leaves its rows out
        tflm = _channels(arrays["tflm"][idx][i], form) if idx in arrays["tflm"] else None
        xnn = _channels(arrays["xnnpack"][idx][i], form) if idx in arrays["xnnpack"] else None
        rows = {
            "device (int8)": dequantize(dev, t["scale"], t["zero_point"]),
            "desktop TFLM (int8)": (dequantize(tflm, t["scale"], t["zero_point"])
                                    if tflm is not None else None),
            "float model": _channels(arrays["float"][idx][i], form)
            if idx in arrays["float"] else None,
        }
        diffs = {}
        if tflm is not None:
            diffs["device − TFLM"] = dev.astype(np.int32) - tflm
        if xnn is not None:
            diffs["XNNPACK − device"] = xnn.astype(np.int32) - dev
        fig = figures_mod.comparison_grid(
            rows, diffs, title=f"{layer_label(t)} output, {_title(p)}",
            units=f"{t['keras_layer'] or t['op']} output (real value)", form=form)
        figs.append(Figure(figures_mod.save(fig, out / f"first_layer_image{i}.png"),
                           f"The first layer's {how} for image {i}: the device, the desktop "
                           "TFLM interpreter and the float model on one scale (real "
                           f"values), then the differences in LSB{more}."))
    return figs


SALIENCY_CAPTION = {
    "vanilla gradient": "gradient and SmoothGrad: sensitivity to each input value",
    "Grad-CAM": "Grad-CAM: where the last convolution block looks",
    "occlusion float": "occlusion: how much the score drops when a window of the input is "
    "covered, on the float and on the int8 model",
    "occlusion int8": "occlusion on the int8 model: how much its score drops when a window "
    "of the input is covered",
}


def _saliency(metrics: dict, arrays: dict, preds: list[dict], maps: dict,
              out: Path) -> tuple[list[Figure], list[Figure]]:
    """(methods figures, panels): every method per image; input | saliency | first layer."""
    if not maps:
        return [], []
    cap: Capture = arrays["cap"]
    x = findings.inputs(arrays)
    idx = arrays["manifest"]["first_layer_output"]
    t = next((r for r in metrics["tensors"] if r["index"] == idx), None)
    kind, form = _forms(arrays, t)
    sal = metrics.get("saliency") or {}
    what = ("the reconstruction error" if sal.get("target") == "reconstruction"
            else "the score of the predicted class")
    who = "float" if "occlusion float" in maps else "int8"
    caption = (f"Brighter = the {who} model's {what} depends more on these input values. "
               + "; ".join(v for k, v in SALIENCY_CAPTION.items()
                           if k in maps and not (k == "occlusion int8" and "occlusion float"
                                                 in maps)) + ".")
    shown = next(k for k in ("Grad-CAM", "vanilla gradient", "occlusion int8", *maps)
                 if k in maps)
    flat = sal.get("flat") or {}

    def name(method: str, k: int) -> str:
        is_flat = (flat.get(method) or [False] * (k + 1))[k]
        return f"{method} — flat: the score never changed" if is_flat else method

    methods, panels = [], []
    for k, p in enumerate(preds):
        i = p["index"]
        fig = figures_mod.saliency_methods(x[i], {name(m, k): v[k] for m, v in maps.items()},
                                           f"{_title(p)}: what the score depends on",
                                           form=kind)
        methods.append(Figure(figures_mod.save(fig, out / f"saliency_image{i}.png"), caption))
        if t is not None:
            fmap = dequantize(_channels(cap.tensors[idx][i], form), t["scale"],
                              t["zero_point"])
            model = "float model" if shown != "occlusion int8" else "device's int8 model"
            fig = figures_mod.panel(x[i], maps[shown][k], fmap, _title(p),
                                    saliency_name=f"{name(shown, k)} ({model})",
                                    units=f"device {t['keras_layer'] or t['op']} output "
                                    "(real value)", input_kind=kind, map_form=form)
            panels.append(Figure(figures_mod.save(fig, out / f"panel_image{i}.png"),
                                 f"Image {i}: what the {model}'s score depends on ({shown}) "
                                 f"and what the device's first layer, {layer_label(t)}, "
                                 "computed."))
    return methods, panels


def _accuracy(metrics: dict, out: Path) -> list[Figure]:
    d, names = metrics["dataset"], metrics["classes"]
    figs = []
    if "confusion_device" in d:
        fig = figures_mod.confusion_chart(d["confusion_device"], names,
                                          f"device accuracy {d['device_accuracy']:.1%}",
                                          "device prediction", "true class")
        figs.append(Figure(figures_mod.save(fig, out / "confusion_true_vs_device.png"),
                           "True class against the device's prediction: off-diagonal cells "
                           "are the device's mistakes."))
    if "confusion_float_vs_device" in d:
        fig = figures_mod.confusion_chart(
            d["confusion_float_vs_device"], names,
            f"device and float agree on {d['device_vs_float_top1_agreement']:.1%}",
            "device prediction", "float prediction")
        figs.append(Figure(figures_mod.save(fig, out / "confusion_float_vs_device.png"),
                           "The float model's prediction against the device's: "
                           "off-diagonal cells are images quantization changed."))
    return figs


def figures(metrics: dict, arrays: dict, out: Path, images: list[int],
            maps: dict[str, np.ndarray]) -> dict[str, list[Figure]]:
    """Every figure, by the section it belongs to; PNGs are written to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    preds = _predictions(metrics, arrays, images)
    methods, panels = _saliency(metrics, arrays, preds, maps, out)
    dist = []
    if any("xnnpack_vs_device" in t for t in metrics["tensors"]):
        hist = figures_mod.lsb_histograms(metrics, key="xnnpack_vs_device",
                                          title="LiteRT default (XNNPACK) − device, per layer")
        dist.append(Figure(figures_mod.save(hist, out / "lsb_xnnpack_vs_device.png"),
                           "How many values XNNPACK computes differently from the device, by "
                           "the size of the difference (log scale)."))
    return {
        "first_layer": _first_layer(metrics, arrays, preds, out),
        "panels": panels, "saliency": methods, "accuracy": _accuracy(metrics, out),
        "distributions": dist,
    }


def viewer_data(metrics: dict, arrays: dict, images: list[int]) -> dict:
    """The layer viewer's data: every captured tensor of the panel images."""
    cap: Capture = arrays["cap"]
    man = arrays["manifest"]
    layers = viewer.layers_from(man, cap.tensors, {
        "tflm": arrays["tflm"], "xnnpack": arrays["xnnpack"], "float": arrays["float"]})
    d = metrics.get("drift") or {}
    target = (d.get("target") or {}) if d.get("finding") in ("layer", "accumulation") else {}
    return viewer.payload(layers, _predictions(metrics, arrays, images), images,
                          viewer.input_layer(man, cap.inputs),
                          selected=man["first_layer_output"]
                          if man["first_layer_output"] in cap.tensors else None,
                          marked=target.get("index"))


def run_compare(run_dir: str | Path, out: str | Path | None = None,
                build_dir: str | Path | None = None, model_path: str | Path | None = None,
                panels: int = DEFAULT_PANELS, progress: bool = True,
                seconds: dict[str, float] | None = None) -> tuple[dict, Path]:
    """Compare, draw, write metrics.json and report.html; returns (metrics, report path).
    ``seconds`` (if given) receives the time of ``references`` and ``report``."""
    seconds = {} if seconds is None else seconds
    start = time.monotonic()
    out = Path(out or Path(run_dir) / "report")
    metrics, arrays = compare(run_dir, build_dir, model_path, progress)
    findings.add_drift_and_accuracy(metrics, arrays)
    seconds["references"] = time.monotonic() - start
    start = time.monotonic()
    images = findings.panel_images(metrics, panels)
    maps = findings.add_saliency(metrics, arrays, images)
    figs = figures(metrics, arrays, out, images, maps)
    metrics["figures"] = [Path(f.png).name for group in figs.values() for f in group]
    out.mkdir(parents=True, exist_ok=True)
    write_metrics(out / "metrics.json", metrics)
    page = comparison_page(metrics, figs, viewer_data(metrics, arrays, images))
    path = page_mod.write(out / "report.html", page)
    seconds["report"] = time.monotonic() - start
    return metrics, path
