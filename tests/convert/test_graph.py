"""The flatbuffer graph reader agrees with LiteRT's own view of the graph (operators, tensors,
shapes, dtypes, quantization, inputs, outputs) on the default model, on random models and
on a model the reference kernels cannot prepare (read without an interpreter)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from tinyscope.convert import graph as model_graph
from tinyscope.convert.quantize import quantize_keras

from tests.runtime.archs import architectures, build
from tests.runtime.helpers import calibration
from tests.runtime.refusal_models import tiny_logit_tflite


def interpreter_view(model: bytes):
    """LiteRT's graph, from an interpreter that is never allocated (allocation runs the
    kernels' prepare, which aborts on some models)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ops = [(int(d["index"]), str(d["op_name"]), tuple(int(i) for i in d["inputs"]),
            tuple(int(i) for i in d["outputs"])) for d in it._get_ops_details()]
    tensors = {}
    for d in it.get_tensor_details():
        q = d["quantization_parameters"]
        tensors[int(d["index"])] = (
            str(d["name"]), tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]),
            tuple(float(s) for s in q["scales"]), tuple(int(z) for z in q["zero_points"]),
            int(q["quantized_dimension"]))
    ins = [int(d["index"]) for d in it.get_input_details()]
    outs = [int(d["index"]) for d in it.get_output_details()]
    return ops, tensors, ins, outs


def assert_same_graph(model: bytes) -> model_graph.Graph:
    g = model_graph.read_graph(model)
    ops, tensors, ins, outs = interpreter_view(model)
    assert [(o.index, o.name, o.inputs, o.outputs) for o in g.ops] == ops
    assert set(g.tensors) == set(tensors)
    for i, t in g.tensors.items():
        assert (t.name, t.shape, t.dtype, t.scales, t.zero_points,
                t.quantized_dimension) == tensors[i], f"tensor {i}"
    assert (g.inputs, g.outputs) == (ins, outs)
    return g


def test_default_model(build_dir):
    g = assert_same_graph((build_dir / "model_int8.tflite").read_bytes())
    names = [o.name for o in g.ops]
    assert names[0] == "CONV_2D" and names[-1] == "SOFTMAX"
    conv = g.ops[0].options
    assert conv["type"] == "Conv2DOptions" and conv["strideW"] == 1
    assert g.ops[-1].options == {"beta": 1.0, "type": "SoftmaxOptions"}
    weights = g.tensors[g.ops[0].inputs[1]]
    assert weights.constant and not g.tensors[g.ops[0].outputs[0]].constant
    assert len(weights.scales) == weights.shape[0]  # per-channel


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_random_models(arch):
    tfl = quantize_keras(build(arch), calibration(arch["input"], arch["seed"]))
    assert_same_graph(tfl)


def test_model_the_references_cannot_prepare():
    g = assert_same_graph(tiny_logit_tflite())
    sm = g.ops[-1]
    assert sm.name == "SOFTMAX"
    assert g.tensors[sm.inputs[0]].scales[0] < 2.0 ** -26


@pytest.mark.parametrize("damage", ["empty", "identifier", "truncated", "flipped"])
def test_damaged_models_raise_format_errors(build_dir, damage):
    good = (build_dir / "model_int8.tflite").read_bytes()
    bad = {"empty": b"", "identifier": good[:4] + b"XXXX" + good[8:],
           "truncated": good[:200],
           "flipped": good[:8] + bytes(b ^ 0xFF for b in good[8:64]) + good[64:]}[damage]
    with pytest.raises(model_graph.ModelFormatError):
        model_graph.read_graph(bad)
