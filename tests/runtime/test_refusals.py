"""Models the reference interpreters cannot prepare: the tinyscope runtime refuses exactly
the models TFLM refuses, and a reference that aborts is reported, never a crash."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from tinyscope.analysis import references
from tinyscope.convert import check

from tests.runtime.refusal_models import tiny_logit_tflite

TFLM_PREPARE = """
import sys
from tflite_micro import runtime
runtime.Interpreter.from_file(sys.argv[1])
"""
LITERT_REF_PREPARE = """
import sys
from ai_edge_litert.interpreter import Interpreter, OpResolverType
Interpreter(model_path=sys.argv[1],
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF).allocate_tensors()
"""


def prepares(script: str, model: bytes) -> bool:
    """True if the reference prepares ``model``; False if it dies (in a child process)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.tflite"
        path.write_bytes(model)
        proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                              timeout=300, check=False)
    return proc.returncode == 0


def test_runtime_refuses_exactly_what_tflm_refuses():
    """Logit ranges around the softmax limit: on each model the runtime and TFLM (and
    LiteRT's reference kernels) agree, and both outcomes occur."""
    outcomes = []
    # beta * scale * 2^26 is 0.38, 0.96, 1.0003, 1.04 and 38 for these weight scales
    for weight_scale in (1e-6, 2.5e-6, 2.6e-6, 2.7e-6, 1e-4):
        model = tiny_logit_tflite(weight_scale)
        refusal = check.check_model(model)
        tflm = prepares(TFLM_PREPARE, model)
        assert tflm == prepares(LITERT_REF_PREPARE, model), weight_scale
        assert (refusal is None) == tflm, (weight_scale, refusal)
        outcomes.append(tflm)
    assert True in outcomes and False in outcomes


def test_refusal_names_the_operator_and_the_numbers():
    refusal = check.check_model(tiny_logit_tflite())
    assert refusal is not None
    assert (refusal.op_index, refusal.op) == (3, "SOFTMAX")
    assert "beta x input scale = 1 x" in refusal.detail and "1.49e-08" in refusal.detail
    assert "Train the model" in refusal.advice


@pytest.fixture(scope="module")
def refused_refs():
    q = np.zeros((2, 28, 28, 1), np.int8)
    return references.compute(tiny_logit_tflite(), q, kinds=references.INT8_REFERENCES)


def test_aborting_references_become_reasons(refused_refs):
    for kind in ("tflm", "litert_ref"):
        msg = refused_refs.missing[kind]
        assert msg.startswith(f"{references.LABELS[kind]} aborted (SIGABRT) preparing SOFTMAX op 3")
        assert "the device refuses this model too" in msg
    # LiteRT's default kernels prepare it: that column is still there
    assert refused_refs.tensors["xnnpack"][8].shape == (2, 10)
    with pytest.raises(references.ReferenceError, match="TFLM .* aborted"):
        refused_refs.require("tflm")


def test_references_match_in_process_results(build_dir):
    from tinyscope.analysis import floatref, reference

    model = (build_dir / "model_int8.tflite").read_bytes()
    q = np.random.default_rng(1).integers(-128, 128, (3, 28, 28, 1), dtype=np.int8)
    refs = references.compute(model, q, kinds=references.INT8_REFERENCES)
    assert refs.missing == {}
    want = floatref.stack(reference.tflm_tensors(model, q))
    assert set(refs.tensors["tflm"]) == set(want)
    for idx, arr in want.items():
        np.testing.assert_array_equal(refs.tensors["tflm"][idx], arr)


def test_cache_is_reused_and_keyed_by_inputs(build_dir, tmp_path):
    model = (build_dir / "model_int8.tflite").read_bytes()
    q = np.random.default_rng(2).integers(-128, 128, (2, 28, 28, 1), dtype=np.int8)
    first = references.compute(model, q, kinds=("tflm",), cache_dir=tmp_path)
    again = references.compute(model, q, kinds=("tflm",), cache_dir=tmp_path)
    assert not first.cached and again.cached
    for idx, arr in first.tensors["tflm"].items():
        np.testing.assert_array_equal(again.tensors["tflm"][idx], arr)
    other = references.compute(model, q[:1], kinds=("tflm",), cache_dir=tmp_path)
    assert not other.cached and other.tensors["tflm"][0].shape[0] == 1
