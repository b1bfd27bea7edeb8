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


@pytest.mark.parametrize("shape, form", [
    ((28, 28, 1), "image"), ((96, 96, 3), "image"), ((32, 40, 3), "image"),
    ((49, 10, 1), "features"), ((20, 8), "matrix"), ((1, 20, 8), "matrix"),
    ((640,), "vector"), ((1, 1, 64), "vector"), ((1, 640), "vector")])
def test_input_forms(shape, form):
    assert figures.input_form(shape) == form


def test_tensor_forms_follow_the_input():
    assert figures.tensor_form((25, 5, 64), figures.FEATURES) == figures.FEATURES
    assert figures.tensor_form((25, 5, 64), figures.IMAGE) == figures.IMAGE
    assert figures.tensor_form((1, 25, 64), figures.FEATURES) == figures.MATRIX
    assert figures.tensor_form((1, 1, 64), figures.FEATURES) == figures.VECTOR
    assert figures.tensor_form((128,), figures.VECTOR) == figures.VECTOR


def test_time_x_feature_maps_are_heat_maps_with_time_along_x(tmp_path):
    rng = np.random.default_rng(4)
    dev = rng.random((25, 5, 4))
    diff = np.zeros((25, 5, 4), int)
    diff[3, 1, 2] = 1
    fig = figures.comparison_grid({"device": dev, "TFLM": dev}, {"device - TFLM": diff},
                                  "dscnn conv1", form=figures.FEATURES)
    axes = _image_axes(fig)
    assert len(axes) == 3 * 4
    for ax in axes:
        im = ax.images[0]
        assert im.get_array().shape == (5, 25) and im.origin == "lower"  # time along x
    np.testing.assert_array_equal(axes[2].images[0].get_array(), dev[..., 2].T)
    labels = {ax.get_xlabel() for ax in fig.axes}
    assert "time" in labels
    _png(fig, tmp_path / "features.png")
    # the input of a 49 x 10 x 1 MFCC model in a panel: a labelled time x feature heat map
    x = rng.normal(size=(49, 10, 1)).astype(np.float32)
    sal = rng.random((49, 10))
    fig = figures.panel(x, sal, dev, "panel", input_kind=figures.FEATURES,
                        map_form=figures.FEATURES)
    ax_in = fig.axes[0]
    assert ax_in.get_xlabel() == "time" and ax_in.get_ylabel() == "feature"
    np.testing.assert_array_equal(ax_in.images[0].get_array(), x[..., 0].T)
    assert fig.axes[1].images[1].get_array().shape == (10, 49)  # saliency over the input
    _png(fig, tmp_path / "panel_features.png")


def test_a_time_x_channel_tensor_is_one_heat_map_per_source(tmp_path):
    rng = np.random.default_rng(5)
    dev = rng.random((1, 20, 8))
    diff = np.zeros((1, 20, 8), int)
    diff[0, 4, 7] = -2
    fig = figures.comparison_grid({"device": dev, "TFLM": dev, "float": None},
                                  {"device - TFLM": diff}, form=figures.MATRIX)
    axes = _image_axes(fig)
    assert len(axes) == 3
    assert all(ax.images[0].get_array().shape == (8, 20) for ax in axes)
    assert "1 differ" in axes[2].get_title(loc="left")
    assert axes[-1].get_xlabel() == "time (position)"
    _png(fig, tmp_path / "matrix.png")


def test_a_vector_is_a_line_plot_with_its_differences(tmp_path):
    rng = np.random.default_rng(6)
    dev = rng.random(128)
    diff = np.zeros(128, int)
    diff[[3, 50, 90]] = [1, -1, 2]
    fig = figures.comparison_grid({"device": dev, "float": dev + 0.01},
                                  {"XNNPACK - device": diff}, form=figures.VECTOR)
    assert not _image_axes(fig)
    values, lsb = fig.axes[:2]
    np.testing.assert_array_equal(values.lines[0].get_ydata(), dev)
    assert [t.get_text() for t in lsb.get_legend().get_texts()] == ["XNNPACK - device "
                                                                    "(3 differ)"]
    np.testing.assert_array_equal(lsb.lines[1].get_xdata(), [3, 50, 90])
    _png(fig, tmp_path / "vector.png")
    # a 640-vector input in a panel and a methods figure: saliency as a band behind the line
    x = rng.normal(size=640).astype(np.float32)
    sal = rng.random(640)
    fig = figures.panel(x, sal, dev, "panel", input_kind=figures.VECTOR,
                        map_form=figures.VECTOR)
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), x)
    assert fig.axes[1].images[0].get_array().shape == (1, 640)
    _png(fig, tmp_path / "panel_vector.png")
    fig = figures.saliency_methods(x, {"a": sal, "b": sal[::-1]}, form=figures.VECTOR)
    assert len(_image_axes(fig)) == 2
    _png(fig, tmp_path / "methods_vector.png")


def test_colour_bars_keep_their_gradient_in_the_256_colour_png(tmp_path):
    """The palette keeps samples of every colour map drawn: the saliency colour bar (200
    pixels tall) of a figure full of other colours (an RGB input, overlays) shows 100+
    levels; a plain median-cut palette left it 18 bands."""
    rng = np.random.default_rng(0)
    x = rng.random((96, 96, 3)).astype(np.float32)
    sal = rng.random((96, 96))
    fig = figures.saliency_methods(x, {"a": sal, "b": sal[::-1], "c": sal.T})
    fig.canvas.draw()
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    box = bar.get_window_extent()
    img = _png(fig, tmp_path / "methods.png")
    h = img.shape[0]
    column = img[int(h - box.y1) + 3:int(h - box.y0) - 3, int((box.x0 + box.x1) / 2)]
    levels = len(np.unique(column, axis=0))
    assert len(column) > 150 and levels >= 100, (len(column), levels)
