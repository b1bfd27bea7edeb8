"""make bench's bookkeeping: which operators each goal takes, and the second model filling
a goal the main model cannot measure (synthetic figures; the measurements themselves are
make bench's, not tests')."""

from __future__ import annotations

import pytest
from tinyscope import bench, bench_models


def _manifest(ops: list[tuple[str, int]]) -> dict:
    """Operators (name, input channels), each reading tensor i, with ``macs`` set."""
    return {"tensors": [{"index": i, "shape": [1, 4, 4, c]} for i, (_, c) in enumerate(ops)],
            "operators": [{"index": i, "op": op, "inputs": [i]} for i, (op, _) in enumerate(ops)]}


def _rows(instr_macs: list[tuple[int, int]]) -> list[dict]:
    return [{"instructions_opt": i, "macs": m} for i, m in instr_macs]


def _result(manifest: dict, rows: list[dict], name: str) -> dict:
    b = {"model": name, "instructions_per_mac": 2.0, "speedup_vs_reference": 9.0,
         "arena_bytes": 70, "tflm_arena_bytes": 100, "text_bytes": 20000,
         "payload_efficiency": 0.98}
    values = bench.goal_values(manifest, rows, b)
    b["goals"] = [{"key": k, "description": d, "limit": lim, "kind": kind, "value": values[k],
                   "met": None if values[k] is None else
                   (values[k] <= lim if kind == "max" else values[k] >= lim)}
                  for k, d, lim, kind in bench.GOALS]
    return b


def test_goals_pool_the_operators_of_each_class():
    m = _manifest([("CONV_2D", 1), ("CONV_2D", 8), ("CONV_2D", 16), ("FULLY_CONNECTED", 400)])
    v = bench.goal_values(m, _rows([(300, 100), (120, 100), (160, 100), (140, 100)]),
                          {"instructions_per_mac": 1.8, "speedup_vs_reference": 10.0,
                           "arena_bytes": 78, "tflm_arena_bytes": 100, "text_bytes": 1,
                           "payload_efficiency": 0.9})
    assert v["conv_in_c_1"] == 3.0
    assert v["conv_in_c_ge_8"] == 1.4  # (120 + 160) / 200: both convs with >= 8 channels
    assert v["fully_connected"] == 1.4
    assert v["depthwise"] is None  # no such operator
    assert v["arena_ratio"] == 0.78


def test_a_goal_the_main_model_lacks_comes_from_the_second_model():
    main = _result(_manifest([("CONV_2D", 8)]), _rows([(100, 100)]), "main.keras")
    second = _result(_manifest([("DEPTHWISE_CONV_2D", 8), ("CONV_2D", 8)]),
                     _rows([(250, 100), (900, 100)]), "second/model.keras")
    bench.merge_goals(main, second)
    goals = {g["key"]: g for g in main["goals"]}
    assert goals["depthwise"]["value"] == 2.5 and goals["depthwise"]["met"] is True
    assert goals["depthwise"]["source"] == "second/model.keras"
    # a goal the main model measures keeps its own figure, not the second model's 9.0
    assert goals["conv_in_c_ge_8"]["value"] == 1.0 and "source" not in goals["conv_in_c_ge_8"]


def test_kernel_path_names_the_path_from_the_shapes():
    shapes = {0: [1, 8, 8, 64], 1: [64, 3, 3, 64], 2: [1, 3, 3, 32], 3: [1, 5, 5, 32]}
    conv = {"op": "CONV_2D", "inputs": [0, 1]}
    assert bench.kernel_path(conv, shapes).endswith("field chunked")  # 3x3x64: 864 words
    assert bench.kernel_path({"op": "DEPTHWISE_CONV_2D", "inputs": [0, 2]}, shapes).startswith(
        "fast")
    assert bench.kernel_path({"op": "DEPTHWISE_CONV_2D", "inputs": [0, 3]}, shapes).startswith(
        "fallback")  # 64 in, 32 out: not depth multiplier 1
    shapes[11] = [1, 5, 5, 64]  # 5x5, depth 64: depthwise_conv.c's dw_any
    assert bench.kernel_path({"op": "DEPTHWISE_CONV_2D", "inputs": [0, 11]}, shapes) == (
        "fast: any-kernel NHWC loop (4 channels per word), kernel not 3x3")
    assert bench.kernel_path({"op": "SOFTMAX", "inputs": [0]}, shapes).startswith("fast")
    assert bench.kernel_path({"op": "TANH", "inputs": [0]}, shapes) == "ref"
    shapes.update({4: [16, 3, 3, 16], 5: [8, 3, 3, 1], 6: [1, 1, 1, 64], 7: [1, 3, 3, 6]})
    assert bench.kernel_path({"op": "CONV_2D", "inputs": [0, 4]}, shapes) == (
        "fast: im2col + SMLAD routine")  # 216 words of im2col, blocks of 16 channels
    assert "planes" in bench.kernel_path({"op": "CONV_2D", "inputs": [0, 5]}, shapes)
    shapes.update({8: [32, 1, 1, 64], 9: [1, 8, 8, 32], 10: [1, 4, 4, 32]})
    pw = {"op": "CONV_2D", "inputs": [0, 8], "outputs": [9]}
    assert "pointwise" in bench.kernel_path(pw, shapes)
    assert "pointwise" not in bench.kernel_path({**pw, "outputs": [10]}, shapes)  # stride 2
    pool = {"op": "AVERAGE_POOL_2D", "inputs": [0], "outputs": [6]}
    assert bench.kernel_path(pool, shapes).startswith("fast")
    assert bench.kernel_path({**pool, "outputs": [7]}, shapes) == "ref"


def _keras_macs(model) -> int:
    """MACs of the twin's Conv2D / DepthwiseConv2D / Dense layers from their shapes."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        out = layer.output.shape
        if kind == "Conv2D":
            kh, kw = layer.kernel_size
            total += out[1] * out[2] * out[3] * kh * kw * layer.input.shape[-1]
        elif kind == "DepthwiseConv2D":
            kh, kw = layer.kernel_size
            total += out[1] * out[2] * out[3] * kh * kw
        elif kind == "Dense":
            total += out[-1] * layer.input.shape[-1]
    return total


def test_the_twins_have_the_reference_architectures_macs():
    """The Keras twins match the MLPerf Tiny models' MAC counts the CMSIS-NN figures are
    quoted for (issue 16: 7.49 M, 12.50 M, 2.66 M, 0.26 M), as the bench builds them and as the
    tests' users' models (finished as trained) are."""
    from tinyscope import bench_models

    want = {"mobilenet": 7.49, "resnet8": 12.50, "dscnn": 2.66, "autoencoder": 0.26}  # M MACs
    for name, macs in want.items():
        for finish in (bench_models.BENCH, bench_models.AS_TRAINED):
            got = _keras_macs(bench_models.TWINS[name](finish))
            assert round(got / 1e6, 2) == macs, (name, finish, got)
    assert set(bench.CMSIS_NN_MEASURED) == set(want) | {"default"}


def _printable(rows: list[dict]) -> dict:
    b = _result(_manifest([(r["op"], 8) for r in rows]), rows, "m.keras")
    t_ref = sum(r["instructions_ref"] for r in rows)
    t_opt = sum(r["instructions_opt"] for r in rows)
    b.update(operators=rows, total={"macs": 200, "instructions_ref": t_ref,
                                    "instructions_opt": t_opt,
                                    "instructions_per_mac_ref": t_ref / 200},
             tflm_arena_bytes=100, bit_exact={"images": 1, "bytes_compared": 10},
             payload={"payload_bytes": 9, "wire_bytes": 10, "frames": 2},
             capture={"images_per_s": 1.0, "wire_bytes_per_s": 10})
    return b


def test_table_prints_each_kernel_path_and_names_an_optimized_kernel_slower_than_ref():
    """A user's model (a 1-D keyword spotter's 1x5 depthwise) hit a fallback path slower than
    the reference kernel: the printed table showed neither the path nor the regression."""
    rows = [{"index": 0, "op": "CONV_2D", "layer": "c0", "macs": 100, "instructions_ref": 950,
             "instructions_opt": 118, "instructions_per_mac_ref": 9.5,
             "instructions_per_mac_opt": 1.18, "speedup": 8.05,
             "kernel_path": "fast: im2col + SMLAD routine"},
            {"index": 1, "op": "DEPTHWISE_CONV_2D", "layer": "dw1", "macs": 100,
             "instructions_ref": 3838, "instructions_opt": 4846,
             "instructions_per_mac_ref": 38.38, "instructions_per_mac_opt": 48.46,
             "speedup": 0.79, "kernel_path": "fallback: plain loop (kernel not 3x3)"}]
    text = bench.format_table(_printable(rows))
    lines = text.splitlines()
    assert lines[0].endswith("kernel path")
    assert lines[1].endswith("fast: im2col + SMLAD routine")
    assert lines[2].endswith("fallback: plain loop (kernel not 3x3)")
    assert ("slower than the reference kernel: op 1 DEPTHWISE_CONV_2D dw1 (4,846 vs 3,838 "
            "instructions, fallback: plain loop (kernel not 3x3))") in text
    assert "slower than" not in bench.format_table(_printable(rows[:1]))


def test_a_keras_model_that_is_not_28x28x1_gets_seeded_inputs_of_its_shape(tmp_path, capsys):
    """make bench MODEL=kws.keras (a 49x10 input) stopped with 'the MNIST digits are 28x28x1
    ... use --data', an option bench did not have: now it has --data (DATA=) and, without
    it, calibrates on seeded uniform inputs of the model's shape, as the twins."""
    import keras
    import numpy as np

    inp = keras.Input((49, 10), batch_size=1)
    path = tmp_path / "kws.keras"
    keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(inp))).save(path)
    npy = bench_models.default_inputs(path, tmp_path / "b")
    x = np.load(npy)
    assert x.shape == (32, 49, 10) and x.dtype == np.float32
    np.testing.assert_array_equal(x, np.load(bench_models.default_inputs(path, tmp_path / "c")))
    assert bench_models.default_inputs(bench.ROOT / "models/default.keras", tmp_path / "d") is None
    (tmp_path / "m.tflite").write_bytes(b"\0" * 8)
    assert bench_models.default_inputs(tmp_path / "m.tflite", tmp_path / "e") is None
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    assert "--data DATA" in capsys.readouterr().out


def test_a_dilated_convolution_reports_the_plain_loop_it_takes():
    """A Conv1D with dilation 2 ran at 11.4 instr/MAC in both firmwares (conv.c sends
    dilation_w != 1 to the plain loop nest) while the table said 'fast: im2col + SMLAD'."""
    manifest = {"tensors": [{"index": 0, "shape": [1, 1, 250, 8]},
                            {"index": 1, "shape": [16, 1, 5, 8]},
                            {"index": 2, "shape": [1, 1, 242, 16]},
                            {"index": 3, "shape": [1, 1, 5, 16]}],
                "operators": [{"index": 0, "op": "CONV_2D", "inputs": [0, 1], "outputs": [2],
                               "macs": 154880},
                              {"index": 1, "op": "DEPTHWISE_CONV_2D", "inputs": [2, 3],
                               "outputs": [2], "macs": 100}]}
    timing = {"per_op_ticks_median": [44228, 100], "instructions_per_tick": 40}
    runs = {"ref": {"timing": timing}, "opt": {"timing": timing}}
    dil = {"dilationWFactor": 2, "dilationHFactor": 1}
    rows = bench.op_rows(manifest, runs, {0: dil, 1: dil})
    assert rows[0]["kernel_path"] == "fallback: plain loop (dilation_w != 1)"
    assert rows[1]["kernel_path"] == (  # 16 channels, depth multiplier 1: depthwise_conv.c's
        "fast: any-kernel NHWC loop (4 channels per word), dilated")  # dw_any
    manifest["tensors"][3]["shape"] = [1, 1, 5, 32]  # depth multiplier 2: the plain loop
    assert bench.op_rows(manifest, runs, {1: dil})[1]["kernel_path"] == (
        "fallback: plain loop (dilated; not depth multiplier 1, depth % 4 == 0, <= 64 taps)")
    rows = bench.op_rows(manifest, runs, {0: {"dilationWFactor": 1, "dilationHFactor": 2}})
    assert rows[0]["kernel_path"].startswith("fast: im2col")  # only dilation_w sends it away
    assert bench.op_rows(manifest, runs)[0]["kernel_path"].startswith("fast: im2col")


def test_a_max_pool_off_the_2x2_path_names_the_windowed_loop():
    """A 3x3 stride-2 pool (a sensor model's), a 2x2 pool over 22 channels or one whose
    windows leave the input runs pooling.c's windowed 4-channel loop, not its 2x2 row path;
    the table names which (session 8 briefly sent these to the reference kernel: 890,480
    instead of 280,080 instructions on a sensor model's pool)."""
    from tinyscope.bench_paths import options_path

    shapes = {0: [1, 40, 24, 22], 1: [1, 19, 11, 22], 2: [1, 12, 12, 16], 3: [1, 6, 6, 16],
              4: [1, 13, 13, 16], 5: [1, 7, 7, 16]}
    pool = {"filterHeight": 3, "filterWidth": 3, "strideH": 2, "strideW": 2}
    op = {"op": "MAX_POOL_2D", "inputs": [0], "outputs": [1]}
    windowed = "fast: cm4 kernel (windowed loop, 4 channels per word)"
    assert options_path(op, pool, shapes) == windowed
    two = {**pool, "filterHeight": 2, "filterWidth": 2}
    assert options_path(op, two, shapes) == windowed  # depth 22: not % 4
    assert options_path({**op, "inputs": [2], "outputs": [3]}, two, shapes) is None  # rows
    assert options_path({**op, "inputs": [4], "outputs": [5]}, two, shapes) == windowed
    assert options_path(op, {}, shapes) is None  # no options known: the shapes decide


def test_a_broadcast_add_says_it_runs_the_reference():
    """MobileNetV3Small's leading Rescaling is a MUL and a broadcast ADD of a constant:
    3,853,640 opt vs 3,853,560 ref instructions, while the table said 'fast: cm4 kernel'."""
    from tinyscope.bench_paths import options_path

    shapes = {0: [1, 96, 96, 3], 1: [1], 2: [1, 96, 96, 3], 3: [1, 1, 1, 96], 4: [1, 1, 1, 96]}
    add = {"op": "ADD", "inputs": [0, 1], "outputs": [2]}
    assert options_path(add, {}, shapes).startswith("ref (broadcast")
    assert options_path({**add, "inputs": [0, 2]}, {}, shapes) is None  # a residual: fast
    assert options_path({"op": "ADD", "inputs": [3, 4], "outputs": [4]}, {}, shapes).startswith(
        "ref")  # a squeeze-excite 1x1x96: fewer than 256 outputs
