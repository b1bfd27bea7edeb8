"""Property tests: random small Keras CNNs (every supported layer kind, random shapes,
weights and calibration), converted to full int8; every tensor of the runtime equals TFLM,
and the runtime's arena is never larger than TFLM's (`print_allocations` total).
30 models by default, 300 behind the `slow` marker (make test-slow)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from tinyscope.convert import graph
from tinyscope.convert.manifest import tflm_arena
from tinyscope.convert.quantize import quantize_keras

from tests.runtime.archs import architectures, build
from tests.runtime.helpers import (
    build_runner,
    calibration,
    compare_with_tflm,
    quantize_float_io,
    random_float_inputs,
    random_int8_inputs,
    tflite_aborts_on,
)

N_INPUTS = 3
STATS: dict[str, int] = {}
ARENA_RATIOS: list[float] = []


@pytest.fixture(scope="module", autouse=True)
def runner():
    build_runner()
    yield
    print(f"\n[property] models and operators checked: {dict(sorted(STATS.items()))}")
    if ARENA_RATIOS:
        print(f"[property] arena / TFLM arena: min {min(ARENA_RATIOS):.3f}, "
              f"max {max(ARENA_RATIOS):.3f} over {len(ARENA_RATIOS)} models")


def check_architecture(arch: dict) -> None:
    net = build(arch)
    calib = calibration(arch["input"], arch["seed"])
    if arch.get("float_io"):
        tfl = quantize_float_io(net, calib)
    else:
        tfl = quantize_keras(net, calib)
    if tflite_aborts_on(tfl):  # TFLite would abort the process: nothing to compare with
        STATS["skipped (TFLite aborts)"] = STATS.get("skipped (TFLite aborts)", 0) + 1
        assume(False)
    x = (random_float_inputs if arch.get("float_io") else random_int8_inputs)(
        tfl, N_INPUTS, arch["seed"])
    msg, arena = compare_with_tflm(tfl, x)
    assert msg is None, f"architecture {json.dumps(arch)}: {msg}"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.tflite"
        path.write_bytes(tfl)
        tflm = tflm_arena(path)
    assert tflm is not None and tflm.get("total", 0) > 0, "TFLM printed no arena figures"
    assert arena <= tflm["total"], (
        f"architecture {json.dumps(arch)}: arena {arena} B > TFLM's {tflm['total']} B")
    ARENA_RATIOS.append(arena / tflm["total"])
    STATS["models"] = STATS.get("models", 0) + 1
    if arch.get("float_io"):
        STATS["float_io"] = STATS.get("float_io", 0) + 1
    for op in graph.graph(tfl)[0]:
        STATS[op.name] = STATS.get(op.name, 0) + 1


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_random_models_equal_tflm(arch):
    check_architecture(arch)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_random_models_equal_tflm_long(arch):
    check_architecture(arch)
