"""tools/cmsisnn_compare.py's own logic, without CMSIS-NN (the measurement itself needs a
CMSIS-NN checkout and is run by hand; docs/bench.md "How we compare"): the layer file's
header agrees with tools/cmsisnn/harness.c, TFLM's quantization arithmetic, the layer
descriptions read from a converted model reproduce TFLM's outputs, and the table."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("cmsisnn_compare",
                                                  ROOT / "tools" / "cmsisnn_compare.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cmsisnn_compare"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def lay(tool):
    """tools/cmsisnn/cmsisnn_layers.py, as the tool imported it."""
    return sys.modules["cmsisnn_layers"]


def _harness_enum(name: str) -> list[str]:
    text = (ROOT / "tools" / "cmsisnn" / "harness.c").read_text()
    body = re.search(r"enum " + name + r" \{(.*?)\};", text, re.S)
    assert body, f"harness.c has no enum {name}"
    return [t.strip() for t in body.group(1).replace("\n", " ").split(",") if t.strip()]


def test_the_header_fields_are_the_harness_enum_in_order(lay):
    names = _harness_enum("field")
    assert names[-1] == "F_COUNT"
    assert [n.removeprefix("F_") for n in names[:-1]] == list(lay.FIELDS)


def test_the_operator_codes_are_tflite_builtin_codes_and_the_harness_s(lay):
    from ai_edge_litert import schema_py_generated as schema

    for name, code in lay.OP_CODES.items():
        assert getattr(schema.BuiltinOperator, name) == code
    text = (ROOT / "tools" / "cmsisnn" / "harness.c").read_text()
    for name, code in lay.OP_CODES.items():
        assert re.search(rf"OP_{name} = {code}\b", text), name


def test_quantize_multiplier_is_tflms(lay):
    from tinyscope.analysis.drift import quantize_multiplier as drift_qm

    rng = np.random.default_rng(1)
    for d in np.concatenate([rng.uniform(1e-6, 1, 500), rng.uniform(1, 1e4, 100)]):
        m, s = lay.quantize_multiplier(float(d))
        assert 1 << 30 <= m < 1 << 31
        assert abs(m * 2.0 ** (s - 31) - d) <= d * 2.0 ** -30
        assert (m, s) == drift_qm(float(d))  # the project's other copy, for non-tie values
    assert lay.quantize_multiplier(0.0) == (0, 0)
    assert lay.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)  # rounds up to 2^31
    assert lay.quantize_multiplier(2.0 ** -40) == (0, 0)  # shift < -31: TFLM gives zero
    assert lay.tflite_round(2.5) == 3 and lay.tflite_round(-2.5) == -3


def test_activation_ranges_and_padding(lay):
    assert lay.activation_range(lay.ACT_NONE, 0.1, 5) == (-128, 127)
    assert lay.activation_range(lay.ACT_RELU, 0.1, -100) == (-100, 127)
    assert lay.activation_range(lay.ACT_RELU6, 0.05, -128) == (-128, -8)
    assert lay.activation_range(lay.ACT_RELU6, 0.01, -128) == (-128, 127)
    with pytest.raises(lay.CompareError):
        lay.activation_range(4, 0.1, 0)
    assert lay.same_padding(48, 24, 3, 2, 1) == 0  # SAME stride 2 pads after only
    assert lay.same_padding(6, 6, 3, 1, 1) == 1
    assert lay.same_padding(28, 26, 3, 1, 1) == 0  # VALID


def test_softmax_parameters_follow_tflms_int8_prepare(lay):
    mult, shift, diff_min = lay.softmax_params(1.0, 1 / 16)
    assert mult * 2.0 ** (shift - 31) == pytest.approx(2.0 ** 26 / 16, rel=1e-9)
    assert diff_min == -math.floor(31 * 2.0 ** 26 / 2.0 ** shift)
    assert lay.softmax_params(1.0, 1e6)[0] == (1 << 31) - 1  # capped multiplier


def test_a_layer_file_is_the_header_then_aligned_sections(lay):
    layer = lay.Layer("ADD", {"BATCH": 1, "OUT_C": 5}, np.arange(5, dtype=np.int8),
                       np.arange(5, dtype=np.int8) * 2, in2=np.full(5, -1, np.int8))
    data = layer.to_bytes()
    hdr = dict(zip(lay.FIELDS, struct.unpack_from(f"<{len(lay.FIELDS)}i", data), strict=True))
    assert hdr["MAGIC"] == 0x4E4E4D43 and hdr["OP"] == 0 and hdr["OUT_C"] == 5
    assert (hdr["N_IN1"], hdr["N_IN2"], hdr["N_OUT"], hdr["N_FILTER"]) == (5, 5, 5, 0)
    pos = 4 * len(lay.FIELDS)
    pos += -pos % 16
    assert data[pos:pos + 5] == bytes(range(5))
    pos += 5 + (-(pos + 5) % 16)
    assert data[pos:pos + 5] == b"\xff" * 5
    with pytest.raises(ValueError):
        lay.Layer("ADD", {"NOT_A_FIELD": 1}, layer.in1, layer.out).to_bytes()


def _requant(acc: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """TFLM's MultiplyByQuantizedMultiplier (double rounding) on int64 arrays."""
    x = acc.astype(np.int64) << np.maximum(s, 0)
    prod = x * m
    nudge = np.where(prod >= 0, 1 << 30, 1 - (1 << 30))
    high = (prod + nudge) // (1 << 31)
    high = np.where(prod + nudge < 0, -((-(prod + nudge)) // (1 << 31)), high)  # C truncation
    e = np.maximum(-s, 0)
    mask = (1 << e) - 1
    rem, thr = high & mask, (mask >> 1) + (high < 0)
    return (high >> e) + (rem > thr)


def test_the_described_layers_reproduce_tflm_on_the_default_model(lay, build_dir):
    """The FULLY_CONNECTED description (offsets, per-channel multipliers, activation range),
    computed in numpy, equals TFLM's output; the conv and pool descriptions have the model's
    shapes, and the inputs/outputs are TFLM's tensors."""
    layers: dict = {}
    for _, name, layer in lay.model_layers(build_dir):
        layers.setdefault(name, layer)  # the first of each operator
    assert layers["RESHAPE"] is None
    fc = layers["FULLY_CONNECTED"]
    f = fc.fields
    w = fc.filter.reshape(f["OUT_C"], f["IN_C"]).astype(np.int64)
    acc = (w * (fc.in1.astype(np.int64) + f["IN_OFFSET"])).sum(axis=1) + fc.bias
    out = _requant(acc, fc.mult.astype(np.int64), fc.shift.astype(np.int64)) + f["OUT_OFFSET"]
    out = np.clip(out, f["ACT_MIN"], f["ACT_MAX"])
    assert f["PER_CHANNEL"] == 1 and fc.mult.size == f["OUT_C"] == 10
    np.testing.assert_array_equal(out, fc.out)
    conv = layers["CONV_2D"]  # the first conv: 28x28x1 -> 26x26x8, 3x3 VALID, fused ReLU
    c = conv.fields
    got = (c["IN_H"], c["IN_C"], c["OUT_H"], c["OUT_C"], c["K_H"], c["PAD_H"])
    assert got == (28, 1, 26, 8, 3, 0)
    assert c["ACT_MIN"] == c["OUT_OFFSET"] and conv.out.size == 26 * 26 * 8
    sm = layers["SOFTMAX"].fields
    assert sm["SM_DIFF_MIN"] < 0 and sm["SM_MULT"] >= 1 << 30


def _row(model, index, op, cmsis, ours, macs=100, mismatches=0):
    return {"model": model, "index": index, "layer": f"l{index}", "op": op,
            "shape_in": [1, 4, 4, 8], "shape_out": [1, 4, 4, 8], "macs": macs,
            "tinyscope": ours, "tinyscope_kernel": ours - 240, "cmsis_nn": cmsis,
            "mismatches": mismatches, "maxdiff": 1 if mismatches else 0, "elements": 128,
            "ratio": round(ours / cmsis, 3) if cmsis else None,
            "ratio_kernel": round((ours - 240) / cmsis, 3) if cmsis else None}


def test_the_table_marks_layers_above_cmsis_nn_and_sums_per_model(tool):
    rows = [_row("m", 0, "CONV_2D", 1000, 500), _row("m", 1, "FULLY_CONNECTED", 400, 600, 50, 2),
            _row("m", 2, "RESHAPE", None, 240, 0)]
    text = tool.format_table(rows, 240)
    assert "| **1.50** |" in text and "| 0.50 |" in text
    assert "2 / 128 (max 1)" in text
    sums = tool.model_sums(rows)["m"]
    assert (sums["cmsis_nn"], sums["tinyscope"], sums["macs"]) == (1400, 1100, 150)
    assert sums["above"] == "l1 1.50" and sums["mismatches"] == 2
    assert "| m | 150 | 1,400 | 9.33 | 1,100 | 7.33 | 0.79 | l1 1.50 | 2 |" in text


def test_results_and_the_fixed_cost_are_read_from_the_harness_and_the_bench(tool):
    r = tool.parse_result("stack 12 of 65536\ncmsisnn op 9 status 0 ticks 29 elements 2 "
                          "mismatches 0 maxdiff 0 buffer 0\n")
    assert r["instructions"] == 29 * 40 and r["op"] == 9
    with pytest.raises(tool.CompareError):
        tool.parse_result("FAULT exception 0x3 pc 0x100")
    suite = {"a": {"operators": [{"op": "RESHAPE", "instructions_opt": 280}]},
             "b": {"operators": [{"op": "RESHAPE", "instructions_opt": 240},
                                 {"op": "ADD", "instructions_opt": 40}]}}
    assert tool.fixed_cost(suite) == 240
    assert tool.fixed_cost({"c": {"operators": []}}) is None


def test_a_tree_that_is_not_cmsis_nn_is_refused_with_a_message(tool, tmp_path, capsys):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"models": {}}))
    assert tool.main(["--cmsis-nn", str(tmp_path), "--suite", str(suite),
                      "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "not a CMSIS-NN source tree" in err and "Include/" in err
    assert tool.main(["--cmsis-nn", str(tmp_path), "--suite", str(tmp_path / "none.json")]) == 1
    assert "tinyscope.bench --suite" in capsys.readouterr().err


def test_a_suite_json_and_a_single_bench_json_are_both_read(tool, tmp_path):
    suite = {"models": {"a": {"operators": []}}}
    assert tool.bench_models(suite, tmp_path) == suite["models"]
    one = {"build": "/x/build/bench-foo", "operators": [],
           "second_model": {"build": "/x/build/bench-dwsep/build-v2", "operators": []}}
    assert list(tool.bench_models(one, tmp_path)) == ["bench-foo", "build-v2"]
    with pytest.raises(tool.CompareError, match="not a bench json"):
        tool.bench_models({"goals": []}, tmp_path)
