"""The operator graph of an int8 ``.tflite`` model, read with LiteRT: operators, tensors
(shape, dtype, quantization), inputs and outputs of subgraph 0.

Tensor indices are the TFLite subgraph-0 indices that ``manifest.json``, the C runtime, the
serial protocol and the desktop references (:mod:`tinyscope.analysis.reference`) all use.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int


def litert_interpreter(model: bytes, resolver: str):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kinds = {
        "ref": OpResolverType.BUILTIN_REF,
        "default": OpResolverType.AUTO,
    }
    if resolver not in kinds:
        raise ValueError(f"resolver must be one of {sorted(kinds)}, not {resolver!r}")
    with warnings.catch_warnings():
        # We keep every intermediate tensor on purpose (that is what we compare); LiteRT
        # warns that this is for debugging.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        interp = Interpreter(
            model_content=bytes(model),
            experimental_op_resolver_type=kinds[resolver],
            experimental_preserve_all_tensors=True,
        )
    interp.allocate_tensors()
    return interp


def graph(model: bytes) -> tuple[list[OpInfo], dict[int, TensorInfo], list[int], list[int]]:
    """Operators, tensors, input and output tensor indices of subgraph 0."""
    interp = litert_interpreter(model, "ref")
    ops = [
        OpInfo(
            index=int(d["index"]),
            name=str(d["op_name"]),
            inputs=tuple(int(i) for i in d["inputs"]),
            outputs=tuple(int(i) for i in d["outputs"]),
        )
        for d in interp._get_ops_details()
    ]
    tensors: dict[int, TensorInfo] = {}
    for d in interp.get_tensor_details():
        q = d["quantization_parameters"]
        tensors[int(d["index"])] = TensorInfo(
            index=int(d["index"]),
            name=str(d["name"]),
            shape=tuple(int(s) for s in d["shape"]),
            dtype=np.dtype(d["dtype"]),
            scales=tuple(float(s) for s in q["scales"]),
            zero_points=tuple(int(z) for z in q["zero_points"]),
            quantized_dimension=int(q["quantized_dimension"]),
        )
    inputs = [int(d["index"]) for d in interp.get_input_details()]
    outputs = [int(d["index"]) for d in interp.get_output_details()]
    return ops, tensors, inputs, outputs


def activation_indices(model: bytes) -> list[int]:
    """Model inputs followed by every operator output, in execution order, no repeats."""
    ops, _, inputs, _ = graph(model)
    seen: list[int] = []
    for idx in [*inputs, *(o for op in ops for o in op.outputs)]:
        if idx >= 0 and idx not in seen:
            seen.append(idx)
    return seen
