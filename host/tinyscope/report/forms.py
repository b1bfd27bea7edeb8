"""How a tensor is drawn, by its form: images as images; 2-D features (a 49x10x1 MFCC and the
maps computed from it) as heat maps with time along x and the feature along y; a T x C tensor
(1 x W x C, or a 2-D input) as one heat map with axes; a vector (640 values, 1 x 1 x C) as a
line plot. The drawing primitives (one map, an input, a saliency overlay) and the matrix and
vector comparison figures; :mod:`tinyscope.report.figures` builds the grids and panels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from tinyscope.report.png import new_figure

VALUE_CMAP = "viridis"
DIFF_CMAP = "RdBu_r"
SALIENCY_CMAP = "inferno"


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
    return (tile, 0.75 * tile) if form == FEATURES else (tile, tile)


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
