"""``manifest.json``: everything the host and the firmware need to know about a converted model.

Built from the int8 flatbuffer's operator graph (and the float Keras model for layer names);
see docs/pipeline.md for every field. Tensor indices are the TFLite subgraph-0 indices that
``tinyscope.analysis.reference``, the C runtime and the serial protocol all use.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tinyscope.convert import graph as model_graph
from tinyscope.errors import TinyscopeError

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"

# The operator set of the tinyscope C runtime: firmware/runtime/src/ts_ops.def (the one list;
# tests/runtime/test_ops.py checks this tuple and docs/pipeline.md against it).
SUPPORTED_OPS = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "HARD_SWISH", "LEAKY_RELU", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D", "MEAN",
    "MINIMUM", "MUL", "PAD", "QUANTIZE", "RELU", "RELU6", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX", "SQUEEZE", "STRIDED_SLICE", "SUB", "TANH",
    "TRANSPOSE_CONV",
)
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _scatter_taps(n_in: int, k: int, stride: int, n_out: int) -> int:
    """Along one axis of a transposed convolution: the (input position, filter tap) pairs
    whose output position ``i * stride - pad + t`` lies inside the output. The padding is
    TFLite's ComputePaddingHeightWidth of a convolution from the output (size ``n_out``)
    back to the input (size ``n_in``): ``max((n_in - 1) * stride + k - n_out, 0) // 2``, the
    same for SAME and VALID (VALID's is 0)."""
    pad = max((n_in - 1) * stride + k - n_out, 0) // 2
    return sum(1 for i in range(n_in) for t in range(k) if 0 <= i * stride - pad + t < n_out)


def op_macs(name: str, inputs: tuple[int, ...], outputs: tuple[int, ...], tensors,
            options: dict | None = None) -> int:
    """Multiply-accumulates of one operator (0 for ops without MACs), as the reference
    kernels compute them."""
    if name not in MAC_OPS or len(inputs) < 2 or not outputs:
        return 0
    out = tensors[outputs[0]].shape
    w = tensors[inputs[1]].shape
    if name == "TRANSPOSE_CONV":
        # inputs: output shape, filter (O,KH,KW,I), input (N,H,W,I)[, bias]. TFLM's reference
        # scatters every input element through every filter tap that lands inside the
        # output, for every output channel.
        if len(inputs) < 3 or inputs[2] < 0 or len(out) != 4 or len(w) != 4:
            return 0
        x = tensors[inputs[2]].shape
        opts = options or {}
        sh, sw = int(opts.get("strideH", 1) or 1), int(opts.get("strideW", 1) or 1)
        taps = (_scatter_taps(int(x[1]), int(w[1]), sh, int(out[1]))
                * _scatter_taps(int(x[2]), int(w[2]), sw, int(out[2])))
        return int(x[0]) * taps * int(w[3]) * int(w[0])
    if name == "CONV_2D":  # out (N,H,W,O), filter (O,KH,KW,I)
        return int(np.prod(out)) * int(np.prod(w[1:]))
    if name == "DEPTHWISE_CONV_2D":  # filter (1,KH,KW,O)
        return int(np.prod(out)) * int(w[1] * w[2])
    return int(np.prod(out)) * int(w[-1])  # FULLY_CONNECTED: weights (O, I)


def _tensor_entry(t, activations: set[int]) -> dict:
    return {
        "index": t.index,
        "name": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype.name,
        "scales": list(t.scales),
        "zero_points": list(t.zero_points),
        "quantized_dimension": t.quantized_dimension,
        "kind": "activation" if t.index in activations else "constant",
        "bytes": int(np.prod(t.shape, dtype=np.int64)) * t.dtype.itemsize,
    }


def _io_entry(t) -> dict:
    return {
        "index": t.index,
        "name": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype.name,
        "scale": t.scales[0] if t.scales else 0.0,
        "zero_point": t.zero_points[0] if t.zero_points else 0,
    }


def _float_edges(inp: dict, out: dict, ops, tensors) -> None:
    """A float32 input read by a QUANTIZE gets ``quantized_as`` (that QUANTIZE's int8
    output: index, scale, zero point), a float32 output written by a DEQUANTIZE gets
    ``dequantized_from`` (its int8 input): the int8 body's edges of a float-I/O model."""
    def entry(index: int) -> dict:
        t = _io_entry(tensors[index])
        return {k: t[k] for k in ("index", "dtype", "scale", "zero_point")}

    for op in ops:
        if (inp["dtype"] == "float32" and op.name == "QUANTIZE" and op.inputs
                and op.inputs[0] == inp["index"] and "quantized_as" not in inp):
            inp["quantized_as"] = entry(op.outputs[0])
        if (out["dtype"] == "float32" and op.name == "DEQUANTIZE" and op.outputs
                and op.outputs[0] == out["index"]):
            out["dequantized_from"] = entry(op.inputs[0])


def input_quant(manifest: dict) -> dict:
    """The int8 quantization (``scale``, ``zero_point``) of the model's input: the input's own,
    or for a float32 input the QUANTIZE output that the int8 body reads."""
    return manifest["input"].get("quantized_as") or manifest["input"]


def input_dtype(manifest: dict) -> np.dtype:
    """The numpy type of the model input the device takes (int8, or float32 for a model
    with a float32 input edge)."""
    return np.dtype(manifest["input"].get("dtype", "int8"))


_ARENA_SCRIPT = """
import sys
from tflite_micro import runtime
runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2])).print_allocations()
"""


def tflm_arena(model_path: Path) -> dict[str, int] | None:
    """TFLM's arena use for the model (total/head/tail bytes), or None if unavailable.

    ``print_allocations`` prints from C (to stderr), so it runs in a subprocess (which also
    contains an abort on a model TFLM cannot prepare). The arena offered is sized from the
    model (:func:`tinyscope.convert.graph.tflm_arena_size`); TFLM reports what it used.
    """
    try:
        size = model_graph.tflm_arena_size(Path(model_path).read_bytes())
        proc = subprocess.run(
            [sys.executable, "-c", _ARENA_SCRIPT, str(model_path), str(size)],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    except (OSError, subprocess.TimeoutExpired, TinyscopeError):
        return None
    out: dict[str, int] = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        parts = line.split()
        if "Arena allocation" in line and len(parts) >= 2 and parts[-1] == "bytes":
            out[parts[-3]] = int(parts[-2])
    return out or None


# The TF op a tensor-name part ends in, when the part before it is the Keras layer.
_COMPUTE_OPS = ("convolution", "depthwise", "MatMul", "AvgPool", "MaxPool", "Add", "add",
                "Mean", "Pad", "Reshape", "Softmax", "concat")
_GENERIC_NAMES = ("StatefulPartitionedCall", "serving_default", "PartitionedCall", "tfl.")


def short_name(tensor_name: str, op_name: str, op_index: int) -> str:
    """A readable operator name from its output tensor's name (no Keras model at hand).

    TFLite joins the names of fused TF ops with ``;`` (``model_1/conv1_relu_1/Relu;
    model_1/conv1_1/convolution;...``): the layer whose compute op is named wins
    (``conv1``), else the first one; Keras 3's ``_1`` trace suffix goes when the model scope
    has it too. Generic names (``StatefulPartitionedCall_1:0``) become ``<op>_<index>``.
    """
    parts = [p.split(":")[0] for p in tensor_name.split(";") if p]
    paths = [p.split("/") for p in parts if not p.startswith(_GENERIC_NAMES)]
    if not paths:
        return f"{op_name.lower()}_{op_index}"
    chosen = next((p for p in paths if len(p) >= 3 and p[-1].rstrip("0123456789") in
                   _COMPUTE_OPS), paths[0])
    scope = chosen[0] if len(chosen) >= 2 else ""
    layer = chosen[1] if len(chosen) >= 3 else chosen[-1]
    if scope.endswith("_1") and layer.endswith("_1") and len(layer) > 2:
        layer = layer[:-2]
    return layer[:32] or f"{op_name.lower()}_{op_index}"


def float_model_path(manifest: dict) -> str | None:
    """The float Keras model of a build (``--float-model``, or the converted .keras/.h5);
    None for a .tflite or SavedModel without a float twin."""
    if "float_model" in manifest:
        return manifest["float_model"]
    return manifest.get("source_model")  # manifests written before float_model existed


def op_label(op: dict | None) -> str:
    """What to call an operator in tables and figures: its Keras layer, else its name."""
    if op is None:
        return "input"
    return op.get("keras_layer") or op.get("name") or f"{op['op'].lower()}_{op['index']}"


def build(
    model_bytes: bytes,
    layer_map=None,
    *,
    extra: dict | None = None,
    arena: dict[str, int] | None = None,
) -> dict:
    """The manifest dict for ``model_bytes`` (``layer_map`` from
    :func:`tinyscope.convert.layermap.map_layers`)."""
    ops, tensors, inputs, outputs = model_graph.graph(model_bytes)
    activations = model_graph.activation_indices(model_bytes)
    act_set = set(activations)
    operators = []
    seen: set[str] = set()
    for op in ops:
        layer = layer_map.op_layer.get(op.index) if layer_map else None
        out = tensors.get(op.outputs[0]) if op.outputs else None
        name = layer or short_name(out.name if out else "", op.name, op.index)
        if name in seen:
            name = f"{name}_{op.index}"
        seen.add(name)
        operators.append({
            "index": op.index,
            "op": op.name,
            "name": name,
            "inputs": list(op.inputs),
            "outputs": list(op.outputs),
            "keras_layer": layer,
            "fused_layers": list(layer_map.op_fused.get(op.index, [])) if layer_map else [],
            "macs": op_macs(op.name, op.inputs, op.outputs, tensors, op.options),
            "supported": op.name in SUPPORTED_OPS,
        })
    first_conv = next((o for o in operators if o["op"] == "CONV_2D"), None)
    if first_conv is None:
        first_conv = next((o for o in operators if o["op"] in MAC_OPS), operators[0])
    last = operators[-1]
    if (last["op"] == "DEQUANTIZE" and len(operators) > 1
            and operators[-2]["outputs"][0] == last["inputs"][0]):
        last = operators[-2]  # a float32 output edge: the logits are inside the int8 body
    logits = last["inputs"][0] if last["op"] == "SOFTMAX" else operators[-1]["outputs"][0]
    act_bytes = [_tensor_entry(tensors[i], act_set)["bytes"] for i in activations]
    const_bytes = sum(
        _tensor_entry(t, act_set)["bytes"] for i, t in tensors.items() if i not in act_set
    )
    input_entry, output_entry = _io_entry(tensors[inputs[0]]), _io_entry(tensors[outputs[0]])
    _float_edges(input_entry, output_entry, ops, tensors)
    manifest = {
        "tinyscope_manifest": MANIFEST_VERSION,
        "model_file": "model_int8.tflite",
        "model_sha256": sha256(model_bytes),
        "model_bytes": len(model_bytes),
        "input": input_entry,
        "output": output_entry,
        "inputs": [_io_entry(tensors[i]) for i in inputs],
        "outputs": [_io_entry(tensors[i]) for i in outputs],
        "first_layer_output": first_conv["outputs"][0],
        "first_layer_op": first_conv["index"],
        "logits_tensor": logits,
        "activations": activations,
        "operators": operators,
        "tensors": [_tensor_entry(tensors[i], act_set) for i in sorted(tensors)],
        "total_macs": sum(o["macs"] for o in operators),
        "sizes": {
            "model_bytes": len(model_bytes),
            "constant_bytes": const_bytes,
            "largest_activation_bytes": max(act_bytes),
            "activation_bytes_total": sum(act_bytes),
            "tflm_arena": arena,
        },
        "unsupported": [
            {"op_index": o["index"], "op": o["op"], "keras_layer": o["keras_layer"]}
            for o in operators if not o["supported"]
        ],
    }
    if extra:
        manifest.update(extra)
    return manifest


def write(path: Path, manifest: dict) -> None:
    from tinyscope.fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")


def load(build_dir: str | Path) -> dict:
    """Read ``BUILD_DIR/manifest.json`` and check it matches ``model_int8.tflite`` there."""
    root = Path(build_dir)
    path = root / MANIFEST_NAME if root.is_dir() else root
    if not path.is_file():
        raise TinyscopeError(
            f"{path}: no manifest; run 'tinyscope convert MODEL.keras --out {root}' first"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise TinyscopeError(
            f"{path}: not valid JSON ({err}); run tinyscope convert again"
        ) from err
    if manifest.get("tinyscope_manifest") != MANIFEST_VERSION:
        raise TinyscopeError(f"{path}: not a tinyscope manifest (version {MANIFEST_VERSION})")
    return manifest


def model_bytes(build_dir: str | Path, manifest: dict | None = None) -> bytes:
    """The ``.tflite`` bytes of a build dir, checked against the manifest's sha256."""
    root = Path(build_dir)
    manifest = manifest or load(root)
    path = root / manifest["model_file"]
    if not path.is_file():
        raise TinyscopeError(f"{path} missing; run tinyscope convert again")
    data = path.read_bytes()
    if sha256(data) != manifest["model_sha256"]:
        raise TinyscopeError(
            f"{path} does not match {root / MANIFEST_NAME} (sha256 differs); it was changed "
            "after conversion: run tinyscope convert again"
        )
    return data
