"""Figures: grid geometry, shared colour scales, LSB grids, overlays and panels render as
non-trivial PNG images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tinyscope.report import figures


@pytest.mark.parametrize("n, shape", [(1, (1, 1)), (3, (1, 3)), (8, (2, 4)), (10, (3, 4)),
                                      (16, (4, 4)), (32, (4, 8)), (7, (2, 4))])
def test_near_square(n, shape):
    rows, cols = figures.near_square(n)
    assert (rows, cols) == shape and rows * cols >= n and (rows - 1) * cols < n
    assert cols >= rows


def _png(fig, path):
    figures.save(fig, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = np.asarray(Image.open(path).convert("RGB"), np.int32)
    # non-trivial: many distinct colours, not a blank canvas
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50
    return img


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_feature_map_grid_is_2x4_for_8_maps_with_one_shared_scale(tmp_path):
    rng = np.random.default_rng(0)
    maps = rng.random((26, 26, 8)) * np.arange(1, 9)  # channel 7 is the brightest
    fig = figures.feature_map_grid(maps, "first layer")
    axes = _image_axes(fig)
    assert len(axes) == 8
    geometry = {ax.get_subplotspec().get_geometry()[:2] for ax in axes}
    assert geometry == {(2, 4)}
    limits = {ax.images[0].get_clim() for ax in axes}
    assert limits == {(float(maps.min()), float(maps.max()))}
    assert sum(1 for ax in fig.axes if ax.get_label() == "<colorbar>") == 1
    _png(fig, tmp_path / "grid.png")


def test_odd_channel_count_gets_a_near_square_grid(tmp_path):
    fig = figures.feature_map_grid(np.random.default_rng(1).random((5, 5, 5)))
    assert len(_image_axes(fig)) == 5
    _png(fig, tmp_path / "grid5.png")


def test_comparison_grid_rows_share_scale_and_diff_rows_use_lsb(tmp_path):
    rng = np.random.default_rng(2)
    desktop = rng.random((10, 10, 8))
    device = desktop + 0.5
    diff = rng.integers(-1, 2, (10, 10, 8))
    fig = figures.comparison_grid({"float": None, "desktop": desktop, "device": device},
                                {"device - desktop": diff})
    axes = _image_axes(fig)
    assert len(axes) == 3 * 8
    value_clims = {ax.images[0].get_clim() for ax in axes[:16]}
    assert value_clims == {(float(desktop.min()), float(device.max()))}
    _png(fig, tmp_path / "cmp.png")


def test_saliency_panel_and_methods(tmp_path):
    yy, xx = np.mgrid[:28, :28]
    image = ((yy - 14) ** 2 + (xx - 14) ** 2 < 60).astype(np.float32)[..., None]
    sal = np.exp(-((yy - 10) ** 2 + (xx - 12) ** 2) / 20.0)
    maps = np.random.default_rng(3).random((26, 26, 8))
    fig = figures.panel(image, sal, maps, "panel")
    assert len(_image_axes(fig)) == 2 + 8
    _png(fig, tmp_path / "panel.png")
    fig = figures.saliency_methods(image, {"a": sal, "b": sal[::-1]})
    assert len(_image_axes(fig)) == 3
    _png(fig, tmp_path / "methods.png")
