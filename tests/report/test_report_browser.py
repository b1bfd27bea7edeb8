"""The layer viewer in a real browser (Chromium via Playwright), on a report built from known
tensors: the canvases must show exactly the captured values, for every layer and image the
user picks, with no console error and no network request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tinyscope.report import page as htmlpage
from tinyscope.report import viewer

from tests.report.browser_harness import (
    canvas_rgb,
    chromium,
    colour_index,
    device_value_rgb,
    lut,
    open_page,
    screenshot_is_not_empty,
)

__all__ = ["chromium"]  # the fixture, imported for pytest

RNG = np.random.default_rng(7)
N_IMAGES = 3
SHOWN = [0, 2]  # the images the report shows (indices into the capture)


def _layer(tensor: int, op_index: int, name: str, shape: tuple[int, ...], scale: float,
           zp: int) -> viewer.Layer:
    dev = RNG.integers(-128, 128, size=(N_IMAGES, *shape)).astype(np.int8)
    tflm = dev.copy()
    xnn = dev.copy()
    flat = xnn.reshape(N_IMAGES, -1)
    flat[:, :3] = np.clip(flat[:, :3].astype(np.int32) + 1, -128, 127)
    real = (dev.astype(np.float64) - zp) * scale
    flt = real + RNG.normal(0, 0.4 * scale, size=real.shape)
    return viewer.Layer(tensor, op_index, "CONV_2D", name, scale, zp, dev, tflm, xnn, flt)


@pytest.fixture(scope="module")
def layers() -> list[viewer.Layer]:
    ls = [
        _layer(10, 0, "conv_a", (6, 5, 3), 0.05, -20),   # image layout, not square
        _layer(11, 1, "conv_b", (4, 7, 12), 0.11, 3),    # image layout, more channels
        _layer(12, 2, "seq", (7, 4), 0.02, 0),           # matrix layout (T x C)
        _layer(13, 3, "dense", (10,), 0.3, -5),          # vector layout
    ]
    ls[1].tflm[2, 1, 2, 5] += 1  # one value where the device differs from TFLM (image 2)
    return ls


@pytest.fixture(scope="module")
def report(layers, tmp_path_factory) -> Path:
    inp = viewer.Layer(0, None, "INPUT", "input", 1 / 255, -128,
                       RNG.integers(-128, 128, size=(N_IMAGES, 8, 8, 3)).astype(np.int8))
    images = [{"index": i, "label": str(i % 2), "float_prediction": "1",
               "device_prediction": "1"} for i in SHOWN]
    data = viewer.payload(layers, images, SHOWN, inp)
    page = htmlpage.Page("viewer test", sections=[
        htmlpage.Section("Layers", "every captured layer", [htmlpage.Viewer(data)])])
    return htmlpage.write(tmp_path_factory.mktemp("report") / "report.html", page)


@pytest.fixture(scope="module")
def page(chromium, report):
    pg, log = open_page(chromium, report)
    yield pg, log
    pg.close()


_lut, _index = lut, colour_index


def expected_value_rgb(layer: viewer.Layer, image: int, y: int, x: int, c: int) -> tuple:
    """What the device view must paint: the viridis colour of the real value on the scale
    [min, max] of the device's real values of that layer and image."""
    return device_value_rgb(layer.device[image], layer.scale, layer.zero_point, (y, x, c))


def _check_tiles(pg, layer: viewer.Layer, image: int, points: list[tuple[int, int, int]]):
    for y, x, c in points:
        got = canvas_rgb(pg, f'#ts-grid canvas[data-channel="{c}"]', x, y)
        want = expected_value_rgb(layer, image, y, x, c)
        assert got == want, (layer.name, image, (y, x, c), got, want)


def test_page_loads_offline_without_errors(page) -> None:
    pg, log = page
    assert pg.title() == "viewer test"
    assert log.errors == [] and log.requests == []


def test_first_layer_canvases_show_the_captured_values(page, layers) -> None:
    pg, _ = page
    layer = layers[0]
    assert pg.locator("#ts-grid canvas").count() == 3
    _check_tiles(pg, layer, SHOWN[0], [(0, 0, 0), (5, 4, 2), (2, 3, 1), (5, 0, 0), (0, 4, 1)])


def test_switching_layer_and_image_redraws(page, layers) -> None:
    pg, log = page
    pg.select_option("#ts-image", "1")  # the second shown image: capture image 2
    pg.select_option("#ts-layer", "11")
    layer = layers[1]
    assert pg.locator("#ts-grid canvas").count() == 12
    _check_tiles(pg, layer, SHOWN[1], [(0, 0, 0), (3, 6, 11), (1, 2, 5), (2, 4, 7)])
    # the summary counts the one value that differs from TFLM in this image
    assert "1 values differ from TFLM" in pg.text_content("#ts-layer-summary")
    assert "XNNPACK: 3 differ (max 1 LSB)" in pg.text_content("#ts-layer-summary")
    # the previous/next buttons walk the layers in order
    pg.click("#ts-next")
    assert pg.input_value("#ts-layer") == "12"
    assert pg.get_attribute("#ts-grid", "data-layout") == "matrix"
    pg.click("#ts-prev")
    assert pg.input_value("#ts-layer") == "11"
    assert log.errors == []


def test_difference_view_marks_the_differing_value(page, layers) -> None:
    pg, _ = page
    pg.evaluate("window.tinyscopeViewer.select(1, 11, 'device-tflm')")
    diff = _lut("RdBu_r")
    # the element differing by one LSB (device - TFLM = -1) sits at the blue end of +-1
    assert canvas_rgb(pg, '#ts-grid canvas[data-channel="5"]', 2, 1) == tuple(
        int(v) for v in diff[_index(-1.0, -1.0, 1.0)])
    assert canvas_rgb(pg, '#ts-grid canvas[data-channel="5"]', 0, 0) == tuple(
        int(v) for v in diff[_index(0.0, -1.0, 1.0)])
    assert "device − TFLM" in pg.text_content("#ts-cb-label")
    assert "conv_b" in pg.text_content("#ts-cb-label")


def test_hover_reads_int8_and_real_values(page, layers) -> None:
    pg, _ = page
    pg.evaluate("window.tinyscopeViewer.select(0, 10, 'device')")
    layer = layers[0]
    box = pg.locator('#ts-grid canvas[data-channel="1"]').bounding_box()
    zoom = box["width"] / 5
    pg.mouse.move(box["x"] + 3.5 * zoom, box["y"] + 2.5 * zoom)  # x 3, y 2
    q = int(layer.device[SHOWN[0], 2, 3, 1])
    text = pg.text_content("#ts-readout")
    assert "ch 1 (y 2, x 3)" in text and f"device q={q} " in text
    assert f"{(q - layer.zero_point) * layer.scale:.4f}" in text


def test_sorted_view_puts_the_most_drifting_channel_first(page, layers) -> None:
    pg, _ = page
    pg.evaluate("window.tinyscopeViewer.select(0, 11, 'device')")
    pg.select_option("#ts-sort", "energy")
    pg.select_option("#ts-topk", "16")
    layer = layers[1]
    real = (layer.device[SHOWN[0]].astype(np.float64) - layer.zero_point) * layer.scale
    energy = np.sqrt((real.reshape(-1, 12) ** 2).mean(0))
    first = pg.get_attribute("#ts-grid canvas", "data-channel")
    assert int(first) == int(np.argmax(energy))
    pg.select_option("#ts-sort", "index")


def test_vector_and_matrix_layouts_draw(page, layers) -> None:
    pg, log = page
    pg.evaluate("window.tinyscopeViewer.select(0, 12, 'device')")
    layer = layers[2]
    real = (layer.device[SHOWN[0]].astype(np.float64) - layer.zero_point) * layer.scale
    lo, hi = float(real.min()), float(real.max())
    for t, c in [(0, 0), (6, 3), (3, 1)]:
        want = tuple(int(v) for v in _lut("viridis")[_index(float(real[t, c]), lo, hi)])
        assert canvas_rgb(pg, "#ts-grid canvas", c, t) == want
    pg.evaluate("window.tinyscopeViewer.select(0, 13, 'device')")
    assert pg.get_attribute("#ts-grid", "data-layout") == "vector"
    png = pg.locator("#ts-grid canvas").screenshot()
    ok, _ = screenshot_is_not_empty(png, min_colours=5)
    assert ok
    assert log.errors == []


def test_screenshot_is_not_empty(page, tmp_path) -> None:
    pg, _ = page
    pg.evaluate("window.tinyscopeViewer.select(0, 11, 'device')")
    png = pg.screenshot(full_page=True)
    (tmp_path / "viewer.png").write_bytes(png)
    ok, colours = screenshot_is_not_empty(png)
    assert ok, f"the screenshot looks empty ({colours} colours)"


def test_a_wide_per_layer_table_scrolls_inside_the_page(chromium, layers, tmp_path) -> None:
    """A float-I/O model's per-layer table (11 columns, long layer names) was wider than the
    page at 1300 px: the 'verified by digest' column was cut off. It scrolls in its box now."""
    inp = viewer.Layer(0, None, "INPUT", "input", 1 / 255, -128,
                       RNG.integers(-128, 128, size=(N_IMAGES, 8, 8, 3)).astype(np.int8))
    images = [{"index": i, "label": "0", "float_prediction": "1", "device_prediction": "1"}
              for i in SHOWN]
    data = viewer.payload(layers, images, SHOWN, inp)
    cols = ["op", "Keras layer", "operator", "shape", "device ≠ TFLM", "XNNPACK max LSB",
            "drift accumulated", "drift local", "SNR dB", "cosine", "verified by digest"]
    rows = [htmlpage.Row([htmlpage.Cell(f"{c} of global_average_pooling2d_{i}_long_name")
                          for c in cols]) for i in range(3)]
    page = htmlpage.Page("wide table", sections=[
        htmlpage.Section("Layers", "", [htmlpage.Viewer(data)]),
        htmlpage.Section("Per layer", "", [htmlpage.Table(cols, rows)])])
    pg, log = open_page(chromium, htmlpage.write(tmp_path / "report.html", page))
    try:
        page_w, view_w = pg.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert page_w <= view_w, "the table makes the page scroll sideways"
        box = pg.evaluate("(() => { const t = document.querySelector('table');"
                          " const b = t.parentElement; return [getComputedStyle(b).overflowX,"
                          " b.scrollWidth > b.clientWidth]; })()")
        assert box == ["auto", True]  # its own scroll bar reaches the last column
        assert log.errors == []
    finally:
        pg.close()


def test_an_input_of_two_channels_is_drawn_as_an_image_of_its_first_channel(
        chromium, layers, tmp_path) -> None:
    """A 40x24x2 sensor input was drawn as a 256-value strip at the top of the viewer while
    the report's figures show it as an image (channel 0): now the same image, captioned."""
    x = RNG.integers(-128, 128, size=(N_IMAGES, 6, 4, 2)).astype(np.int8)
    inp = viewer.Layer(0, None, "INPUT", "input", 0.1, 0, x)
    images = [{"index": i, "label": "0", "float_prediction": "1", "device_prediction": "1"}
              for i in SHOWN]
    page = htmlpage.Page("two channels", sections=[htmlpage.Section(
        "Layers", "", [htmlpage.Viewer(viewer.payload(layers, images, SHOWN, inp))])])
    pg, log = open_page(chromium, htmlpage.write(tmp_path / "report.html", page))
    try:
        assert pg.evaluate("[document.getElementById('ts-input').width,"
                           " document.getElementById('ts-input').height]") == [4, 6]
        for y, xx in ((0, 0), (5, 3), (2, 1)):
            v = int(x[SHOWN[0], y, xx, 0]) + 128
            assert canvas_rgb(pg, "#ts-input", xx, y) == (v, v, v)
        assert "(channel 0 of 2)" in pg.inner_text("#ts-input-caption")
        assert log.errors == []
    finally:
        pg.close()
