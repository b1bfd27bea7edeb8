"""The runtime's operator table (firmware/runtime/src/ts_ops.def) is the one list of
operators: tinyscope's SUPPORTED_OPS, the docs and the ops/ folder agree with it. And the
per-operator arena scratch: a runner whose every operator asks for scratch, which invoke
overwrites before the operator runs, still equals TFLM on every tensor (the planner keeps
scratch off live tensors) and needs a larger arena."""

from __future__ import annotations

import re
import subprocess

import pytest
from keras import layers
from tinyscope.analysis import reference
from tinyscope.convert import graph, manifest
from tinyscope.convert.quantize import quantize_keras

from tests.runtime.helpers import (
    ROOT,
    calibration,
    compare_with_tflm,
    first_mismatch,
    keras_model,
    quantize_float_io,
    random_float_inputs,
    random_int8_inputs,
)
from tests.runtime.native_runner import FIRMWARE_DIR, ensure_runner, run_native

OPS_DEF = FIRMWARE_DIR / "runtime" / "src" / "ts_ops.def"
OPS_DIR = FIRMWARE_DIR / "runtime" / "src" / "ops"
DOC = ROOT / "docs" / "pipeline.md"


def table() -> list[tuple[str, int, str]]:
    """(name, builtin code, function prefix) of every TS_OP line."""
    rows = re.findall(r"^TS_OP\((\w+), (\d+), (\w+),", OPS_DEF.read_text(), re.M)
    return [(n, int(c), f) for n, c, f in rows]


def test_table_codes_are_the_tflite_builtin_codes():
    from tensorflow.lite.python import schema_py_generated as schema

    rows = table()
    assert len(rows) >= 12
    for name, code, _ in rows:
        assert getattr(schema.BuiltinOperator, name) == code, name
    assert len({c for _, c, _ in rows}) == len(rows)


def test_supported_ops_and_docs_match_the_table():
    names = {n for n, _, _ in table()}
    assert set(manifest.SUPPORTED_OPS) == names
    text = DOC.read_text()
    m = re.search(r"The runtime's operator set[^:]*:(.*?)\n\n", text, re.S)
    assert m, f"{DOC} lost its operator-set paragraph"
    assert set(re.findall(r"`([A-Z0-9_]+)`", m.group(1))) == names


def test_every_op_has_its_file():
    for name, _, fn in table():
        files = [p for p in OPS_DIR.glob("*.c") if f"ts_{fn}_prepare(ts_loader_t" in p.read_text()]
        assert len(files) == 1, f"{name}: ts_{fn}_prepare defined in {files}"
        assert f"ts_{fn}_eval(const ts_eval_t" in files[0].read_text(), name


@pytest.fixture(scope="module")
def scratch_runner():
    ensure_runner()
    proc = subprocess.run(["make", "-C", str(FIRMWARE_DIR), "-f", "host/host.mk", "scratch"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return FIRMWARE_DIR / "build" / "host" / "tinyscope-run-scratch"


def _net(x):
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    b = layers.DepthwiseConv2D(3, padding="same")(a)
    c = layers.Add()([a, b])
    d = layers.MaxPooling2D(2)(c)
    e = layers.Concatenate()([d, layers.Conv2D(2, 1)(d)])
    f = layers.GlobalAveragePooling2D()(e)
    return layers.Softmax()(layers.Dense(5)(f))


def test_scratch_is_planned_off_live_tensors(scratch_runner):
    shape = (9, 9, 2)
    tfl = quantize_keras(keras_model(_net, shape, seed=3), calibration(shape, 3))
    x = random_int8_inputs(tfl, 3, seed=3)
    refs = reference.tflm_tensors(tfl, x)
    for xi, want in zip(x, refs, strict=True):
        got, arena_scratch = run_native(tfl, xi, runner=scratch_runner)
        assert first_mismatch(got, want) is None
        got_plain, arena = run_native(tfl, xi)
        assert first_mismatch(got_plain, want) is None
    # each operator's 1000-byte scratch is alive with its inputs and outputs
    assert arena_scratch > arena, (arena_scratch, arena)


def test_float_io_model_equals_tflm():
    """float32 in, QUANTIZE, int8 layers, DEQUANTIZE, float32 out: every tensor == TFLM, the
    float ones bit for bit."""
    shape = (6, 6, 2)
    net = keras_model(lambda x: layers.Dense(3)(layers.Flatten()(
        layers.Conv2D(3, 3, activation="relu")(x))), shape, seed=4)
    tfl = quantize_float_io(net, calibration(shape, 4))
    ops, tensors, ins, outs = graph.graph(tfl)
    assert [o.name for o in ops][0] == "QUANTIZE" and [o.name for o in ops][-1] == "DEQUANTIZE"
    assert str(tensors[ins[0]].dtype) == "float32" and str(tensors[outs[0]].dtype) == "float32"
    x = random_float_inputs(tfl, 4, seed=4)
    x[-1] *= 40.0  # beyond the input range: QUANTIZE saturates
    msg, _ = compare_with_tflm(tfl, x)
    assert msg is None, msg


def _as_squeeze(model: bytes) -> bytes:
    """The model with its RESHAPE turned into SQUEEZE (the converter emits RESHAPE for
    Keras squeezes; older converters and other frameworks emit SQUEEZE)."""
    from tensorflow.lite.python import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    for code in m.operatorCodes:
        if code.builtinCode == schema.BuiltinOperator.RESHAPE:
            code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.SQUEEZE
    for op in m.subgraphs[0].operators:
        if m.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.SQUEEZE:
            op.inputs = op.inputs[:1]
            op.builtinOptionsType = schema.BuiltinOptions.SqueezeOptions
            op.builtinOptions = schema.SqueezeOptionsT()
            op.builtinOptions.squeezeDims = [1]
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_squeeze_equals_tflm():
    import keras

    shape = (1, 6, 3)
    net = keras_model(lambda x: layers.Dense(2)(layers.Lambda(
        lambda t: keras.ops.squeeze(t, axis=1))(layers.Conv2D(4, 1)(x))), shape, seed=2)
    tfl = _as_squeeze(quantize_keras(net, calibration(shape, 2)))
    assert "SQUEEZE" in [o.name for o in graph.graph(tfl)[0]]
    msg, _ = compare_with_tflm(tfl, random_int8_inputs(tfl, 4, seed=2))
    assert msg is None, msg
