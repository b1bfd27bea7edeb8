"""Native C unit tests of two runtime parts with no interpreter around them: the arena
planner (``ts_plan.c``) and the bounds-checked flatbuffer reader (``ts_fb.c``); and of the
per-channel tables kept outside the arena (``test_tables.c``, the whole runtime on a small
converted model with CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED).

Each ``tests/runtime/c/test_<unit>.c`` is built with the host C compiler and the firmware's
warning flags, once optimized and once with AddressSanitizer + UndefinedBehaviorSanitizer,
and must exit 0 (it prints every failed check with its line)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "firmware" / "runtime"
C_TESTS = Path(__file__).resolve().parent / "c"
UNITS = {"plan": "ts_plan.c", "fb": "ts_fb.c"}
WARN = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes"]
BUILDS = {
    "O2": ["-O2"],
    "asan-ubsan": ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                   "-fno-sanitize-recover=all"],
}
CC = shutil.which("gcc") or shutil.which("cc")


@pytest.mark.skipif(CC is None, reason="no host C compiler (gcc)")
@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_native_unit(unit: str, build: str, tmp_path: Path) -> None:
    exe = tmp_path / f"test_{unit}"
    cmd = [CC, *WARN, *BUILDS[build], f"-I{RUNTIME / 'src'}", f"-I{RUNTIME / 'include'}",
           "-o", str(exe), str(C_TESTS / f"test_{unit}.c"), str(RUNTIME / "src" / UNITS[unit])]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "all checks passed" in ran.stdout


def _small_model() -> bytes:
    from tinyscope.convert.quantize import quantize_keras

    from tests.runtime.helpers import calibration, keras_model

    def layers(x):
        import keras

        x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
        x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
        x = keras.layers.Conv2D(16, 1)(x)
        x = keras.layers.Flatten()(x)
        return keras.layers.Dense(5)(x)

    shape = (12, 12, 2)
    return quantize_keras(keras_model(layers, shape), calibration(shape, seed=5))


@pytest.mark.skipif(CC is None, reason="no host C compiler (gcc)")
@pytest.mark.parametrize("build", sorted(BUILDS))
def test_tables_outside_the_arena(build: str, tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(_small_model())
    src = RUNTIME / "src"
    sources = sorted(str(p) for d in (src, src / "ops", src / "kernels" / "ref",
                                      src / "kernels" / "cm4") for p in d.glob("*.c"))
    exe = tmp_path / "test_tables"
    cmd = [CC, *WARN, *BUILDS[build], f"-I{src}", f"-I{RUNTIME / 'include'}",
           "-DTS_USE_OPT_KERNELS", "-o", str(exe), str(C_TESTS / "test_tables.c"), *sources]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(exe), str(model)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "all checks passed" in ran.stdout
