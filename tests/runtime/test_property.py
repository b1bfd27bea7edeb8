"""Property tests: random small Keras CNNs (every supported layer kind, random shapes,
weights and calibration), converted to full int8; every tensor of the runtime equals TFLM,
the runtime refuses exactly the models TFLM cannot prepare (TFLM runs in a worker process,
so its abort is a recorded refusal, not a crash), and the runtime's arena is never larger
than TFLM's (`print_allocations` total).

30 models by default; 300 behind the `slow` marker (make test-slow), derandomized from the
seed in ``SEED`` (default 0, printed; ``make test-slow SEED=7`` explores other models). The
long run goes to the end whatever it finds and prints its summary (models run, refused by
the reference, refused by us, mismatches); it fails after that if anything mismatched."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from tinyscope.convert import graph
from tinyscope.convert.manifest import tflm_arena
from tinyscope.convert.quantize import quantize_keras

from tests.conftest import SUMMARY_KEY
from tests.runtime.archs import architectures, build
from tests.runtime.helpers import (
    build_runner,
    calibration,
    quantize_float_io,
    random_float_inputs,
    random_int8_inputs,
    run_with_tflm,
)

N_INPUTS = 3
SEED = int(os.environ.get("SEED", "0"))
STATS: dict[str, int] = {}
ARENA_RATIOS: list[float] = []
COUNTS = {"models run": 0, "refused by the reference": 0, "refused by us": 0,
          "mismatches": 0}
REFUSALS: list[str] = []
MISMATCHES: list[str] = []


def summary_lines() -> list[str]:
    lines = [f"[property] seed {SEED} (SEED=N to change): "
             + ", ".join(f"{k} {v}" for k, v in COUNTS.items())]
    lines += [f"[property]   reference refused: {r}" for r in REFUSALS]
    lines += [f"[property]   MISMATCH: {m}" for m in MISMATCHES]
    if STATS:
        lines.append(f"[property] operators checked: {dict(sorted(STATS.items()))}")
    if ARENA_RATIOS:
        lines.append(f"[property] arena / TFLM arena: min {min(ARENA_RATIOS):.3f}, "
                     f"max {max(ARENA_RATIOS):.3f} over {len(ARENA_RATIOS)} models")
    return lines


@pytest.fixture(scope="module", autouse=True)
def runner(request):
    build_runner()
    yield
    # printed after the run by tests/conftest.py (pytest_terminal_summary), also with -q
    request.config.stash.setdefault(SUMMARY_KEY, []).extend(summary_lines())


def check_architecture(arch: dict) -> None:
    """One model: counted as run, refused (by both sides) or mismatching (AssertionError)."""
    net = build(arch)
    calib = calibration(arch["input"], arch["seed"])
    if arch.get("float_io"):  # float32 input and output: QUANTIZE / DEQUANTIZE edges
        tfl = quantize_float_io(net, calib)
        x = random_float_inputs(tfl, N_INPUTS, arch["seed"])
        STATS["float_io"] = STATS.get("float_io", 0) + 1
    else:
        tfl = quantize_keras(net, calib)
        x = random_int8_inputs(tfl, N_INPUTS, arch["seed"])
    out = run_with_tflm(tfl, x)
    COUNTS["models run"] += 1
    COUNTS["refused by the reference"] += bool(out.tflm_refused)
    COUNTS["refused by us"] += bool(out.runtime_refused)
    if out.mismatch:
        COUNTS["mismatches"] += 1
        raise AssertionError(f"architecture {json.dumps(arch)}: {out.mismatch}")
    if out.tflm_refused:
        REFUSALS.append(f"{json.dumps(arch)}: {out.tflm_refused}")
        return
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.tflite"
        path.write_bytes(tfl)
        tflm = tflm_arena(path)
    assert tflm is not None and tflm.get("total", 0) > 0, "TFLM printed no arena figures"
    if out.arena > tflm["total"]:
        COUNTS["mismatches"] += 1
        raise AssertionError(
            f"architecture {json.dumps(arch)}: arena {out.arena} B > TFLM's {tflm['total']} B")
    ARENA_RATIOS.append(out.arena / tflm["total"])
    for op in graph.graph(tfl)[0]:
        STATS[op.name] = STATS.get(op.name, 0) + 1


@seed(SEED)
@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_random_models_equal_tflm(arch):
    check_architecture(arch)


@pytest.mark.slow
@seed(SEED)
@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_random_models_equal_tflm_long(arch):
    """Every model is checked; a mismatch is recorded and the run goes on."""
    try:
        check_architecture(arch)
    except AssertionError as err:
        MISMATCHES.append(str(err))
    except Exception as err:  # a model that cannot even be built or converted: recorded too
        COUNTS["mismatches"] += 1
        MISMATCHES.append(f"architecture {json.dumps(arch)}: {type(err).__name__}: {err}")


@pytest.mark.slow
def test_long_run_had_no_mismatch():
    """After the long run (pytest runs a module's tests in order): nothing mismatched."""
    assert not MISMATCHES, "\n".join(MISMATCHES)
