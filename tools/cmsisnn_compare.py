"""Per-layer instruction counts of ARM's CMSIS-NN kernels against tinyscope's, on the same
emulated Cortex-M4 (QEMU mps2-an386, ``-icount shift=0``, SysTick ticks x 40).

Usage:
    .venv/bin/python tools/cmsisnn_compare.py --cmsis-nn PATH [--suite build/bench-suite.json]
        [--out build/cmsisnn] [--models resnet8,dscnn] [--ops FULLY_CONNECTED,SOFTMAX]

PATH is a CMSIS-NN source tree (its ``Include/`` and ``Source/``; e.g. ``git archive`` of
v7.0.0-43). CMSIS-NN is not part of this repository and nothing is downloaded: the tool
compiles the CMSIS-NN sources the harness needs (arm-none-eabi-gcc -O2 -mcpu=cortex-m4
-mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16) into OUT/lib, links ``tools/cmsisnn/harness.c``
with the board start-up of the M4 kernel check (``firmware/host/m4check_semihost.c``,
``firmware/boards/qemu-mps2-an386/linker.ld``), then for every operator of every model in
the bench json (``build/bench-suite.json`` of ``python -m tinyscope.bench --suite``, or the
``bench.json`` of ``make bench MODEL=...``):

1. reads the operator from the model's ``.tflite`` (shapes, strides, padding, fused
   activation, zero points, scales, weights, bias) and computes the parameters TFLM's
   CMSIS-NN kernels give CMSIS-NN (multipliers and shifts as TFLM's QuantizeMultiplier,
   activation ranges, SAME padding, softmax's input multiplier and diff_min);
2. takes the operator's input and output on the bench's first test image from the TFLM
   interpreter (the oracle), writes them with the parameters into OUT/layers/*.bin;
3. runs the harness in QEMU on it: the bare CMSIS-NN call's instructions, and how many
   output elements differ from TFLM's (CMSIS-NN may round once where TFLM rounds twice:
   1 LSB);
4. prints and writes (OUT/compare.md, OUT/compare.json) the table: CMSIS-NN instructions,
   the bench's optimized instructions (which include the interpreter's fixed cost per
   operator, the bench's RESHAPE-alias row), that minus the fixed cost, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tools" / "cmsisnn" / "harness.c"
STARTUP = ROOT / "firmware" / "host" / "m4check_semihost.c"
LINKER = ROOT / "firmware" / "boards" / "qemu-mps2-an386" / "linker.ld"
CC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
CPU_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
CMSIS_FLAGS = ["-O2", *CPU_FLAGS]  # as issue 16 measured it (no -ffreestanding: design.md 5)
HARNESS_FLAGS = ["-O2", *CPU_FLAGS, "-std=c11", "-Wall", "-Wextra", "-Werror"]
LINK_FLAGS = ["-nostartfiles", "--specs=rdimon.specs", "-Wl,--gc-sections",
              "-Wl,--no-warn-rwx-segments", "-Wl,--defsym=__ts_flash_len=0x400000",
              "-Wl,--defsym=__ts_ram_len=0x400000"]
CMSIS_DIRS = ("ConvolutionFunctions", "FullyConnectedFunctions", "PoolingFunctions",
              "SoftmaxFunctions", "BasicMathFunctions", "NNSupportFunctions")
CMSIS_EXTRA = ("arm_nntables.c", "arm_q7_to_q15_with_offset.c")
INSTR_PER_TICK = 40  # SysTick at the 25 MHz processor clock under -icount shift=0
QEMU_TIMEOUT_S = 300

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


class CompareError(Exception):
    """A problem the user can fix; the message names the file and the fix."""


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


# ---- building and running the harness

def cmsis_sources(cmsis: Path) -> list[Path]:
    """The int8 sources of the function groups the harness calls (the linker keeps what the
    calls reach)."""
    if not (cmsis / "Include" / "arm_nnfunctions.h").is_file():
        raise CompareError(f"{cmsis} is not a CMSIS-NN source tree (no Include/arm_nnfunctions.h); "
                           "pass --cmsis-nn the folder that holds Include/ and Source/")
    srcs = [p for d in CMSIS_DIRS for p in sorted((cmsis / "Source" / d).glob("*.c"))
            if "s8" in p.name or p.name in CMSIS_EXTRA]
    if not srcs:
        raise CompareError(f"{cmsis}/Source has no int8 kernels")
    return srcs


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        res = subprocess.run(["nice", "-n", "10", *cmd], capture_output=True, text=True,
                             timeout=QEMU_TIMEOUT_S, cwd=cwd)
    except FileNotFoundError as err:
        raise CompareError(f"{what}: {cmd[0]} not found; install the toolchain "
                           "(make setup-system)") from err
    except subprocess.TimeoutExpired as err:
        raise CompareError(f"{what}: no result after {QEMU_TIMEOUT_S} s") from err
    if res.returncode != 0:
        raise CompareError(f"{what} failed (exit {res.returncode}):\n{res.stdout}{res.stderr}")
    return res.stdout


def build_harness(cmsis: Path, out: Path) -> Path:
    """OUT/lib/libcmsisnn.a (once per source and flag set) and OUT/cmsisnn-harness.elf."""
    lib_dir = out / "lib"
    lib_dir.mkdir(parents=True, exist_ok=True)
    stamp = lib_dir / "flags.txt"
    flags = " ".join(CMSIS_FLAGS) + f"\n{cmsis.resolve()}\n"
    fresh = stamp.is_file() and stamp.read_text() == flags
    objs = []
    for src in cmsis_sources(cmsis):
        obj = lib_dir / (src.stem + ".o")
        if not (fresh and obj.is_file() and obj.stat().st_mtime >= src.stat().st_mtime):
            _run([CC, *CMSIS_FLAGS, f"-I{cmsis / 'Include'}", "-c", str(src), "-o", str(obj)],
                 f"compiling {src}")
        objs.append(obj)
    stamp.write_text(flags)
    lib = lib_dir / "libcmsisnn.a"
    lib.unlink(missing_ok=True)
    _run(["arm-none-eabi-ar", "rcs", str(lib), *map(str, objs)], "archiving CMSIS-NN")
    elf = out / "cmsisnn-harness.elf"
    _run([CC, *HARNESS_FLAGS, f"-I{cmsis / 'Include'}", f"-T{LINKER}", *LINK_FLAGS, "-o", str(elf),
          str(HARNESS), str(STARTUP), str(lib)], "linking the harness")
    return elf


RESULT = re.compile(r"cmsisnn op (\d+) status (-?\d+) ticks (\d+) elements (\d+) "
                    r"mismatches (\d+) maxdiff (\d+) buffer (-?\d+)")


def parse_result(text: str) -> dict[str, int]:
    """The harness's result line as numbers; instructions = ticks x 40."""
    m = RESULT.search(text)
    if not m:
        raise CompareError(f"the harness printed no result line:\n{text}")
    keys = ("op", "status", "ticks", "elements", "mismatches", "maxdiff", "buffer")
    r = dict(zip(keys, map(int, m.groups()), strict=True))
    r["instructions"] = r["ticks"] * INSTR_PER_TICK
    return r


def run_layer(elf: Path, layer_file: Path) -> dict[str, int]:
    """One layer file through the harness. QEMU runs in the layer file's folder and the
    harness opens it by its bare name: the semihosting command line (the kernel's path and
    the -append text) holds 255 characters."""
    cmd = [QEMU, "-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "none",
           "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
           "-kernel", os.path.relpath(elf, layer_file.parent),
           "-append", f"layer {layer_file.name}"]
    return parse_result(_run(cmd, f"the harness on {layer_file}", cwd=layer_file.parent))


# ---- the table

def fixed_cost(suite: dict) -> int | None:
    """The bench's cost of an operator that does no work: the cheapest RESHAPE run as an
    alias (the interpreter loop and the per-layer callback; the same firmware code for every
    model) over the suite, or None if no model has one."""
    costs = [r["instructions_opt"] for m in suite.values() for r in m["operators"]
             if r["op"] in ("RESHAPE", "SQUEEZE")]
    return min(costs) if costs else None


def compare_rows(name: str, bench: dict, results: dict[int, dict], fixed: int | None) -> list[dict]:
    """One row per operator of a model: the bench's figures joined with the harness's."""
    rows = []
    for r in bench["operators"]:
        c = results.get(r["index"])
        ours = r["instructions_opt"]
        row = {"model": name, "index": r["index"], "layer": r["layer"], "op": r["op"],
               "shape_in": r["shape"]["in"], "shape_out": r["shape"]["out"], "macs": r["macs"],
               "tinyscope": ours, "tinyscope_kernel": None if fixed is None else ours - fixed,
               "cmsis_nn": c["instructions"] if c else None,
               "mismatches": c["mismatches"] if c else None,
               "maxdiff": c["maxdiff"] if c else None,
               "elements": c["elements"] if c else None}
        row["ratio"] = round(ours / row["cmsis_nn"], 3) if row["cmsis_nn"] else None
        row["ratio_kernel"] = (round(row["tinyscope_kernel"] / row["cmsis_nn"], 3)
                               if row["cmsis_nn"] and row["tinyscope_kernel"] is not None else None)
        rows.append(row)
    return rows


def _shape(s) -> str:
    return "x".join(str(v) for v in (s or [])[1:]) or "-"


def _n(v) -> str:
    return "-" if v is None else f"{v:,}"


def _per_mac(v, macs) -> str:
    return "-" if v is None or not macs else f"{v / macs:.2f}"


def _ratio(v: float | None, mark: bool = False) -> str:
    if v is None:
        return "-"
    return f"**{v:.2f}**" if mark and v > 1.0 else f"{v:.2f}"


def _mismatch(r: dict) -> str:
    if r["mismatches"] is None:
        return "-"
    more = f" (max {r['maxdiff']})" if r["mismatches"] else ""
    return f"{r['mismatches']} / {r['elements']}{more}"


def format_table(rows: list[dict], fixed: int | None) -> str:
    """Markdown: per layer, then per model the sums over the layers CMSIS-NN ran."""
    lines = [
        "| model | # | layer | op | in -> out | MACs | CMSIS-NN | /MAC | tinyscope (bench) | "
        "/MAC | ratio | tinyscope - fixed | ratio | mismatches |",
        "|---|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(" | ".join([
            f"| {r['model']}", str(r["index"]), r["layer"], r["op"],
            f"{_shape(r['shape_in'])} -> {_shape(r['shape_out'])}", _n(r["macs"] or None),
            _n(r["cmsis_nn"]), _per_mac(r["cmsis_nn"], r["macs"]), _n(r["tinyscope"]),
            _per_mac(r["tinyscope"], r["macs"]), _ratio(r["ratio"], mark=True),
            _n(r["tinyscope_kernel"]), _ratio(r["ratio_kernel"]), _mismatch(r)]) + " |")
    lines += ["", "| model | MACs | CMSIS-NN | /MAC | tinyscope (same layers) | /MAC | ratio | "
              "layers above 1.0x | mismatching elements |",
              "|---|--:|--:|--:|--:|--:|--:|---|--:|"]
    for name, s in model_sums(rows).items():
        lines.append(f"| {name} | {s['macs']:,} | {s['cmsis_nn']:,} | {s['cmsis_per_mac']:.2f} | "
                     f"{s['tinyscope']:,} | {s['tinyscope_per_mac']:.2f} | {s['ratio']:.2f} | "
                     f"{s['above'] or 'none'} | {s['mismatches']:,} |")
    lines += ["", f"fixed cost per operator in the bench's figures: {_n(fixed)} instructions "
              "(its cheapest RESHAPE alias); 'tinyscope - fixed' subtracts it."]
    return "\n".join(lines) + "\n"


def model_sums(rows: list[dict]) -> dict[str, dict]:
    """Per model: MACs, CMSIS-NN and tinyscope instructions over the layers CMSIS-NN ran."""
    out: dict[str, dict] = {}
    for r in rows:
        s = out.setdefault(r["model"], {"macs": 0, "cmsis_nn": 0, "tinyscope": 0, "above": "",
                                        "mismatches": 0})
        s["macs"] += r["macs"]
        if r["cmsis_nn"] is None:
            continue
        s["cmsis_nn"] += r["cmsis_nn"]
        s["tinyscope"] += r["tinyscope"]
        s["mismatches"] += r["mismatches"] or 0
        if r["ratio"] is not None and r["ratio"] > 1.0:
            s["above"] += (", " if s["above"] else "") + f"{r['layer']} {r['ratio']:.2f}"
    for s in out.values():
        s["cmsis_per_mac"] = s["cmsis_nn"] / s["macs"] if s["macs"] else 0.0
        s["tinyscope_per_mac"] = s["tinyscope"] / s["macs"] if s["macs"] else 0.0
        s["ratio"] = s["tinyscope"] / s["cmsis_nn"] if s["cmsis_nn"] else 0.0
    return out


# ---- the command

def _build_dir(entry: dict, suite: Path) -> Path:
    """The model's build folder as the suite json names it, or the same path under the
    json's own build folder (a checkout whose json was written elsewhere)."""
    p = Path(entry["build"])
    if (p / "manifest.json").is_file():
        return p
    parts = p.parts
    local = suite.parent.joinpath(*parts[parts.index("build") + 1:]) if "build" in parts else p
    if (local / "manifest.json").is_file():
        return local
    raise CompareError(f"{suite}: no build folder {p} (nor {local}); run "
                       "'python -m tinyscope.bench --suite --n 1' first")


def bench_models(data: dict, path: Path) -> dict[str, dict]:
    """The models of a bench json by name: a suite's (``--suite``), or a single bench's
    (``make bench MODEL=...``; named by its build folder, with its second model if any)."""
    if isinstance(data.get("models"), dict):
        return data["models"]
    if "operators" not in data or "build" not in data:
        raise CompareError(f"{path} is not a bench json (no 'models' nor 'operators'); "
                           "write one with 'python -m tinyscope.bench'")
    out = {Path(data["build"]).name: data}
    second = data.get("second_model")
    if isinstance(second, dict) and "operators" in second:
        out[Path(second["build"]).name] = second
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmsis-nn", type=Path, required=True, help="CMSIS-NN source tree")
    ap.add_argument("--suite", type=Path, default=ROOT / "build" / "bench-suite.json",
                    help="a bench json: build/bench-suite.json or a 'make bench' bench.json")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "cmsisnn")
    ap.add_argument("--models", default="", help="comma-separated suite names (default: all)")
    ap.add_argument("--ops", default="", help="comma-separated operators to run (default: all)")
    args = ap.parse_args(argv)
    try:
        if not args.suite.is_file():
            raise CompareError(f"{args.suite} not found; run "
                               "'python -m tinyscope.bench --suite --n 1'")
        suite = bench_models(json.loads(args.suite.read_text()), args.suite)
        wanted = [m for m in args.models.split(",") if m] or list(suite)
        ops = {o for o in args.ops.split(",") if o}
        elf = build_harness(args.cmsis_nn, args.out)
        rows: list[dict] = []
        fixed = fixed_cost(suite)
        for name in wanted:
            if name not in suite:
                raise CompareError(f"{args.suite} has no model {name!r} "
                                   f"(it has {', '.join(suite)})")
            results = {}
            for index, op, layer in model_layers(_build_dir(suite[name], args.suite)):
                if layer is None or (ops and op not in ops):
                    continue
                path = args.out / "layers" / f"{name}-{index:02d}.bin"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(layer.to_bytes())
                results[index] = run_layer(elf, path)
                print(f"{name} {index:2d} {op:18s} {results[index]}", flush=True)
            rows += [r for r in compare_rows(name, suite[name], results, fixed)
                     if not ops or r["op"] in ops]
        table = format_table(rows, fixed)
        print(table)
        (args.out / "compare.md").write_text(table)
        (args.out / "compare.json").write_text(json.dumps(
            {"cmsis_nn": str(args.cmsis_nn), "flags": CMSIS_FLAGS, "rows": rows,
             "fixed_cost": fixed, "sums": model_sums(rows)}, indent=1) + "\n")
    except CompareError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
