"""Optimized (Cortex-M4 DSP) kernels == reference kernels, bit for bit, on the host.

The kernels in firmware/runtime/src/kernels/cm4 run here with portable C versions of the
DSP intrinsics (the same code path as on the M4). ``ts-kernel-check`` compares each
optimized kernel with its reference kernel on random shapes and parameters (and the
SMLAL-style requantization with TFLM's MultiplyByQuantizedMultiplier on random and edge
triples); the ``-small`` build shrinks the stack buffers so weight blocks, row tiles and
the reference fallbacks all run. The same checker runs on the M4's real instructions (DSP
intrinsics and the hand-written Thumb-2) in tests/runtime/test_opt_m4.py; end to end,
``make bench`` and tests/e2e/test_emulator.py (the firmware defaults to the optimized kernels).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.helpers import KERNELS, first_mismatch
from tests.runtime.native_runner import run_native

ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware"
HOST = FW / "build" / "host"


@pytest.fixture(scope="module")
def checkers() -> list[Path]:
    subprocess.run(["make", "-s", "-C", str(FW), "-f", "host/host.mk", "check"], check=True,
                   capture_output=True, timeout=300)
    return [HOST / "ts-kernel-check", HOST / "ts-kernel-check-small"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_opt_kernels_equal_reference(checkers, seed):
    for exe in checkers:
        proc = subprocess.run([str(exe), str(seed), "1500"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, f"{exe.name} seed {seed}:\n{proc.stdout}{proc.stderr}"
        for kernel in KERNELS:
            assert any(line.startswith(kernel) and line.endswith(" ok")
                       for line in proc.stdout.splitlines()), proc.stdout


def test_checker_catches_a_wrong_kernel(checkers, tmp_path):
    """The harness is not vacuous: a conv kernel with a wrong input offset fails."""
    src = (FW / "runtime/src/kernels/cm4/conv.c").read_text()
    needle = "sum * (uint32_t)p->input_offset"
    assert needle in src
    (tmp_path / "conv.c").write_text(src.replace(needle, "sum * (uint32_t)(p->input_offset + 1)"))
    runtime = FW / "runtime"
    srcs = [str(p) for p in sorted((runtime / "src").glob("*.c"))]
    srcs += [str(p) for p in sorted((runtime / "src/ops").glob("*.c"))]
    srcs += [str(p) for p in sorted((runtime / "src/kernels/ref").glob("*.c"))]
    srcs += [str(p) for p in sorted((runtime / "src/kernels/cm4").glob("*.c"))
             if p.name != "conv.c"]
    exe = tmp_path / "check"
    subprocess.run(["cc", "-O1", "-std=c11", f"-I{runtime}/include", f"-I{runtime}/src",
                    f"-I{runtime}/src/kernels/cm4", "-o",
                    str(exe), *srcs, str(tmp_path / "conv.c"), str(FW / "host/kernel_check.c")],
                   check=True, capture_output=True, timeout=120)
    proc = subprocess.run([str(exe), "1", "300"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "MISMATCH conv" in proc.stdout


def test_ref_and_opt_runners_agree_on_default_model(build_dir):
    """Whole-model check: the runner built with each kernel set gives the same tensors."""
    model = build_dir / "model_int8.tflite"
    subprocess.run(["make", "-s", "-C", str(FW), "-f", "host/host.mk", "TS_KERNELS=ref"],
                   check=True, capture_output=True, timeout=300)
    subprocess.run(["make", "-s", "-C", str(FW), "host"], check=True, capture_output=True,
                   timeout=300)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.integers(-128, 128, size=(1, 28, 28, 1), dtype=np.int8)
        got, _ = run_native(model, x, runner=HOST / "tinyscope-run")
        want, _ = run_native(model, x, runner=HOST / "tinyscope-run-ref")
        assert first_mismatch(got, want) is None
