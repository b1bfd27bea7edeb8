"""Figures to PNG: the Agg canvas every figure is drawn on, and 256-colour PNGs that keep
colour bars smooth.

A palette without dithering keeps every colour bar and heat map readable at about a third of
the size of a full-colour PNG, which keeps the self-contained report small. Its first entries
are samples of the figure's colour maps (their lookup-table entries, mapped exactly, so colour
bars do not band); the rest are the image's own median-cut colours (text, photos, overlays).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A figure on the Agg canvas. Grids of many tiles pass ``layout=None`` and place their
    axes themselves: constrained layout measures every tile's bounding box on each draw,
    several seconds for a 5 x 16 grid."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _fixed_colours(fig: Figure, budget: int = 128) -> np.ndarray:
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
        rest = sample.quantize(256 - len(fixed), method=Image.Quantize.MEDIANCUT,
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
