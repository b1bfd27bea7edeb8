"""A real browser for the report tests: Debian's Chromium driven by Playwright.

Playwright is pointed at the system Chromium (``executable_path``); it never downloads a
browser. Every page load records console errors, uncaught exceptions and requests that
failed or left the local file (the report must work offline from ``file://``).
"""

from __future__ import annotations

import io
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@dataclass
class PageLog:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One browser per test module (Playwright's sync API allows one instance at a time per
    thread, so a module's browser is closed before the next module starts its own)."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} missing (make setup-system installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright missing (make setup installs it)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, path: Path, width: int = 1300, height: int = 1000):
    """Load ``path`` from disk; returns (page, log). Any request other than the file itself
    is aborted and recorded."""
    page = browser.new_page(viewport={"width": width, "height": height})
    log = PageLog()
    page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: log.errors.append(f"request failed: {r.url}"))
    url = Path(path).resolve().as_uri()

    def route(r) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            log.requests.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url)
    page.wait_for_function("window.tinyscopeViewer !== undefined")
    return page, log


def canvas_rgb(page, selector: str, x: int, y: int) -> tuple[int, int, int]:
    """The RGB of intrinsic pixel (x, y) of the canvas matched by ``selector``."""
    rgba = page.evaluate(
        "([sel, x, y]) => Array.from(document.querySelector(sel).getContext('2d')"
        ".getImageData(x, y, 1, 1).data)", [selector, x, y])
    return tuple(rgba[:3])


def screenshot_is_not_empty(png: bytes, min_colours: int = 50) -> tuple[bool, int]:
    """A screenshot shows something: many distinct colours and not mostly one colour."""
    from PIL import Image

    im = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(im, axis=0, return_counts=True)
    return len(colours) >= min_colours and counts.max() < 0.97 * len(im), len(colours)


def lut(name: str) -> np.ndarray:
    """The viewer's colour map (256 x RGB), as the report embeds it."""
    import base64

    from tinyscope.report import viewer

    return np.frombuffer(base64.b64decode(viewer.colormap_b64(name)), np.uint8).reshape(256, 3)


def colour_index(v: float, lo: float, hi: float) -> int:
    """viewer.js's rule: Math.round((v - lo) / (hi - lo) * 255), clamped to 0..255."""
    return min(255, max(0, math.floor((v - lo) / (hi - lo) * 255 + 0.5)))


def device_value_rgb(device: np.ndarray, scale: float, zero_point: int,
                     where: tuple[int, ...]) -> tuple[int, int, int]:
    """The colour the device view paints at ``where`` of one image's ``device`` int8 tensor:
    viridis over [min, max] of that tensor's real values."""
    real = (device.astype(np.float64) - zero_point) * scale
    lo, hi = float(real.min()), float(real.max())
    if not hi > lo:
        hi = lo + scale
    return tuple(int(v) for v in lut("viridis")[colour_index(float(real[where]), lo, hi)])
