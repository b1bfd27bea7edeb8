"""The firmware fuzzers (firmware/fuzz, libFuzzer + ASan + UBSan) for a short time each.

``make fuzz-firmware`` runs each target for >= 1,000,000 executions; here each runs
FUZZ_SECONDS so the default test run stays short. Every target must exit 0: no crash, no
sanitizer report, no hang (libFuzzer -timeout), no leak.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
FUZZ_SECONDS = int(os.environ.get("TS_FUZZ_SECONDS", "20"))
TARGETS = ("fuzz_model", "fuzz_frame", "fuzz_commands")
SUPPRESSIONS = FIRMWARE / "fuzz" / "known.supp"

if shutil.which("clang") is None:
    pytest.skip("needs clang (make setup)", allow_module_level=True)


@pytest.fixture(scope="module")
def fuzz_build(tmp_path_factory) -> Path:
    from tinyscope.convert import flow

    model = tmp_path_factory.mktemp("model")
    flow.convert(ROOT / "models/default.keras", model, num_inputs=2)
    build = tmp_path_factory.mktemp("fuzz")
    subprocess.run(["make", "-s", "-f", "fuzz/fuzz.mk", f"MODEL_DIR={model}", f"BUILD={build}",
                    "all"], cwd=FIRMWARE, check=True, capture_output=True, timeout=600)
    subprocess.run([str(ROOT / ".venv/bin/python"), "fuzz/seeds.py", "--model-dir", str(model),
                    "--out", str(build / "seeds")], cwd=FIRMWARE, check=True,
                   capture_output=True, timeout=600)
    return build


def _run(binary: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, UBSAN_OPTIONS=f"halt_on_error=1:print_stacktrace=1:"
               f"suppressions={SUPPRESSIONS}")
    return subprocess.run([str(binary), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_finds_nothing(fuzz_build, target, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    proc = _run(fuzz_build / target, f"-max_total_time={FUZZ_SECONDS}", "-timeout=10",
                "-rss_limit_mb=2048", "-print_final_stats=1",
                f"-artifact_prefix={tmp_path}/", str(corpus), str(fuzz_build / "seeds" / target),
                timeout=FUZZ_SECONDS + 120)
    log = proc.stderr
    runs = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", log).group(1))
    report = "\n".join(line for line in log.splitlines()
                       if re.search(r"ERROR|SUMMARY|runtime error|Test unit written", line))
    assert proc.returncode == 0, f"{target} after {runs} executions:\n{report}"
    assert runs > 1000
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
    print(f"{target}: {runs} executions in {FUZZ_SECONDS} s, 0 crashes")


def test_runtime_reproducers_run_cleanly(fuzz_build):
    """Models the fuzzer once crashed the runtime with (signed int32 overflow from int8
    zero points outside [-128, 127], an extreme bias, an extreme activation scale): now
    refused (TS_ERR_BAD_MODEL) or run with defined arithmetic, with no sanitizer report."""
    repro = sorted((FIRMWARE / "fuzz" / "reproducers").glob("*.tflite"))
    assert len(repro) >= 4
    env = dict(os.environ, UBSAN_OPTIONS="halt_on_error=1")
    proc = subprocess.run([str(fuzz_build / "fuzz_model"), *map(str, repro)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "runtime error" not in proc.stderr, proc.stderr[-2000:]


def test_runtime_rejects_zero_point_outside_int8(build_dir):
    """Minimal reproducer through the native runner: the default model with the first
    layer's int8 output zero point set to 1895825543 (the fuzzer's value) is refused with a
    message naming the tensor, instead of overflowing int32 in CONV_2D."""
    import struct

    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tinyscope.errors import TinyscopeError

    from tests.runtime.native_runner import run_native

    model = bytearray((build_dir / "model_int8.tflite").read_bytes())
    sg = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    t = sg.Operators(0).Outputs(0)
    q = sg.Tensors(t).Quantization()
    pos = q._tab.Vector(q._tab.Offset(10))  # Quantization.zero_point: int64 vector
    struct.pack_into("<q", model, pos, 1895825543)
    shape = [int(d) for d in sg.Tensors(sg.Inputs(0)).ShapeAsNumpy()][1:]
    with pytest.raises(TinyscopeError, match=f"tensor {t} zero point 1895825543 outside"):
        run_native(bytes(model), np.zeros(shape, np.int8))


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), -0.5, 0.0])
def test_runtime_rejects_scales_that_are_not_positive_finite(build_dir, scale):
    """A NaN scale (the fuzzer's find: RELU6's prepare converted NaN to int, undefined
    behaviour), an infinite, negative or zero one: refused at load, naming the tensor."""
    import struct

    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tinyscope.errors import TinyscopeError

    from tests.runtime.native_runner import run_native

    model = bytearray((build_dir / "model_int8.tflite").read_bytes())
    sg = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    t = sg.Operators(0).Outputs(0)
    q = sg.Tensors(t).Quantization()
    pos = q._tab.Vector(q._tab.Offset(8))  # Quantization.scale: float32 vector
    struct.pack_into("<f", model, pos, scale)
    shape = [int(d) for d in sg.Tensors(sg.Inputs(0)).ShapeAsNumpy()][1:]
    with pytest.raises(TinyscopeError, match=f"tensor {t} scale 0 is not a positive finite"):
        run_native(bytes(model), np.zeros(shape, np.int8))
