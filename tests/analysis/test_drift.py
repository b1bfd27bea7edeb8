"""Drift metrics: definitions, int8-vs-int8 LSB statistics, agreement with TFLite's
QuantizationDebugger on the same model and data, and ``tinyscope drift`` outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tinyscope import cli, data
from tinyscope.analysis import drift, floatref, reference
from tinyscope.convert import graph, model
from tinyscope.convert.quantize import quantize_keras

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "models" / "default.keras"
N_DEBUG = 40


def per_sample_mean(ref: np.ndarray, test: np.ndarray, scale: float, zero_point: int) -> dict:
    """drift.error_metrics per sample (axis 0), averaged: QuantizationDebugger's aggregation
    (``ref`` float, ``test`` int8 with ``scale`` and ``zero_point``)."""
    t = data.dequantize(test, scale, zero_point).astype(np.float64)
    rows = [drift.error_metrics(np.asarray(ref[i], np.float64), t[i]) for i in range(len(t))]
    keys = ("max_abs_error", "mean_abs_error", "mean_error", "stddev", "mse", "rmse")
    return {k: float(np.mean([row[k] for row in rows])) for k in keys}


def test_error_metrics_on_known_values():
    ref = np.array([1.0, -2.0, 3.0, 0.0])
    test = np.array([1.5, -2.0, 2.0, 0.5])
    m = drift.error_metrics(ref, test)
    err = np.array([0.5, 0.0, -1.0, 0.5])
    assert m["max_abs_error"] == 1.0 and m["mean_abs_error"] == 0.5
    assert m["mean_error"] == 0.0 and m["mse"] == pytest.approx(np.mean(err**2))
    assert m["rmse"] == pytest.approx(math.sqrt(1.5 / 4))
    assert m["snr_db"] == pytest.approx(10 * math.log10(14 / 1.5))
    assert m["cosine"] == pytest.approx(np.dot(ref, test) / np.linalg.norm(ref)
                                        / np.linalg.norm(test))
    assert m["l2_relative"] == pytest.approx(math.sqrt(1.5 / 14))
    same = drift.error_metrics(ref, ref)
    assert same["snr_db"] is None and same["cosine"] == pytest.approx(1.0) and same["mse"] == 0


def test_uniform_rounding_noise_gives_rmse_over_scale_near_ideal():
    rng = np.random.default_rng(1)
    scale, zp = 0.05, -10
    x = rng.uniform(-5, 5, size=(50, 8, 8, 4))
    q = data.quantize(x, scale, zp)
    m = drift.compare_tensors(x, q, scale, zp)
    assert m["kind"] == "float-int8"
    assert m["rmse_over_scale"] == pytest.approx(drift.IDEAL_RMSE_OVER_SCALE, rel=0.03)
    assert len(m["per_channel"]["rmse"]) == 4
    assert m["max_abs_error"] <= scale / 2 + 1e-9


def test_int8_vs_int8_lsb_histogram_and_per_channel():
    a = np.zeros((2, 3, 3, 2), np.int8)
    b = a.copy()
    b[0, 0, 0, 1] = 2
    b[1, 2, 2, 1] = -1
    b[1, 1, 1, 0] = 1
    m = drift.compare_tensors(a, b, 0.1, 0)
    assert m["kind"] == "int8-int8"
    assert m["lsb"]["histogram"] == {-1: 1, 0: 33, 1: 1, 2: 1}
    assert m["lsb"]["n_different"] == 3 and m["lsb"]["max_lsb"] == 2
    assert m["lsb"]["fraction_equal"] == pytest.approx(33 / 36)
    assert m["per_channel_lsb"]["max_lsb"] == [1, 2]
    assert m["per_channel_lsb"]["fraction_equal"] == pytest.approx([17 / 18, 16 / 18])
    assert m["max_abs_error"] == pytest.approx(0.2)


def test_per_channel_int8_parameters_dequantize_per_channel():
    q = np.array([[[10, 10]]], np.int8)
    m = drift.compare_tensors(np.array([[[1.0, 2.0]]]), q, [0.1, 0.2], [0, 0])
    assert m["max_abs_error"] == pytest.approx(0.0, abs=1e-12)


def test_requantize_rounding_modes_round_to_nearest_and_differ_by_at_most_1():
    acc = np.arange(-50000, 50000)
    mult = 0.0123
    m, shift = drift.quantize_multiplier(mult)
    assert 2**30 <= m < 2**31 and m * 2.0 ** (shift - 31) == pytest.approx(mult, rel=1e-9)
    exact = acc * (m * 2.0 ** (shift - 31))
    d = drift.requantize(acc, mult, "double")
    s = drift.requantize(acc, mult, "single")
    assert np.all(np.abs(s - exact) <= 0.5 + 1e-9)
    # double rounding: the high-mul rounding adds up to half a step of the final shift
    assert np.all(np.abs(d - exact) <= 0.5 + 2.0**shift)
    differ = d != s
    assert np.all(np.abs(d - s) <= 1) and 0 < differ.sum() < 0.01 * acc.size
    # they only differ where the exact value is (within double rounding's error) a tie
    frac = np.abs(exact[differ] - np.floor(exact[differ]) - 0.5)
    assert np.all(frac <= 2.0**shift)


def test_dataset_agreement_and_confusion():
    f = np.eye(3)[[0, 1, 2, 2]]
    q = np.eye(3)[[0, 1, 1, 2]]
    d = drift.dataset_agreement(f, q, np.array([0, 1, 2, 1]), 3)
    assert d["top1_agreement"] == 0.75 and d["disagreeing_images"] == [2]
    assert d["confusion_float_vs_int8"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert d["float_accuracy"] == 0.75 and d["int8_accuracy"] == 0.5
    assert np.sum(d["confusion_int8"]) == 4


# ----------------------------------------------------------------- QuantizationDebugger


@pytest.fixture(scope="module")
def debugger_run():
    import tensorflow as tf

    net = model.load_model(DEFAULT)
    train, test = data.split(data.load_mnist())
    calib = train.x[:200]
    x = test.x[:N_DEBUG]

    def representative():
        for s in calib:
            yield [s[None]]

    def debug_data():
        for s in x:
            yield [s[None]]

    conv = tf.lite.TFLiteConverter.from_keras_model(net)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    def ours(key):
        def metric(f, q, scale, zero_point):
            deq = scale * (np.asarray(q, np.float64) - zero_point)
            return drift.error_metrics(np.asarray(f, np.float64), deq)[key]

        return metric

    direct = {"ts_" + k: ours(k) for k in ("mse", "max_abs_error", "mean_error", "stddev")}
    built = tf.lite.experimental.QuantizationDebugger(
        converter=conv, debug_dataset=debug_data,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(fully_quantize=True),
    )
    # Built from a converter, the debugger's interpreter does not preserve intermediate
    # tensors, so its direct-compare callbacks may read overwritten memory; rebuilt from the
    # debug model's bytes it does (experimental_preserve_all_tensors).
    opts = tf.lite.experimental.QuantizationDebugOptions(
        fully_quantize=True, layer_direct_compare_metrics=direct
    )
    dbg = tf.lite.experimental.QuantizationDebugger(
        quant_debug_model_content=built.quant_model, debug_dataset=debug_data,
        debug_options=opts,
    )
    dbg.run()
    interp = dbg._quant_interpreter
    stats = []  # (op name, output shape, scale, metrics) in graph order
    for name, metrics in dbg.layer_statistics.items():
        op = dbg._numeric_verify_op_details[name]
        q_detail = interp._get_tensor_details(op["inputs"][0], subgraph_index=0)
        # op names from the undelegated interpreter (the other shows XNNPACK's DELEGATE)
        ops_plain = built._quant_interpreter._get_ops_details()
        producer = {o: d for d in ops_plain for o in d["outputs"]}
        op_name = producer[op["inputs"][0]]["op_name"]
        stats.append((op_name, tuple(int(v) for v in q_detail["shape"]),
                      q_detail["quantization_parameters"]["scales"][0], dict(metrics)))
    tfl = quantize_keras(net, calib)
    return net, tfl, x, stats


def test_our_metric_functions_equal_debugger_metrics_on_its_own_tensors(debugger_run):
    """Fed the debugger's own float/quant tensor pairs, our metrics equal its NumericVerify
    statistics (computed in C++ from the same tensors)."""
    _, _, _, stats = debugger_run
    assert len(stats) == 7
    for op_name, _, scale, m in stats:
        scale = float(scale)
        tol = 1e-4 * scale  # float32 (TFLite) vs float64 (ours) rounding, 1e-4 LSB
        assert m["ts_mse"] == pytest.approx(m["mean_squared_error"], rel=1e-4, abs=tol**2)
        assert m["ts_max_abs_error"] == pytest.approx(m["max_abs_error"], rel=1e-4, abs=tol)
        assert m["ts_mean_error"] == pytest.approx(m["mean_error"], rel=1e-3, abs=tol)
        assert m["ts_stddev"] == pytest.approx(m["stddev"], rel=1e-3, abs=tol), op_name


def test_our_layer_local_drift_agrees_with_quantization_debugger(debugger_run):
    """Our pipeline (our int8 model via TFLM, Keras layers on dequantized int8 inputs) gives
    the same per-layer error statistics as QuantizationDebugger on the same data."""
    net, tfl, x, stats = debugger_run
    ops, tensors, inputs, _ = graph.graph(tfl)
    inp = tensors[inputs[0]]
    q = data.quantize(x, inp.scales[0], inp.zero_points[0])
    tflm = floatref.stack(reference.tflm_tensors(tfl, q))
    local = drift.local_float_tensors(net, tfl, tflm)
    ours = []
    for op in ops:
        idx = op.outputs[0]
        t = tensors[idx]
        if idx in local:
            ours.append((op.name, t.shape, t.scales[0],
                         per_sample_mean(local[idx], tflm[idx], t.scales[0],
                                               t.zero_points[0])))
    assert [(o, s) for o, s, _, _ in ours] == [(o, s) for o, s, _, _ in stats]
    for (op_name, _, scale, m), (_, _, their_scale, theirs) in zip(ours, stats, strict=True):
        scale = float(scale)
        assert scale == pytest.approx(float(their_scale), rel=1e-6)
        if theirs["mean_squared_error"] < 1e-10 * scale**2:
            # pooling/reshape: exact in both (float op on dequantized input == dequantized out)
            assert m["mse"] < 1e-10 * scale**2, op_name
            continue
        # the debugger's interpreter runs XNNPACK kernels for the int8 path: a few elements
        # can differ by 1 LSB from TFLM, so allow a small relative difference
        # (measured: MSE within 0.2 %, max |err| within 0.5 %)
        assert m["mse"] == pytest.approx(theirs["mean_squared_error"], rel=0.01), op_name
        assert m["stddev"] == pytest.approx(theirs["stddev"], rel=0.01), op_name
        assert m["max_abs_error"] == pytest.approx(theirs["max_abs_error"], rel=0.02), op_name
        assert abs(m["mean_error"] - theirs["mean_error"]) < 0.01 * scale, op_name


def test_drift_command_writes_metrics_and_figures(tmp_path):
    build = tmp_path / "build"
    assert cli.main(["convert", str(DEFAULT), "--out", str(build), "--calib", "200"]) == 0
    out = tmp_path / "drift"
    assert cli.main(["drift", str(build), "--out", str(out), "--n", "60"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 60
    d = m["dataset"]
    assert 0.9 <= d["top1_agreement"] <= 1.0 and d["int8_accuracy"] > 0.85
    assert np.sum(d["confusion_float_vs_int8"]) == 60
    conv = next(t for t in m["tensors"] if t["op"] == "CONV_2D")  # the first layer
    assert 0.1 < conv["float_vs_int8"]["rmse_over_scale"] < 1.0
    assert len(conv["float_vs_int8"]["per_channel"]["rmse"]) == 8
    assert conv["float_local_vs_int8"]["cosine"] > 0.99
    for t in m["tensors"]:
        lsb = t["tflm_vs_xnnpack"]["lsb"]
        assert sum(lsb["histogram"].values()) == lsb["n"] == 60 * np.prod(t["shape"])
    for name in m["figures"]:
        png = out / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(png) as img:  # a drawn figure, not a blank canvas
            assert img.width > 300 and len(img.convert("RGB").getcolors(1 << 16) or ()) > 8


def test_drift_of_a_float_io_model_covers_its_int8_tensors(tmp_path):
    """A model with float32 edges: drift compares its int8 tensors with the float model;
    the float32 edges (QUANTIZE input, DEQUANTIZE output) are not quantized, so they get no
    drift row, and nothing reads their (absent) scale."""
    from tinyscope.convert import flow

    from tests.convert import float_io_model

    keras_path, tflite = float_io_model.write(tmp_path / "m")
    np.save(tmp_path / "x.npy", float_io_model.float_inputs(3, seed=1, outlier=False))
    build = tmp_path / "b"
    man = flow.convert(tflite, build, data=str(tmp_path / "x.npy"), float_model=keras_path)
    metrics, _ = drift.run(build, n=3)
    rows = {r["index"]: r for r in metrics["tensors"]}
    int8 = [t["index"] for t in man["tensors"]
            if t["kind"] == "activation" and t["dtype"] == "int8"]
    assert set(rows) == set(int8)
    assert man["input"]["index"] not in rows and man["output"]["index"] not in rows
    by_op = {o["op"]: rows[o["outputs"][0]] for o in man["operators"]
             if o["outputs"][0] in rows}
    for op in ("QUANTIZE", "HARD_SWISH", "MUL", "TRANSPOSE_CONV", "LEAKY_RELU"):
        assert np.isfinite(by_op[op]["float_vs_int8"]["snr_db"]), op
