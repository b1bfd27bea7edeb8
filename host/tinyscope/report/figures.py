"""Figures: feature-map grids, int8-vs-float comparison and LSB difference grids, saliency
overlays, per-image panels and drift charts.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (so no global
state and always the headless Agg canvas); :func:`save` writes it as PNG. Maps are given as
``(H, W, C)`` arrays; a grid shares one colour scale across all its maps and shows it in one
colour bar, so brightness means the same thing in every tile.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator

VALUE_CMAP = "viridis"
DIFF_CMAP = "RdBu_r"
SALIENCY_CMAP = "inferno"
DPI = 110


def near_square(n: int) -> tuple[int, int]:
    """Rows, columns for ``n`` tiles: 8 -> (2, 4), 16 -> (4, 4), 10 -> (3, 4)."""
    if n < 1:
        raise ValueError("need at least one map")
    for rows in range(math.isqrt(n), 0, -1):  # an exact fill if it is not too elongated
        if n % rows == 0 and n // rows <= 2 * rows:
            return rows, n // rows
    rows = max(1, math.isqrt(n))
    return rows, math.ceil(n / rows)


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A figure on the Agg canvas. Grids of many tiles pass ``layout=None`` and place their
    axes themselves: constrained layout measures every tile's bounding box on each draw,
    several seconds for a 5 x 16 grid."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a 256-colour PNG (creating the directory); returns the path. A
    palette without dithering keeps every colour bar and heat map readable at about a third
    of the size of a full-colour PNG, which keeps the self-contained report small."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    with Image.open(buf) as img:
        img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                    dither=Image.Dither.NONE).save(path, optimize=True)
    return path


def _as_maps(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps)
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.ndim == 2:
        maps = maps[..., None]
    if maps.ndim != 3:
        raise ValueError(f"feature maps must be (H, W, C), got shape {maps.shape}")
    return maps


def _clean(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def lsb_ticks(limit: int, most: int = 9) -> np.ndarray:
    """At most ``most`` integer ticks from -limit to limit, 0 included (labels never overlap)."""
    if 2 * limit + 1 <= most:
        return np.arange(-limit, limit + 1)
    step = int(np.ceil(2 * limit / (most - 1)))
    half = np.arange(0, limit + 1, step)
    return np.unique(np.concatenate([-half, half]))


def _diff_norm(limit: int):
    """A discrete diverging colour map for integer LSB differences in [-limit, limit]."""
    from matplotlib import colormaps

    limit = max(1, int(limit))
    colors = colormaps[DIFF_CMAP](np.linspace(0.0, 1.0, 2 * limit + 1))
    cmap = ListedColormap(colors)
    norm = BoundaryNorm(np.arange(-limit - 0.5, limit + 1.5), cmap.N)
    return cmap, norm, limit


def feature_map_grid(
    maps: np.ndarray,
    title: str = "feature maps",
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = VALUE_CMAP,
    units: str = "activation",
    channel_names: Sequence[str] | None = None,
    tile: float = 1.6,
) -> Figure:
    """All channels of one layer as a near-square grid (8 -> 2x4) with one shared colour scale."""
    maps = _as_maps(maps)
    c = maps.shape[-1]
    rows, cols = near_square(c)
    vmin = float(np.min(maps)) if vmin is None else vmin
    vmax = float(np.max(maps)) if vmax is None else vmax
    if vmax <= vmin:
        vmax = vmin + 1e-6
    fig = new_figure(cols * tile + 1.0, rows * tile + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for i, ax in enumerate(axes.flat):
        _clean(ax)
        if i >= c:
            ax.set_axis_off()
            continue
        image = ax.imshow(maps[..., i], cmap=cmap, vmin=vmin, vmax=vmax,
                          interpolation="nearest")
        ax.set_title(channel_names[i] if channel_names else f"ch {i}", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.85, label=units)
    fig.suptitle(title, fontsize=11)
    return fig


def comparison_grid(
    rows: dict[str, np.ndarray],
    diff_lsb: dict[str, np.ndarray] | np.ndarray | None = None,
    title: str = "first layer feature maps",
    units: str = "activation (real value)",
    tile: float = 1.35,
) -> Figure:
    """One row per source (e.g. ``{"float": ..., "int8 desktop": ..., "device": ...}``, each
    ``(H, W, C)`` in real units) sharing one colour scale, then one row per difference
    (``{"device - desktop": int LSB (H, W, C)}``) on a diverging LSB scale.

    Reusable by ``tinyscope compare``: pass ``None`` for a source you don't have.
    """
    rows = {k: _as_maps(v) for k, v in rows.items() if v is not None}
    if isinstance(diff_lsb, np.ndarray):
        diff_lsb = {"difference": diff_lsb}
    diffs = {k: _as_maps(v).astype(np.int32) for k, v in (diff_lsb or {}).items()}
    if not rows and not diffs:
        raise ValueError("nothing to plot")
    c = next(iter(rows.values()) if rows else iter(diffs.values())).shape[-1]
    n_rows = len(rows) + len(diffs)
    width, height = c * tile + 2.6, n_rows * tile + 0.9
    fig = new_figure(width, height, layout=None)
    fig.subplots_adjust(left=1.0 / width, right=1 - 0.9 / width, bottom=0.15 / height,
                        top=1 - 0.65 / height, wspace=0.08, hspace=0.12)
    axes = fig.subplots(n_rows, c, squeeze=False)
    if rows:
        vmin = min(float(v.min()) for v in rows.values())
        vmax = max(float(v.max()) for v in rows.values())
        vmax = vmax if vmax > vmin else vmin + 1e-6
        image = None
        for r, (name, maps) in enumerate(rows.items()):
            for i in range(c):
                ax = axes[r, i]
                _clean(ax)
                image = ax.imshow(maps[..., i], cmap=VALUE_CMAP, vmin=vmin, vmax=vmax,
                                  interpolation="nearest")
                if r == 0:
                    ax.set_title(f"ch {i}", fontsize=9)
            axes[r, 0].set_ylabel(name, fontsize=9)
        fig.colorbar(image, ax=axes[: len(rows), :], shrink=0.9, label=units,
                     fraction=0.25 / width, pad=0.15 / width)
    if diffs:
        limit = max(int(np.abs(d).max()) for d in diffs.values())
        cmap, norm, limit = _diff_norm(limit)
        image = None
        for k, (name, d) in enumerate(diffs.items()):
            r = len(rows) + k
            for i in range(c):
                ax = axes[r, i]
                _clean(ax)
                image = ax.imshow(d[..., i], cmap=cmap, norm=norm, interpolation="nearest")
            n = int(np.count_nonzero(d))
            axes[r, 0].set_ylabel(f"{name}\n({n} differ)", fontsize=8)
        fig.colorbar(image, ax=axes[len(rows):, :], shrink=0.9, label="LSB",
                     ticks=lsb_ticks(limit), fraction=0.25 / width, pad=0.15 / width)
    fig.suptitle(title, fontsize=11)
    return fig


def _gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        return image[..., 0]
    return image


def draw_overlay(ax, image: np.ndarray, saliency: np.ndarray, alpha: float = 0.55):
    """Draw ``image`` in gray with ``saliency`` (H, W in [0, 1]) as a heat map on top."""
    img = _gray(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
    heat = ax.imshow(np.asarray(saliency), cmap=SALIENCY_CMAP, alpha=alpha, vmin=0.0,
                     vmax=1.0, interpolation="bilinear")
    _clean(ax)
    return heat


def saliency_methods(
    image: np.ndarray, maps: dict[str, np.ndarray], title: str = "saliency methods"
) -> Figure:
    """The input, then one overlay per method (``{"vanilla": (H, W), ...}``), one colour bar."""
    n = len(maps) + 1
    fig = new_figure(2.1 * n + 0.8, 2.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    axes[0].imshow(_gray(image), cmap="gray", interpolation="nearest")
    axes[0].set_title("input", fontsize=9)
    _clean(axes[0])
    heat = None
    for ax, (name, sal) in zip(axes[1:], maps.items(), strict=True):
        heat = draw_overlay(ax, image, sal)
        ax.set_title(name, fontsize=9)
    if heat is not None:
        fig.colorbar(heat, ax=list(axes[1:]), shrink=0.85, label="saliency (normalised)")
    fig.suptitle(title, fontsize=11)
    return fig


def panel(
    image: np.ndarray,
    saliency: np.ndarray,
    maps: np.ndarray,
    title: str = "",
    saliency_name: str = "saliency",
    units: str = "activation",
) -> Figure:
    """One image: input | saliency overlay | first-layer feature maps (near-square grid)."""
    maps = _as_maps(maps)
    rows, cols = near_square(maps.shape[-1])
    fig = new_figure(4.4 + 1.3 * cols, max(2.8, 1.35 * rows + 0.8))
    outer = fig.add_gridspec(1, 3, width_ratios=[1.0, 1.0, cols * 0.55])
    ax_in = fig.add_subplot(outer[0])
    ax_in.imshow(_gray(image), cmap="gray", interpolation="nearest")
    ax_in.set_title("input", fontsize=9)
    _clean(ax_in)
    ax_sal = fig.add_subplot(outer[1])
    heat = draw_overlay(ax_sal, image, saliency)
    ax_sal.set_title(saliency_name, fontsize=9)
    fig.colorbar(heat, ax=ax_sal, shrink=0.7, location="bottom", label="saliency")
    inner = outer[2].subgridspec(rows, cols, wspace=0.05, hspace=0.15)
    vmin, vmax = float(maps.min()), float(maps.max())
    vmax = vmax if vmax > vmin else vmin + 1e-6
    axes = []
    image_handle = None
    for i in range(rows * cols):
        ax = fig.add_subplot(inner[i // cols, i % cols])
        _clean(ax)
        axes.append(ax)
        if i >= maps.shape[-1]:
            ax.set_axis_off()
            continue
        image_handle = ax.imshow(maps[..., i], cmap=VALUE_CMAP, vmin=vmin, vmax=vmax,
                                 interpolation="nearest")
        ax.set_title(f"ch {i}", fontsize=8)
    fig.colorbar(image_handle, ax=axes, shrink=0.8, label=units)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# --------------------------------------------------------------------------- drift charts


def layer_error_chart(metrics: dict) -> Figure:
    """RMSE/scale per tensor, accumulated and layer-local, with the ideal 1/sqrt(12) line."""
    tensors = [t for t in metrics["tensors"] if "float_vs_int8" in t and t["op"] != "INPUT"]
    labels = [f"#{t['index']} {t['keras_layer'] or t['op']}\n{t['op']}" for t in tensors]
    acc = [t["float_vs_int8"].get("rmse_over_scale", np.nan) for t in tensors]
    loc = [t.get("float_local_vs_int8", {}).get("rmse_over_scale", np.nan) for t in tensors]
    fig = new_figure(max(5.5, 1.0 * len(tensors) + 1.5), 3.6)
    ax = fig.subplots()
    x = np.arange(len(tensors))
    ax.bar(x - 0.2, acc, 0.4, label="accumulated (float model end to end)")
    ax.bar(x + 0.2, loc, 0.4, label="layer-local (one op's own error)")
    ax.axhline(1 / math.sqrt(12), color="k", ls="--", lw=1, label="ideal rounding 0.289")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("RMSE / scale (LSB)")
    ax.set_title(f"int8 (TFLM) vs float per tensor, {metrics['n_images']} images", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def lsb_histograms(metrics: dict, key: str = "tflm_vs_xnnpack",
                   title: str = "LiteRT default (XNNPACK) - TFLM") -> Figure:
    """Per tensor, how many elements differ by -k..k LSB between two int8 runs (log scale)."""
    tensors = [t for t in metrics["tensors"] if "lsb" in t.get(key, {})]  # int8 tensors
    n = len(tensors)
    rows, cols = near_square(n)
    width, height = 2.4 * cols + 0.8, 2.0 * rows + 0.9
    fig = new_figure(width, height, layout=None)
    fig.subplots_adjust(left=0.9 / width, right=1 - 0.2 / width, bottom=0.55 / height,
                        top=1 - 0.6 / height, wspace=0.35, hspace=0.55)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, t in zip(axes.flat, tensors, strict=False):
        hist = t[key]["lsb"]["histogram"]
        counts = {int(k): int(v) for k, v in hist.items()}
        limit = max(1, max(abs(k) for k in counts))
        keys = list(range(-limit, limit + 1))
        vals = [counts.get(k, 0) for k in keys]
        if len(keys) <= 7:
            colors = ["tab:green" if k == 0 else "tab:red" for k in keys]
            bars = ax.bar(keys, vals, color=colors)
            ax.bar_label(bars, [str(v) if v else "" for v in vals], fontsize=7)
        else:  # one line collection per colour: thousands of bar artists take seconds
            nz = [(k, v) for k, v in zip(keys, vals, strict=True) if v and k]
            ax.vlines([k for k, _ in nz], 0.5, [v for _, v in nz], colors="tab:red",
                      linewidth=max(1.0, 60 / len(keys)))
            ax.vlines([0], 0.5, [counts.get(0, 0) or 0.5], colors="tab:green",
                      linewidth=max(1.0, 60 / len(keys)))
        ax.set_yscale("log")
        ax.set_ylim(0.5, max(vals) * 8)  # bars start at 1 element
        ax.yaxis.set_major_locator(LogLocator(numticks=4))
        ax.yaxis.set_minor_locator(NullLocator())  # hundreds of minor tick artists per axes
        ax.set_xticks(lsb_ticks(limit, 7))
        diff = t[key]["lsb"]["n_different"]
        ax.set_title(f"{t.get('keras_layer') or t['op']}: {diff:,} differ", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    fig.supxlabel("difference (LSB)", fontsize=9)
    fig.supylabel("elements (log)", fontsize=9)
    fig.suptitle(title, fontsize=11)
    return fig


def confusion_chart(matrix, classes: Sequence[str], title: str, xlabel: str, ylabel: str):
    cm = np.asarray(matrix)
    side = 0.3 * max(len(classes), 4)
    fig = new_figure(side + 2.2, side + 1.0)
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    thresh = cm.max() / 2 if cm.size else 0
    for (i, j), v in np.ndenumerate(cm):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > thresh else "black")
    from matplotlib.ticker import MaxNLocator

    bar = fig.colorbar(image, ax=ax, shrink=0.8, label="images")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    ax.set_title(title, fontsize=10)
    return fig


def drift_figures(metrics: dict, figure_data: dict, out: Path, image: int = 0) -> list[Path]:
    """The figures of ``tinyscope drift``; returns the PNG paths written."""
    from tinyscope.data import dequantize

    paths = [save(layer_error_chart(metrics), out / "layer_error.png")]
    paths.append(save(lsb_histograms(metrics), out / "lsb_xnnpack_vs_tflm.png"))
    d = metrics["dataset"]
    classes = metrics["classes"]
    paths.append(save(confusion_chart(
        d["confusion_float_vs_int8"], classes,
        f"float vs int8 top-1: {d['top1_agreement']:.2%} agree", "int8 (TFLM) prediction",
        "float prediction"), out / "confusion_float_vs_int8.png"))
    if "confusion_int8" in d:
        paths.append(save(confusion_chart(
            d["confusion_int8"], classes, f"int8 accuracy {d['int8_accuracy']:.2%}",
            "int8 prediction", "true class"), out / "confusion_int8.png"))
    idx = figure_data["first_layer_output"]
    t = next(x for x in metrics["tensors"] if x["index"] == idx)
    tflm = figure_data["tflm"][idx][image]
    rows = {
        "float Keras": figure_data["float"].get(idx, [None] * (image + 1))[image],
        "int8 TFLM": dequantize(tflm, t["scale"], t["zero_point"]),
    }
    diffs = {"XNNPACK - TFLM": figure_data["xnnpack"][idx][image].astype(np.int32) - tflm}
    if idx in figure_data["float"]:
        fq = np.clip(np.round(figure_data["float"][idx][image] / t["scale"]) + t["zero_point"],
                     -128, 127)
        diffs["TFLM - round(float)"] = tflm.astype(np.int32) - fq.astype(np.int32)
    label = int(figure_data["y"][image])
    paths.append(save(comparison_grid(
        rows, diffs, title=f"first layer (tensor #{idx}), test image {image} "
        f"(label {classes[label]})"), out / "first_layer_comparison.png"))
    paths.append(save(feature_map_grid(
        rows["int8 TFLM"], f"first layer feature maps, int8 TFLM, image {image}"),
        out / "first_layer_int8.png"))
    return paths
