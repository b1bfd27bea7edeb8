"""The operator graph of a ``.tflite`` model, read straight from its flatbuffer.

Operators (builtin name, inputs, outputs, builtin options), tensors (name, shape, dtype,
quantization, whether a constant buffer backs them), and the inputs and outputs of
subgraph 0, without building an interpreter: reading the graph never runs a kernel's
preparation, so a model that a reference interpreter would abort on (a softmax whose
``beta * input_scale`` is out of range, an operator LiteRT's resolver lacks) can still be
inspected, described in the manifest and refused with a message.

The flatbuffer accessors are the ``tflite`` schema module shipped with LiteRT
(``ai_edge_litert.schema_py_generated``), or TensorFlow's copy of it. They do not check
offsets, so every read is wrapped: a damaged file becomes :class:`ModelFormatError`.
Tensor indices are the TFLite subgraph-0 indices that the manifest, the C runtime, the
serial protocol and the desktop references all use.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from tinyscope.errors import TinyscopeError

FILE_IDENTIFIER = b"TFL3"

# TensorType name -> numpy dtype (the types an int8 model and its float variants use).
_NUMPY_TYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64,
    "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "UINT16": np.uint16,
    "INT32": np.int32, "UINT32": np.uint32, "INT64": np.int64, "UINT64": np.uint64,
    "BOOL": np.bool_, "COMPLEX64": np.complex64, "COMPLEX128": np.complex128,
    "STRING": np.object_,
}


class ModelFormatError(TinyscopeError):
    """The bytes are not a readable ``.tflite`` flatbuffer."""


@dataclass(frozen=True)
class OpInfo:
    """One operator of subgraph 0, in execution order."""

    index: int
    name: str  # builtin name, e.g. "CONV_2D" (a custom op: its custom code)
    inputs: tuple[int, ...]  # tensor indices; -1 for an omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    version: int = 1


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of subgraph 0."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int
    constant: bool = False  # backed by a non-empty buffer (weights, biases, shapes)


@dataclass(frozen=True)
class Graph:
    """Subgraph 0 of a model: operators, tensors by index, input and output indices."""

    ops: list[OpInfo]
    tensors: dict[int, TensorInfo]
    inputs: list[int]
    outputs: list[int]

    def activation_indices(self) -> list[int]:
        """Model inputs followed by every operator output, in execution order, no repeats."""
        seen: dict[int, None] = {}
        for idx in [*self.inputs, *(o for op in self.ops for o in op.outputs)]:
            if idx >= 0:
                seen.setdefault(idx, None)
        return list(seen)


@functools.lru_cache(maxsize=1)
def _schema() -> ModuleType:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated as schema
        except ImportError as err:
            raise TinyscopeError(
                "reading a .tflite graph needs the tflite schema module of ai-edge-litert "
                "or tensorflow; install the project's packages with 'make setup'"
            ) from err
    return schema


@functools.lru_cache(maxsize=1)
def _enum_names() -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    schema = _schema()

    def names(cls) -> dict[int, str]:
        return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}

    return names(schema.BuiltinOperator), names(schema.TensorType), names(schema.BuiltinOptions)


def _plain(value: Any) -> Any:
    """Option values as plain Python (numpy arrays -> lists, bytes -> str)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _options(schema: ModuleType, op, option_names: dict[int, str]) -> dict[str, Any]:
    kind = op.BuiltinOptionsType()
    if not kind:
        return {}
    table = op.BuiltinOptions()
    obj = schema.BuiltinOptionsCreator(kind, table) if table is not None else None
    if obj is None:
        return {"type": option_names.get(kind, str(kind))}
    out = {k: _plain(v) for k, v in vars(obj).items()}
    out["type"] = option_names.get(kind, str(kind))
    return out


def _ints(arr) -> tuple[int, ...]:
    # The generated *AsNumpy accessors return the int 0 for an absent vector.
    return tuple(int(v) for v in arr) if isinstance(arr, np.ndarray) else ()


def _read(model: bytes) -> Graph:
    schema = _schema()
    op_names, type_names, option_names = _enum_names()
    buf = bytes(model)
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        raise ModelFormatError(
            "not a TFLite flatbuffer (no 'TFL3' identifier at byte 4); convert the model with "
            "'tinyscope convert MODEL.keras --out BUILD' or pass a .tflite file"
        )
    m = schema.Model.GetRootAs(buf, 0)
    if m.SubgraphsLength() < 1:
        raise ModelFormatError("the .tflite model has no subgraph")
    sg = m.Subgraphs(0)
    codes = []
    for k in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(k)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = op_names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM" and oc.CustomCode():
            name = oc.CustomCode().decode("utf-8", "replace")
        codes.append((name, int(oc.Version())))
    buffers_with_data = set()
    for b in range(m.BuffersLength()):
        buffer = m.Buffers(b)
        if buffer.DataLength() > 0 or buffer.Size() > 0:
            buffers_with_data.add(b)
    tensors: dict[int, TensorInfo] = {}
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        scales: tuple[float, ...] = ()
        zps: tuple[int, ...] = ()
        qdim = 0
        if q is not None:
            s = q.ScaleAsNumpy()
            z = q.ZeroPointAsNumpy()
            scales = tuple(float(v) for v in s) if isinstance(s, np.ndarray) else ()
            zps = _ints(z)
            qdim = int(q.QuantizedDimension())
        type_name = type_names.get(int(t.Type()), str(t.Type()))
        if type_name not in _NUMPY_TYPES:
            raise ModelFormatError(
                f"tensor {i} has type {type_name}, which tinyscope cannot represent; "
                "convert the model to int8 (tinyscope convert)"
            )
        tensors[i] = TensorInfo(
            index=i,
            name=(t.Name() or b"").decode("utf-8", "replace"),
            shape=_ints(t.ShapeAsNumpy()),
            dtype=np.dtype(_NUMPY_TYPES[type_name]),
            scales=scales,
            zero_points=zps,
            quantized_dimension=qdim,
            constant=int(t.Buffer()) in buffers_with_data,
        )
    ops: list[OpInfo] = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        idx = int(op.OpcodeIndex())
        if not 0 <= idx < len(codes):
            raise ModelFormatError(
                f"operator {k} names operator code {idx} but the model has {len(codes)}"
            )
        ins, outs = _ints(op.InputsAsNumpy()), _ints(op.OutputsAsNumpy())
        bad = [t for t in (*ins, *outs) if t >= len(tensors) or t < -1]
        if bad:
            raise ModelFormatError(
                f"operator {k} ({codes[idx][0]}) names tensor {bad[0]} but subgraph 0 has "
                f"{len(tensors)} tensors"
            )
        ops.append(OpInfo(index=k, name=codes[idx][0], inputs=ins, outputs=outs,
                          options=_options(schema, op, option_names), version=codes[idx][1]))
    inputs, outputs = list(_ints(sg.InputsAsNumpy())), list(_ints(sg.OutputsAsNumpy()))
    bad = [t for t in (*inputs, *outputs) if not 0 <= t < len(tensors)]
    if bad:
        raise ModelFormatError(f"subgraph 0 input/output names tensor {bad[0]} of "
                               f"{len(tensors)}")
    return Graph(ops=ops, tensors=tensors, inputs=inputs, outputs=outputs)


@functools.lru_cache(maxsize=8)
def _read_cached(model: bytes) -> Graph:
    try:
        return _read(model)
    except TinyscopeError:
        raise
    except (IndexError, struct.error, ValueError, TypeError, UnicodeError) as err:
        raise ModelFormatError(
            f"the .tflite flatbuffer is damaged ({type(err).__name__}: {err}); convert the "
            "model again"
        ) from err


def read_graph(model: bytes | bytearray | memoryview) -> Graph:
    """The graph of subgraph 0 (cached for the last few models; treat it as read-only)."""
    return _read_cached(bytes(model))


def graph(model: bytes) -> tuple[list[OpInfo], dict[int, TensorInfo], list[int], list[int]]:
    """Operators, tensors, input and output tensor indices of subgraph 0."""
    g = read_graph(model)
    return list(g.ops), dict(g.tensors), list(g.inputs), list(g.outputs)


def activation_indices(model: bytes) -> list[int]:
    """Model inputs followed by every operator output, in execution order, no repeats."""
    return read_graph(model).activation_indices()


def activation_bytes(model: bytes, align: int = 1) -> tuple[int, int]:
    """(largest activation, all activations) in bytes, each rounded up to ``align``: what an
    interpreter that keeps every tensor (``kPreserveAllTensors``) must hold."""
    g = read_graph(model)
    sizes = [-(-int(np.prod(g.tensors[i].shape, dtype=np.int64)) * g.tensors[i].dtype.itemsize
               // align) * align for i in g.activation_indices()]
    return (max(sizes, default=0), sum(sizes))


def tflm_arena_size(model: bytes) -> int:
    """Arena bytes for TFLM's Python interpreter on ``model``, also keeping every tensor
    (``kPreserveAllTensors``): its default (10x the model) plus twice the activations (each
    16-byte aligned) plus 64 KiB for scratch buffers. The default alone is too small for a
    camera model with small weights and large feature maps."""
    _, total = activation_bytes(model, align=16)
    return 10 * len(model) + 2 * total + 65536
