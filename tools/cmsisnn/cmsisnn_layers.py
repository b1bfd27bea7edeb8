"""Layer descriptions for tools/cmsisnn/harness.c, read from a model's ``.tflite``.

Each operator becomes what TFLM's CMSIS-NN kernels give CMSIS-NN: shapes, strides, SAME
padding, activation range, offsets, per-channel multipliers and shifts (TFLM's
QuantizeMultiplier), ADD's and SOFTMAX's parameters; with the operator's input and output
from the TFLM interpreter (the oracle the harness compares CMSIS-NN's output with). Used by
tools/cmsisnn_compare.py; the arithmetic follows tensorflow/lite/kernels/internal/
quantization_util.cc and TFLM's kernels' Prepare.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class CompareError(Exception):
    """A problem the user can fix; the message names the file and the fix."""


# The layer file's header, in order: the names of harness.c's `enum field` without F_
# (tests/test_cmsisnn_compare.py checks the two lists are the same).
FIELDS = (
    "MAGIC", "VERSION", "OP", "BATCH",
    "IN_H", "IN_W", "IN_C", "OUT_H", "OUT_W", "OUT_C",
    "K_H", "K_W", "STRIDE_H", "STRIDE_W", "PAD_H", "PAD_W", "DIL_H", "DIL_W", "CH_MULT",
    "IN_OFFSET", "FILTER_OFFSET", "OUT_OFFSET", "ACT_MIN", "ACT_MAX", "PER_CHANNEL",
    "IN2_OFFSET", "IN1_MULT", "IN1_SHIFT", "IN2_MULT", "IN2_SHIFT", "LEFT_SHIFT",
    "OUT_MULT", "OUT_SHIFT", "SM_MULT", "SM_SHIFT", "SM_DIFF_MIN",
    "N_IN1", "N_IN2", "N_FILTER", "N_BIAS", "N_QUANT", "N_OUT",
)
MAGIC, VERSION = 0x4E4E4D43, 1
# TFLite BuiltinOperator codes the harness runs (schema.fbs values; harness.c's OP_*)
OP_CODES = {"ADD": 0, "AVERAGE_POOL_2D": 1, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4,
            "FULLY_CONNECTED": 9, "MAX_POOL_2D": 17, "SOFTMAX": 25}
# Fused activations (schema.fbs ActivationFunctionType)
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3


# ---- TFLM's quantization arithmetic (tensorflow/lite/kernels/internal/quantization_util.cc)

def tflite_round(x: float) -> int:
    """std::round: halves away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(d: float) -> tuple[int, int]:
    """TFLM's QuantizeMultiplier: (q31 multiplier, shift) with d = m * 2^(shift - 31)."""
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def activation_range(act: int, scale: float, zp: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8."""
    lo, hi = -128, 127
    if act == ACT_RELU:
        return max(lo, zp), hi
    if act == ACT_RELU6:
        return max(lo, zp), min(hi, zp + tflite_round(6.0 / scale))
    if act == ACT_RELU_N1_TO_1:
        return max(lo, zp + tflite_round(-1.0 / scale)), min(hi, zp + tflite_round(1.0 / scale))
    if act != ACT_NONE:
        raise CompareError(f"fused activation {act} is not one TFLM runs on int8")
    return lo, hi


def same_padding(in_size: int, out_size: int, k: int, stride: int, dil: int) -> int:
    """ComputePaddingHeightWidth's padding before the first row (0 for VALID outputs)."""
    eff = (k - 1) * dil + 1
    return max(0, ((out_size - 1) * stride + eff - in_size) // 2)


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling and CalculateInputRadius with 5 integer bits (int8 input)."""
    bits = 5
    real = min(beta * input_scale * (1 << (31 - bits)), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    radius = math.floor(((1 << bits) - 1) * (1 << (31 - bits)) / (1 << shift))
    return mult, shift, -radius


def f64(x: float) -> float:
    """A float32 scale as the double TFLM widens it to."""
    return float(np.float32(x))


# ---- layer descriptions

@dataclass
class Layer:
    """One operator as the harness takes it: header fields and the data sections."""

    op: str
    fields: dict[str, int]
    in1: np.ndarray
    out: np.ndarray  # the TFLM interpreter's output: what CMSIS-NN must produce
    in2: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    filter: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    mult: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    shift: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def to_bytes(self) -> bytes:
        """The layer file: FIELDS as int32, then each section on a 16-byte boundary."""
        sections = [np.ascontiguousarray(a).astype(t, copy=False).tobytes() for a, t in (
            (self.in1, "<i1"), (self.in2, "<i1"), (self.filter, "<i1"), (self.bias, "<i4"),
            (self.mult, "<i4"), (self.shift, "<i4"), (self.out, "<i1"))]
        f = dict(self.fields, MAGIC=MAGIC, VERSION=VERSION, OP=OP_CODES[self.op],
                 N_IN1=self.in1.size, N_IN2=self.in2.size, N_FILTER=self.filter.size,
                 N_BIAS=self.bias.size, N_QUANT=self.mult.size, N_OUT=self.out.size)
        if self.shift.size != self.mult.size:
            raise ValueError("one shift per multiplier")
        unknown = set(f) - set(FIELDS)
        if unknown:
            raise ValueError(f"not header fields: {sorted(unknown)}")
        out = bytearray(struct.pack(f"<{len(FIELDS)}i", *(int(f.get(k, 0)) for k in FIELDS)))
        for s in sections:
            out += bytes(-len(out) % 16) + s
        return bytes(out)


def _nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(shape) == 4:
        return tuple(int(v) for v in shape)  # type: ignore[return-value]
    if len(shape) == 2:
        return int(shape[0]), 1, 1, int(shape[1])
    raise CompareError(f"tensor shape {shape} is not NHWC or [batch, depth]")


def _per_channel(s_in: float, scales: tuple[float, ...], s_out: float, n: int):
    """PopulateConvolutionQuantizationParams: one (multiplier, shift) per output channel."""
    if len(scales) not in (1, n):
        raise CompareError(f"{len(scales)} filter scales for {n} output channels")
    pairs = [quantize_multiplier(f64(s_in) * f64(scales[c if len(scales) > 1 else 0]) / f64(s_out))
             for c in range(n)]
    return (np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32))


def describe(op, tensors, const, acts) -> Layer | None:
    """The harness's description of ``op`` (tinyscope.convert.graph.OpInfo): ``tensors`` by
    index (TensorInfo), ``const(i)`` a constant tensor's data, ``acts`` the TFLM
    interpreter's activations by index. None for an operator CMSIS-NN has no kernel for."""
    if op.name not in OP_CODES:
        return None
    o = op.options
    t_in, t_out = tensors[op.inputs[0]], tensors[op.outputs[0]]
    n, ih, iw, ic = _nhwc(t_in.shape)
    _, oh, ow, oc = _nhwc(t_out.shape)
    zin, zout = t_in.zero_points[0], t_out.zero_points[0]
    s_in, s_out = t_in.scales[0], t_out.scales[0]
    act = o.get("fusedActivationFunction", ACT_NONE)
    lo, hi = activation_range(act, s_out, zout)
    f = {"BATCH": n, "IN_H": ih, "IN_W": iw, "IN_C": ic, "OUT_H": oh, "OUT_W": ow, "OUT_C": oc,
         "IN_OFFSET": -zin, "OUT_OFFSET": zout, "ACT_MIN": lo, "ACT_MAX": hi,
         "DIL_H": o.get("dilationHFactor", 1), "DIL_W": o.get("dilationWFactor", 1)}
    x, y = acts[op.inputs[0]].reshape(-1), acts[op.outputs[0]].reshape(-1)
    layer = Layer(op.name, f, x, y)
    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        t_f = tensors[op.inputs[1]]
        kh, kw = int(t_f.shape[1]), int(t_f.shape[2])
        sh, sw = o["strideH"], o["strideW"]
        f.update(K_H=kh, K_W=kw, STRIDE_H=sh, STRIDE_W=sw, CH_MULT=oc // ic,
                 PAD_H=same_padding(ih, oh, kh, sh, f["DIL_H"]),
                 PAD_W=same_padding(iw, ow, kw, sw, f["DIL_W"]))
        layer.filter = const(op.inputs[1])
        layer.mult, layer.shift = _per_channel(s_in, t_f.scales, s_out, oc)
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            layer.bias = const(op.inputs[2])
    elif op.name == "FULLY_CONNECTED":
        t_f = tensors[op.inputs[1]]
        depth, units = int(t_f.shape[1]), int(t_f.shape[0])
        f.update(BATCH=x.size // depth, IN_H=1, IN_W=1, IN_C=depth, OUT_H=1, OUT_W=1,
                 OUT_C=units, FILTER_OFFSET=-t_f.zero_points[0],
                 PER_CHANNEL=int(len(t_f.scales) > 1))
        layer.filter = const(op.inputs[1])
        if f["PER_CHANNEL"]:
            layer.mult, layer.shift = _per_channel(s_in, t_f.scales, s_out, units)
        else:  # GetQuantizedConvolutionMultipler: the float32 product, then double
            product = f64(np.float32(s_in) * np.float32(t_f.scales[0]))
            m, s = quantize_multiplier(product / f64(s_out))
            layer.mult, layer.shift = np.array([m], np.int32), np.array([s], np.int32)
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            layer.bias = const(op.inputs[2])
    elif op.name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        kh, kw, sh, sw = o["filterHeight"], o["filterWidth"], o["strideH"], o["strideW"]
        f.update(K_H=kh, K_W=kw, STRIDE_H=sh, STRIDE_W=sw,
                 PAD_H=same_padding(ih, oh, kh, sh, 1), PAD_W=same_padding(iw, ow, kw, sw, 1))
    elif op.name == "ADD":
        _add_fields(f, tensors[op.inputs[0]], tensors[op.inputs[1]], t_out)
        layer.in2 = acts[op.inputs[1]].reshape(-1)
        if layer.in2.size != x.size:
            raise CompareError(f"ADD {op.index}: CMSIS-NN's add takes same-shape inputs only")
    elif op.name == "SOFTMAX":
        beta = f64(o.get("beta", 1.0))
        f["SM_MULT"], f["SM_SHIFT"], f["SM_DIFF_MIN"] = softmax_params(beta, f64(s_in))
    return layer


def _add_fields(f: dict[str, int], t1, t2, t_out) -> None:
    """TFLM's add_common.cc for int8: left shift 20, inputs scaled to twice the larger scale."""
    s1, s2, so = f64(t1.scales[0]), f64(t2.scales[0]), f64(t_out.scales[0])
    left = 20
    twice_max = 2 * max(s1, s2)
    f["IN1_MULT"], f["IN1_SHIFT"] = quantize_multiplier(s1 / twice_max)
    f["IN2_MULT"], f["IN2_SHIFT"] = quantize_multiplier(s2 / twice_max)
    f["OUT_MULT"], f["OUT_SHIFT"] = quantize_multiplier(twice_max / ((1 << left) * so))
    f.update(IN_OFFSET=-t1.zero_points[0], IN2_OFFSET=-t2.zero_points[0], LEFT_SHIFT=left)


def constant_reader(model: bytes):
    """``const(i)``: tensor i's constant data (int8 weights, int32 bias) from the flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(model, 0)
    sg = m.Subgraphs(0)
    types = {9: np.int8, 2: np.int32}

    def const(i: int) -> np.ndarray:
        t = sg.Tensors(i)
        b = m.Buffers(t.Buffer())
        if b.Offset() > 1:
            raw = model[b.Offset(): b.Offset() + b.Size()]
        else:
            data = b.DataAsNumpy()
            raw = data.tobytes() if isinstance(data, np.ndarray) else b""
        if t.Type() not in types or not raw:
            raise CompareError(f"tensor {i} is not a constant int8/int32 tensor of the model")
        return np.frombuffer(raw, types[t.Type()]).copy()

    return const


def model_layers(build: Path) -> list[tuple[int, str, Layer | None]]:
    """(operator index, op name, layer) of a bench build folder (manifest.json, its .tflite),
    on the bench's first test image."""
    from tinyscope.analysis.reference import tflm_tensors
    from tinyscope.convert import manifest as manifest_mod
    from tinyscope.convert.graph import read_graph
    from tinyscope.data import quantized_test_inputs

    manifest = manifest_mod.load(build)
    model = (build / manifest["model_file"]).read_bytes()
    g = read_graph(model)
    _, q, _ = quantized_test_inputs(manifest, 1)
    acts = tflm_tensors(model, q)[0]
    const = constant_reader(model)
    return [(op.index, op.name, describe(op, g.tensors, const, acts)) for op in g.ops]
