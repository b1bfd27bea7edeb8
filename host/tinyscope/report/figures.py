"""Figures: feature-map grids, int8-vs-float comparison and LSB difference grids, saliency
overlays, per-image panels and drift charts.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (so no global
state and always the headless Agg canvas); :func:`save` writes it as PNG. Maps are given as
``(H, W, C)`` arrays; a grid shares one colour scale across all its maps and shows it in one
colour bar, so brightness means the same thing in every tile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator

from tinyscope.report.forms import (  # noqa: F401 - the figure API in one place
    AXIS_NAMES,
    DIFF_CMAP,
    FEATURES,
    IMAGE,
    IMAGE_ASPECT,
    MATRIX,
    SALIENCY_CMAP,
    SOURCE_COLOURS,
    VALUE_CMAP,
    VECTOR,
    _as_maps,
    _clean,
    _comparison_matrix,
    _comparison_vector,
    _diff_norm,
    _heat,
    _label_edges,
    _tile,
    _tile_size,
    _value_range,
    as_form,
    draw_input,
    draw_overlay,
    input_form,
    lsb_ticks,
    tensor_form,
)
from tinyscope.report.png import DPI, new_figure, save  # noqa: F401


def near_square(n: int) -> tuple[int, int]:
    """Rows, columns for ``n`` tiles: 8 -> (2, 4), 16 -> (4, 4), 10 -> (3, 4)."""
    if n < 1:
        raise ValueError("need at least one map")
    for rows in range(math.isqrt(n), 0, -1):  # an exact fill if it is not too elongated
        if n % rows == 0 and n // rows <= 2 * rows:
            return rows, n // rows
    rows = max(1, math.isqrt(n))
    return rows, math.ceil(n / rows)


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
    form: str = IMAGE,
) -> Figure:
    """All channels of one layer as a near-square grid (8 -> 2x4) with one shared colour
    scale; a ``matrix`` as one heat map, a ``vector`` as a line plot."""
    if form in (MATRIX, VECTOR):
        return comparison_grid({units: maps}, None, title, units, form=form)
    maps = _as_maps(maps)
    c = maps.shape[-1]
    rows, cols = near_square(c)
    vmin = float(np.min(maps)) if vmin is None else vmin
    vmax = float(np.max(maps)) if vmax is None else vmax
    if vmax <= vmin:
        vmax = vmin + 1e-6
    tw, th = _tile_size(form, tile)
    fig = new_figure(cols * tw + 1.0, rows * th + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for i, ax in enumerate(axes.flat):
        _clean(ax)
        if i >= c:
            ax.set_axis_off()
            continue
        image = _tile(ax, maps[..., i], form, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(channel_names[i] if channel_names else f"ch {i}", fontsize=9)
    _label_edges(axes, maps, form)
    fig.colorbar(image, ax=axes, shrink=0.85, label=units)
    fig.suptitle(title, fontsize=11)
    return fig


def comparison_grid(
    rows: dict[str, np.ndarray],
    diff_lsb: dict[str, np.ndarray] | np.ndarray | None = None,
    title: str = "first layer feature maps",
    units: str = "activation (real value)",
    tile: float = 1.35,
    form: str = IMAGE,
) -> Figure:
    """One row per source (e.g. ``{"float": ..., "int8 desktop": ..., "device": ...}``, each
    ``(H, W, C)`` in real units) sharing one colour scale, then one row per difference
    (``{"device - desktop": int LSB (H, W, C)}``) on a diverging LSB scale. ``form`` says how
    a map is drawn (:func:`tensor_form`): image tiles, time x feature tiles, one time x
    channel heat map per row (``matrix``) or lines (``vector``).

    Reusable by ``tinyscope compare``: pass ``None`` for a source you don't have.
    """
    if isinstance(diff_lsb, np.ndarray):
        diff_lsb = {"difference": diff_lsb}
    if form in (MATRIX, VECTOR):
        rows = {k: as_form(v, form) for k, v in rows.items() if v is not None}
        diffs = {k: as_form(v, form).astype(np.int32) for k, v in (diff_lsb or {}).items()}
        if not rows and not diffs:
            raise ValueError("nothing to plot")
        return (_comparison_vector if form == VECTOR else _comparison_matrix)(
            rows, diffs, title, units)
    rows = {k: _as_maps(v) for k, v in rows.items() if v is not None}
    diffs = {k: _as_maps(v).astype(np.int32) for k, v in (diff_lsb or {}).items()}
    if not rows and not diffs:
        raise ValueError("nothing to plot")
    first = next(iter(rows.values()) if rows else iter(diffs.values()))
    c = first.shape[-1]
    n_rows = len(rows) + len(diffs)
    tw, th = _tile_size(form, tile)
    width, height = c * tw + 2.6, n_rows * th + 0.9 + (0.3 if form == FEATURES else 0)
    fig = new_figure(width, height, layout=None)
    fig.subplots_adjust(left=(1.25 if form == FEATURES else 1.0) / width, right=1 - 0.9 / width,
                        bottom=(0.45 if form == FEATURES else 0.15) / height,
                        top=1 - 0.65 / height, wspace=0.08, hspace=0.12)
    axes = fig.subplots(n_rows, c, squeeze=False)
    if rows:
        vmin, vmax = _value_range(rows.values())
        image = None
        for r, (name, maps) in enumerate(rows.items()):
            for i in range(c):
                ax = axes[r, i]
                image = _tile(ax, maps[..., i], form, cmap=VALUE_CMAP, vmin=vmin, vmax=vmax)
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
                image = _tile(axes[r, i], d[..., i], form, cmap=cmap, norm=norm)
            n = int(np.count_nonzero(d))
            axes[r, 0].set_ylabel(f"{name}\n({n} differ)", fontsize=7 if form == FEATURES else 8)
        fig.colorbar(image, ax=axes[len(rows):, :], shrink=0.9, label="LSB",
                     ticks=lsb_ticks(limit), fraction=0.25 / width, pad=0.15 / width)
    if form == FEATURES:
        _label_edges(axes, first, form, ylabel=False)
        fig.text(0.5, 0.02, "each tile: time along x (left to right), feature along y "
                 "(bottom to top)", ha="center", fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig


def _saliency_bar(fig: Figure, axes, label: str = "saliency (normalised)", **kw):
    """A colour bar of the saliency map itself (no overlay transparency: no washed-out bar)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    return fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), SALIENCY_CMAP), ax=axes,
                        label=label, **kw)


def saliency_methods(
    image: np.ndarray, maps: dict[str, np.ndarray], title: str = "saliency methods",
    form: str = IMAGE,
) -> Figure:
    """The input, then one overlay per method (``{"vanilla": map, ...}``), one colour bar.
    Images side by side; 2-D features and vectors one per row (they are long)."""
    n = len(maps) + 1
    wide = form != IMAGE
    if wide:
        width, height = 9.0, 1.55 * n + 0.8
    else:
        width, height = 2.1 * n + 1.2, 2.7
    fig = new_figure(width, height, layout=None)
    if wide:
        fig.subplots_adjust(left=0.9 / width, right=1 - 1.3 / width, bottom=0.5 / height,
                            top=1 - 0.55 / height, hspace=0.75)
        axes = fig.subplots(n, 1, squeeze=False, sharex=True)[:, 0]
    else:
        fig.subplots_adjust(left=0.1 / width, right=1 - 1.0 / width, bottom=0.1 / height,
                            top=1 - 0.5 / height, wspace=0.06)
        axes = fig.subplots(1, n, squeeze=False)[0]
    draw_input(axes[0], image, form)
    axes[0].set_title("input", fontsize=9, loc="left" if wide else "center")
    for ax, (name, sal) in zip(axes[1:], maps.items(), strict=True):
        draw_overlay(ax, image, sal, form=form)
        ax.set_title(name, fontsize=9, loc="left" if wide else "center")
    if wide:
        for ax in axes[:-1]:
            ax.set_xlabel("")
    if maps:
        _saliency_bar(fig, list(axes[1:]), fraction=0.3 / width * (2 if wide else 1),
                      pad=0.2 / width, shrink=0.9)
    fig.suptitle(title, fontsize=11)
    return fig


def panel(
    image: np.ndarray,
    saliency: np.ndarray,
    maps: np.ndarray,
    title: str = "",
    saliency_name: str = "saliency",
    units: str = "activation",
    input_kind: str = IMAGE,
    map_form: str = IMAGE,
) -> Figure:
    """One image: input | saliency overlay | first-layer feature maps (near-square grid; a
    time x channel heat map or a line plot for such tensors)."""
    wide_in = input_kind != IMAGE
    if map_form in (IMAGE, FEATURES):
        maps = _as_maps(maps)
        rows, cols = near_square(maps.shape[-1])
        tw, th = _tile_size(map_form, 1.3)
        right_w, right_h = cols * tw, rows * th
    else:
        maps = as_form(maps, map_form)
        right_w, right_h = 6.0, 2.4
    left_w = 5.0 if wide_in else 4.4
    width = left_w + right_w + 1.6
    height = max(3.0, right_h + 1.1, 4.2 if wide_in else 0)
    fig = new_figure(width, height, layout=None)
    outer = fig.add_gridspec(1, 2, width_ratios=[left_w, right_w], left=0.55 / width,
                             right=1 - 1.1 / width, bottom=0.6 / height, top=1 - 0.6 / height,
                             wspace=0.25)
    inner_left = (outer[0].subgridspec(2, 1, hspace=0.6) if wide_in
                  else outer[0].subgridspec(1, 2, wspace=0.1))
    ax_in = fig.add_subplot(inner_left[0])
    draw_input(ax_in, image, input_kind)
    ax_in.set_title("input", fontsize=9)
    ax_sal = fig.add_subplot(inner_left[1])
    draw_overlay(ax_sal, image, saliency, form=input_kind)
    ax_sal.set_title(saliency_name, fontsize=9)
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cax = ax_sal.inset_axes([1.02, 0.0, 0.025, 1.0] if wide_in else [0.1, -0.2, 0.8, 0.06])
    bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), SALIENCY_CMAP), cax=cax,
                       orientation="vertical" if wide_in else "horizontal", label="saliency")
    bar.ax.tick_params(labelsize=7)
    if map_form in (IMAGE, FEATURES):
        inner = outer[1].subgridspec(rows, cols, wspace=0.05, hspace=0.3)
        vmin, vmax = _value_range([maps])
        grid = np.empty((rows, cols), object)
        handle = None
        for i in range(rows * cols):
            ax = fig.add_subplot(inner[i // cols, i % cols])
            grid[i // cols, i % cols] = ax
            _clean(ax)
            if i >= maps.shape[-1]:
                ax.set_axis_off()
                continue
            handle = _tile(ax, maps[..., i], map_form, cmap=VALUE_CMAP, vmin=vmin, vmax=vmax)
            ax.set_title(f"ch {i}", fontsize=8)
        _label_edges(grid, maps, map_form)
        fig.colorbar(handle, ax=list(grid.flat), shrink=0.8, label=units, fraction=0.04,
                     pad=0.02)
    else:
        ax = fig.add_subplot(outer[1])
        if map_form == VECTOR:
            ax.plot(np.arange(len(maps)), maps, color=SOURCE_COLOURS[0], lw=1.0)
            ax.set_xlabel("value index", fontsize=8)
            ax.set_ylabel(units if len(units) < 28 else "real value", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.25)
        else:
            handle = _heat(ax, maps, ("time (position)", "channel"), cmap=VALUE_CMAP)
            fig.colorbar(handle, ax=ax, label=units, fraction=0.05, pad=0.02)
        ax.set_title(units, fontsize=9)
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
    inp = next((x for x in metrics["tensors"] if x["op"] == "INPUT"), None)
    form = tensor_form(t["shape"][1:], input_form(inp["shape"][1:]) if inp else IMAGE)
    if form in (IMAGE, FEATURES):  # at most 16 channels, as in the report
        rows = {k: (v[..., :16] if v is not None else None) for k, v in rows.items()}
        diffs = {k: v[..., :16] for k, v in diffs.items()}
    paths.append(save(comparison_grid(
        rows, diffs, title=f"first layer (tensor #{idx}), test input {image} "
        f"(label {classes[label] if label >= 0 else '–'})", form=form),
        out / "first_layer_comparison.png"))
    paths.append(save(feature_map_grid(
        rows["int8 TFLM"], f"first layer feature maps, int8 TFLM, input {image}", form=form),
        out / "first_layer_int8.png"))
    return paths
