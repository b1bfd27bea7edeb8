"""Fixtures shared across test modules, and the one rule for emulator tests: a test marked
``emulator`` is skipped, with the reason, when qemu-system-arm or arm-none-eabi-gcc is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMULATOR_TOOLS = ("qemu-system-arm", "arm-none-eabi-gcc")
# Lines a test module leaves for the end of the run (pytest_terminal_summary prints them).
SUMMARY_KEY = pytest.StashKey[list]()


def pytest_collection_modifyitems(config, items) -> None:
    missing = [tool for tool in EMULATOR_TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"needs {' and '.join(missing)} (make setup installs them)")
    for item in items:
        if item.get_closest_marker("emulator"):
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _own_digest_cache(tmp_path_factory):
    """The tests' TFLM digest cache (``--cache-dir``'s default) is their own, never the
    user's ~/.cache/tinyscope."""
    old = os.environ.get("TINYSCOPE_CACHE_DIR")
    os.environ["TINYSCOPE_CACHE_DIR"] = str(tmp_path_factory.mktemp("tinyscope-cache"))
    yield
    if old is None:
        os.environ.pop("TINYSCOPE_CACHE_DIR", None)
    else:
        os.environ["TINYSCOPE_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    """``tinyscope convert models/default.keras`` into a temporary build directory, once per
    session. Tests read it; a test that needs to change it copies it first."""
    from tinyscope.convert import flow

    out = tmp_path_factory.mktemp("default-build")
    flow.convert(ROOT / "models/default.keras", out, num_inputs=4)
    return out


@pytest.fixture(scope="module")
def elf(build_dir, tmp_path_factory) -> Path:
    """The emulated board's firmware (QEMU mps2-an386) for the module's ``build_dir``."""
    from tinyscope.device import boards

    return boards.build_firmware(build_dir, quiet=True,
                                 out_dir=tmp_path_factory.mktemp("firmware"))


@pytest.fixture
def board(elf, tmp_path):
    """QEMU running ``elf``; always stopped after the test, also when it fails."""
    from tinyscope.device import boards

    with boards.emulated_board(elf, tmp_path / "qemu") as b:
        yield b


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Summaries tests leave in ``config.stash`` (the property tests' counts), printed last."""
    for line in config.stash.get(SUMMARY_KEY, []):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def mlperf_tiny(request):
    """``mlperf_tiny(name) -> (keras_path, int8_tflite_path)``: the Keras twins of the MLPerf
    Tiny reference architectures (tinyscope.bench_models finished as trained, see
    tests/mlperf_tiny.py), converted once and cached across sessions in pytest's cache
    directory."""
    from tests import mlperf_tiny as arch

    cache = request.config.cache.mkdir("mlperf_tiny")
    return lambda name: arch.cached_int8(name, cache)
