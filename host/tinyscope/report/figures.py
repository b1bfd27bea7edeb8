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


def _fixed_colours(fig: Figure, budget: int = 160) -> np.ndarray:
    """Evenly spaced samples of every continuous colour map drawn in ``fig`` (heat maps and
    colour bars): kept exactly in the palette so colour bars do not band."""
    from matplotlib.cm import ScalarMappable

    cmaps = {}
    for artist in fig.findobj(lambda a: isinstance(a, ScalarMappable)):
        array = artist.get_array() if hasattr(artist, "get_array") else None
        if array is None or np.ndim(array) == 3:
            continue  # an RGB image or an artist without data: no colour map drawn
        cmap = artist.get_cmap()
        # a discrete LSB map has few colours anyway; gray lies under saliency overlays
        if cmap is not None and cmap.N >= 64 and cmap.name not in ("gray", "Greys"):
            cmaps[cmap.name] = cmap
    if not cmaps:
        return np.zeros((0, 3), np.uint8)
    k = max(32, budget // len(cmaps))
    # entries of the colour map's own lookup table: the exact colours drawn
    cols = [np.round(c(np.linspace(0, c.N - 1, min(k, c.N)).round().astype(int))[:, :3] * 255)
            for c in cmaps.values()]
    return np.unique(np.concatenate(cols).astype(np.uint8), axis=0)[:budget]


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a 256-colour PNG (creating the directory); returns the path. A
    palette without dithering keeps every colour bar and heat map readable at about a third
    of the size of a full-colour PNG, which keeps the self-contained report small. The
    palette holds evenly spaced samples of the figure's colour maps (so colour bars and heat
    maps do not band) and, for the rest (text, overlays), the image's own median-cut
    colours."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    with Image.open(buf) as img:
        rgb = img.convert("RGB")
        fixed = _fixed_colours(fig)
        # the other colours from every other pixel in each direction: the same palette for
        # text and overlays, a quarter of the work
        sample = rgb.resize((max(1, rgb.width // 2), max(1, rgb.height // 2)),
                            Image.Resampling.NEAREST)
        rest = sample.quantize(256 - len(fixed), method=Image.Quantize.FASTOCTREE,
                               dither=Image.Dither.NONE)
        own = np.asarray(rest.getpalette()[: 3 * (256 - len(fixed))], np.uint8).reshape(-1, 3)
        colours = np.concatenate([fixed, own])[:256]
        _to_palette(rgb, colours, len(fixed)).save(path, optimize=True)
    return path


def _key(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb).astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _to_palette(rgb, colours: np.ndarray, exact: int):
    """``rgb`` (a PIL image) on ``colours``: Pillow's fast mapping (it rounds colours to a
    coarse cache first, which would merge neighbouring colour-bar levels), then every pixel
    whose colour is exactly one of the first ``exact`` palette colours (the colour-map
    samples) gets that entry."""
    from PIL import Image

    pal = Image.new("P", (1, 1))
    pal.putpalette(colours.ravel().tolist() + [0] * (768 - 3 * len(colours)))
    mapped = rgb.quantize(palette=pal, dither=Image.Dither.NONE)
    if not exact:
        return mapped
    idx = np.asarray(mapped).copy()
    keys = _key(colours[:exact])
    order = np.argsort(keys)
    sorted_keys = keys[order]
    img = _key(np.asarray(rgb))
    pos = np.minimum(np.searchsorted(sorted_keys, img), len(keys) - 1)
    hit = sorted_keys[pos] == img
    idx[hit] = order[pos[hit]]
    out = Image.fromarray(idx.astype(np.uint8), "P")
    out.putpalette(colours.ravel().tolist() + [0] * (768 - 3 * len(colours)))
    return out


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


# --------------------------------------------------------------------------- forms
# How a tensor is drawn: images as images; 2-D features (a 49x10x1 MFCC and the maps computed
# from it) as heat maps with time along x and the feature along y; a T x C tensor (1 x W x C,
# or a 2-D input) as one heat map with axes; a vector (640 values, 1 x 1 x C) as a line plot.

IMAGE, FEATURES, MATRIX, VECTOR = "image", "features", "matrix", "vector"
IMAGE_ASPECT = 2.5  # an H x W input longer than this on one side is a feature map, not an image


def _flat_form(s: list[int]) -> str:
    if len(s) == 3 and (s[0] == 1) != (s[1] == 1) and s[2] > 1:
        return MATRIX  # 1 x W x C: W steps of C channels
    if len(s) == 2 and s[0] > 1 and s[1] > 1:
        return MATRIX
    return VECTOR


def input_form(shape: Sequence[int]) -> str:
    """How to draw a model input of ``shape`` (no batch axis): an ``H x W x C`` image with
    sides within 2.5x of each other is an image; a longer one (49 x 10 x 1 MFCCs) is 2-D
    features; ``T x F`` or ``1 x W x C`` a matrix; anything else a vector."""
    s = [int(v) for v in shape]
    if len(s) == 3 and s[0] > 1 and s[1] > 1:
        return IMAGE if max(s[:2]) <= IMAGE_ASPECT * min(s[:2]) else FEATURES
    return _flat_form(s)


def tensor_form(shape: Sequence[int], input_kind: str = IMAGE) -> str:
    """How to draw a tensor of ``shape`` (no batch axis) of a model whose input is drawn as
    ``input_kind``: ``H x W x C`` maps are images for an image model, else 2-D features."""
    s = [int(v) for v in shape]
    if len(s) == 3 and s[0] > 1 and s[1] > 1:
        return FEATURES if input_kind in (FEATURES, MATRIX) else IMAGE
    return _flat_form(s)


def as_form(a: np.ndarray, form: str) -> np.ndarray:
    """``a`` (batch axis of 1 allowed) as its form draws it: ``(H, W, C)``, ``(T, C)`` or
    ``(N,)``."""
    a = np.asarray(a)
    if form in (IMAGE, FEATURES):
        return _as_maps(a)
    if form == MATRIX:
        m = np.squeeze(a)
        if m.ndim != 2:
            raise ValueError(f"a matrix must have two axes longer than 1, got {a.shape}")
        return m
    return a.ravel()


AXIS_NAMES = {FEATURES: ("time", "feature"), MATRIX: ("time", "channel")}


def _heat(ax, m: np.ndarray, names: tuple[str, str] | None = None, ticks: bool = True,
          **kw):
    """A ``(T, F)`` map with time along x and the feature along y (from the bottom)."""
    kw.setdefault("interpolation", "nearest")
    image = ax.imshow(np.asarray(m).T, origin="lower", aspect="auto", **kw)
    t, f = np.shape(m)
    if ticks:
        ax.set_xticks([0, t - 1] if t > 1 else [0])
        ax.set_yticks([0, f - 1] if f > 1 else [0])
        ax.tick_params(labelsize=7, length=2, pad=1)
    else:
        _clean(ax)
    if names:
        ax.set_xlabel(names[0], fontsize=8, labelpad=0)
        ax.set_ylabel(names[1], fontsize=8, labelpad=0)
    return image


def _tile(ax, m: np.ndarray, form: str, **kw):
    """One channel: an image tile, or a time x feature heat map (ticks set by the caller)."""
    if form == FEATURES:
        return _heat(ax, m, ticks=False, **kw)
    kw.setdefault("interpolation", "nearest")
    image = ax.imshow(m, **kw)
    _clean(ax)
    return image


def _tile_size(form: str, tile: float) -> tuple[float, float]:
    return (1.5 * tile, 0.7 * tile) if form == FEATURES else (tile, tile)


def _label_edges(axes: np.ndarray, maps: np.ndarray, form: str, ylabel: bool = True) -> None:
    """Ticks and axis names on the outer tiles of a grid of time x feature heat maps."""
    if form != FEATURES:
        return
    t, f = maps.shape[:2]
    for ax in axes[-1, :]:
        if ax.get_visible() and ax.images:
            ax.set_xticks([0, t - 1])
            ax.tick_params(labelsize=6, length=2, pad=1)
    axes[-1, 0].set_xlabel("time", fontsize=7, labelpad=0)
    for ax in axes[:, 0]:
        ax.set_yticks([0, f - 1])
        ax.tick_params(labelsize=6, length=2, pad=1)
    if ylabel:
        axes[-1, 0].set_ylabel("feature", fontsize=7, labelpad=0)


def _value_range(values) -> tuple[float, float]:
    vmin = min(float(np.min(v)) for v in values)
    vmax = max(float(np.max(v)) for v in values)
    return vmin, (vmax if vmax > vmin else vmin + 1e-6)


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
            axes[r, 0].set_ylabel(f"{name}\n({n} differ)", fontsize=8)
        fig.colorbar(image, ax=axes[len(rows):, :], shrink=0.9, label="LSB",
                     ticks=lsb_ticks(limit), fraction=0.25 / width, pad=0.15 / width)
    if form == FEATURES:
        _label_edges(axes, first, form, ylabel=False)
        fig.text(0.5, 0.02, "each tile: time along x (left to right), feature along y "
                 "(bottom to top)", ha="center", fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig


def _comparison_matrix(rows: dict, diffs: dict, title: str, units: str) -> Figure:
    """One time x channel heat map per source, then one per difference (LSB)."""
    n = len(rows) + len(diffs)
    t, c = next(iter(rows.values()) if rows else iter(diffs.values())).shape
    width = min(14.0, max(6.0, 0.12 * t + 3.0))
    row_h = min(2.4, max(1.1, 0.05 * c + 0.8))
    height = n * row_h + 1.0
    fig = new_figure(width, height, layout=None)
    fig.subplots_adjust(left=1.3 / width, right=1 - 1.2 / width, bottom=0.55 / height,
                        top=1 - 0.55 / height, hspace=0.35)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    if rows:
        vmin, vmax = _value_range(rows.values())
        image = None
        for ax, (name, m) in zip(axes, rows.items(), strict=False):
            image = _heat(ax, m, ("", "channel"), cmap=VALUE_CMAP, vmin=vmin, vmax=vmax)
            ax.set_title(name, fontsize=9, loc="left")
        fig.colorbar(image, ax=list(axes[: len(rows)]), label=units, fraction=0.04, pad=0.02)
    if diffs:
        limit = max(int(np.abs(d).max()) for d in diffs.values())
        cmap, norm, limit = _diff_norm(limit)
        image = None
        for ax, (name, d) in zip(axes[len(rows):], diffs.items(), strict=True):
            image = _heat(ax, d, ("", "channel"), cmap=cmap, norm=norm)
            ax.set_title(f"{name} ({int(np.count_nonzero(d))} differ)", fontsize=9, loc="left")
        fig.colorbar(image, ax=list(axes[len(rows):]), label="LSB", ticks=lsb_ticks(limit),
                     fraction=0.04, pad=0.02)
    axes[-1].set_xlabel("time (position)", fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig


SOURCE_COLOURS = ("tab:blue", "tab:orange", "tab:red", "tab:green")


def _comparison_vector(rows: dict, diffs: dict, title: str, units: str) -> Figure:
    """The sources as lines over the value index, then the differences (LSB)."""
    n_len = len(next(iter(rows.values()) if rows else iter(diffs.values())))
    width = min(14.0, max(7.0, 0.02 * n_len + 6.0))
    n_axes = int(bool(rows)) + int(bool(diffs))
    height = 2.2 * n_axes + 0.9
    fig = new_figure(width, height, layout=None)
    fig.subplots_adjust(left=0.9 / width, right=1 - 0.3 / width, bottom=0.55 / height,
                        top=1 - 0.55 / height, hspace=0.2)
    axes = fig.subplots(n_axes, 1, squeeze=False, sharex=True)[:, 0]
    idx = np.arange(n_len)
    if rows:
        ax = axes[0]
        styles = ("-", "--", ":", "-.")
        for k, (name, v) in enumerate(rows.items()):
            ax.plot(idx, v, styles[k % 4], color=SOURCE_COLOURS[k % 4], lw=1.2 if k else 1.6,
                    label=name, drawstyle="steps-mid" if n_len <= 64 else "default")
        ax.set_ylabel(units if len(units) < 28 else "real value", fontsize=8)
        ax.legend(fontsize=7, loc="upper right", ncol=len(rows))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
    if diffs:
        ax = axes[-1]
        for k, (name, d) in enumerate(diffs.items()):
            nz = np.flatnonzero(d)
            ax.plot(idx, d, color=SOURCE_COLOURS[(k + 2) % 4], lw=0.8, alpha=0.7)
            ax.plot(nz, d[nz], "o", ms=3, color=SOURCE_COLOURS[(k + 2) % 4],
                    label=f"{name} ({len(nz)} differ)")
        limit = max(1, max(int(np.abs(d).max()) for d in diffs.values()))
        ax.set_ylim(-limit - 0.5, limit + 0.5)
        ax.set_yticks(lsb_ticks(limit, 5))
        ax.set_ylabel("LSB", fontsize=8)
        ax.legend(fontsize=7, loc="upper right", ncol=len(diffs))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
    axes[-1].set_xlabel("value index", fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig


def _gray(image: np.ndarray) -> np.ndarray:
    """An image as one gray plane (luminance of RGB) for overlays."""
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[-1] >= 3:
        return image[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    if image.ndim == 3:
        return image.mean(-1)
    return image


def _input_plane(image: np.ndarray, form: str) -> np.ndarray:
    if form == FEATURES:
        return _gray(image)
    return as_form(image, form)


def draw_input(ax, image: np.ndarray, form: str = IMAGE) -> None:
    """The model input as its form draws it (no colour bar)."""
    if form == IMAGE:
        img = np.asarray(image, np.float32)
        rgb = img.ndim == 3 and img.shape[-1] == 3
        if rgb:
            lo, hi = float(img.min()), float(img.max())
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        ax.imshow(img if rgb else _gray(img), cmap=None if rgb else "gray",
                  interpolation="nearest")
        _clean(ax)
    elif form == VECTOR:
        v = as_form(image, form)
        ax.plot(np.arange(len(v)), v, color="black", lw=0.9)
        ax.set_xlim(-0.5, len(v) - 0.5)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("value index", fontsize=8)
    else:
        _heat(ax, _input_plane(image, form), ("time", "feature"), cmap="gray")


def draw_overlay(ax, image: np.ndarray, saliency: np.ndarray, alpha: float = 0.55,
                 form: str = IMAGE):
    """Draw ``image`` in gray with ``saliency`` (in [0, 1], the input's map axes) as a heat
    map on top; a vector's saliency is a coloured band behind its line."""
    sal = np.asarray(saliency, np.float32)
    if form == VECTOR:
        v = as_form(image, form)
        lo, hi = float(v.min()), float(v.max())
        pad = 0.05 * (hi - lo or 1.0)
        heat = ax.imshow(sal.ravel()[None, :], cmap=SALIENCY_CMAP, vmin=0.0, vmax=1.0,
                         aspect="auto", interpolation="nearest",
                         extent=(-0.5, len(v) - 0.5, lo - pad, hi + pad))
        ax.plot(np.arange(len(v)), v, color="white", lw=2.2)
        ax.plot(np.arange(len(v)), v, color="black", lw=0.9)
        ax.set_xlim(-0.5, len(v) - 0.5)
        ax.set_ylim(lo - pad, hi + pad)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("value index", fontsize=8)
        return heat
    if form == IMAGE:
        ax.imshow(_gray(image), cmap="gray", interpolation="nearest")
        heat = ax.imshow(sal, cmap=SALIENCY_CMAP, alpha=alpha, vmin=0.0, vmax=1.0,
                         interpolation="bilinear")
        _clean(ax)
        return heat
    plane = _input_plane(image, form)
    if sal.shape != plane.shape:  # a 1 x W x C input: saliency over time only
        sal = np.repeat(sal.reshape(-1, 1), plane.shape[1], axis=1)
    _heat(ax, plane, ("time", "feature"), cmap="gray")
    return _heat(ax, sal, None, cmap=SALIENCY_CMAP, alpha=alpha, vmin=0.0, vmax=1.0)


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
