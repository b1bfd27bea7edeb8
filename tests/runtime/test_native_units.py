"""Native C unit tests of two runtime parts with no interpreter around them: the arena
planner (``ts_plan.c``) and the bounds-checked flatbuffer reader (``ts_fb.c``).

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
