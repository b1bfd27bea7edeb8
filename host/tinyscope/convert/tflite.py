"""A user's ``.tflite`` file: what kind of model it is, and whether tinyscope can run it.

tinyscope runs a full-integer int8 ``.tflite`` byte for byte (its sha256 is the model hash),
also one whose input and output stay float32 around the int8 body (kind ``float-io``:
exactly a QUANTIZE float32 -> int8 at the input and a DEQUANTIZE int8 -> float32 at the
output, what the converter gives with ``inference_input_type = tf.float32``).
Everything else is refused *before* anything else reads the file, with a message that says
what the file is and how to export a full-integer model. The flatbuffer is read with the
schema that ships with LiteRT (no TensorFlow import).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyscope.errors import UnsupportedModelError

TFLITE_IDENTIFIER = b"TFL3"

# TFLite TensorType values (schema.fbs).
FLOAT32, FLOAT16, INT32, UINT8, INT64, INT16, INT8 = 0, 1, 2, 3, 4, 7, 9
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
               6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64"}
_TYPE_IDS = {name: code for code, name in _TYPE_NAMES.items()}

EXPORT_HINT = (
    "Export a full-integer model: converter = tf.lite.TFLiteConverter.from_keras_model(model); "
    "converter.optimizations = [tf.lite.Optimize.DEFAULT]; converter.representative_dataset = "
    "<a generator of ~100 real inputs>; converter.target_spec.supported_ops = "
    "[tf.lite.OpsSet.TFLITE_BUILTINS_INT8]; converter.inference_input_type = tf.int8; "
    "converter.inference_output_type = tf.int8. Or give tinyscope the float model "
    "(--model M.keras, .h5 or a SavedModel directory) with --data: it quantizes it for you."
)


@dataclass(frozen=True)
class TfliteSummary:
    """What a ``.tflite`` holds, read from its flatbuffer."""

    kind: str  # "int8", "float32", "float16", "dynamic-range", "int16x8", "uint8", ...
    description: str  # for a message: "a float32 model (no quantization)"
    ops: tuple[str, ...]  # builtin operator names, in graph order
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    num_subgraphs: int
    # float-io only: why the float edges are not exactly QUANTIZE in / DEQUANTIZE out
    # ("" when they are)
    edge_problem: str = ""


def _op_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def summarize(data: bytes, path: str | Path = "model.tflite") -> TfliteSummary:
    """Read ``data`` (a ``.tflite``); raises :class:`UnsupportedModelError` if it is not one."""
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        head = data[4:8] if len(data) >= 8 else data[:8]
        raise UnsupportedModelError(
            f"{path}: not a TFLite flatbuffer (file identifier {head!r}, expected "
            f"{TFLITE_IDENTIFIER!r}); give an int8 .tflite, a .keras/.h5 file or a SavedModel "
            "directory"
        )
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(data, 0)
        names = _op_names()
        sg = model.Subgraphs(0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            if code == schema.BuiltinOperator.CUSTOM:
                custom = oc.CustomCode()
                codes.append(f"CUSTOM({custom.decode(errors='replace') if custom else '?'})")
            else:
                codes.append(names.get(code, f"op {code}"))
        ops = tuple(codes[sg.Operators(i).OpcodeIndex()] for i in range(sg.OperatorsLength()))
        const_types: set[int] = set()
        act_types: set[int] = set()  # activations inside the graph (not its inputs/outputs)
        io = {sg.Inputs(i) for i in range(sg.InputsLength())} | {
            sg.Outputs(i) for i in range(sg.OutputsLength())}
        for t in range(sg.TensorsLength()):
            tensor = sg.Tensors(t)
            buf = model.Buffers(tensor.Buffer()) if tensor.Buffer() < model.BuffersLength() \
                else None
            is_const = buf is not None and (buf.DataLength() > 0 or buf.Offset() > 1)
            if is_const:
                const_types.add(int(tensor.Type()))
            elif t not in io:
                act_types.add(int(tensor.Type()))
        ins = [sg.Tensors(sg.Inputs(i)) for i in range(sg.InputsLength())]
        outs = [sg.Tensors(sg.Outputs(i)) for i in range(sg.OutputsLength())]
        in_types = tuple(_TYPE_NAMES.get(int(t.Type()), str(t.Type())) for t in ins)
        out_types = tuple(_TYPE_NAMES.get(int(t.Type()), str(t.Type())) for t in outs)
        in_shapes = tuple(tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
                          for t in ins)
        num_subgraphs = model.SubgraphsLength()
        edge_problem = _float_edge_problem(sg, ops)
    except Exception as err:  # noqa: BLE001 - a damaged buffer raises anything
        raise UnsupportedModelError(
            f"{path}: damaged or truncated .tflite ({type(err).__name__}: {err}); export it "
            "again"
        ) from err

    # Shapes and indices are not the activations' type; a one-op model has no inner tensor.
    body = (act_types - {INT32, INT64}) or {
        _TYPE_IDS[n] for n in in_types + out_types if n in _TYPE_IDS}
    if FLOAT16 in const_types:
        kind, desc = "float16", "a float16-quantized model (float16 weights, float32 compute)"
    elif INT16 in body:
        kind, desc = "int16x8", "a 16x8-quantized model (int16 activations, int8 weights)"
    elif body <= {FLOAT32} and INT8 in const_types:
        kind, desc = ("dynamic-range", "a dynamic-range quantized model (int8 weights, float32 "
                      "activations: converted without a representative dataset)")
    elif body <= {FLOAT32}:
        kind, desc = "float32", "a float32 model (not quantized)"
    elif FLOAT32 in body:
        kind, desc = "mixed", "a partly quantized model (float32 and int8 activations)"
    elif UINT8 in body and INT8 not in body:
        kind, desc = "uint8", "a uint8-quantized model (TensorFlow 1 quantization)"
    elif set(in_types + out_types) != {"int8"}:
        kind, desc = ("float-io", f"an int8 model with {'/'.join(in_types)} input and "
                      f"{'/'.join(out_types)} output")
    else:
        kind, desc = "int8", "a full-integer int8 model"
    return TfliteSummary(kind, desc, ops, in_types, out_types, in_shapes, num_subgraphs,
                         edge_problem if kind == "float-io" else "")


def _float_edge_problem(sg, ops: tuple[str, ...]) -> str:
    """Why the model's non-int8 inputs/outputs are not float32 edges the runtime runs
    (every non-int8 input float32 and read only by QUANTIZE, every non-int8 output float32
    and written by DEQUANTIZE); "" when they are."""
    consumers: dict[int, list[str]] = {}
    producer: dict[int, str] = {}
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        for k in range(op.InputsLength()):
            consumers.setdefault(int(op.Inputs(k)), []).append(ops[i])
        for k in range(op.OutputsLength()):
            producer[int(op.Outputs(k))] = ops[i]
    for kind, idxs in (("input", [sg.Inputs(i) for i in range(sg.InputsLength())]),
                       ("output", [sg.Outputs(i) for i in range(sg.OutputsLength())])):
        for idx in idxs:
            t = sg.Tensors(idx)
            dtype = int(t.Type())
            name = _TYPE_NAMES.get(dtype, str(dtype))
            if dtype == INT8:
                continue
            if dtype != FLOAT32:
                return f"its {kind} is {name} (tinyscope takes int8 or float32 edges)"
            if kind == "input":
                used = consumers.get(int(idx), [])
                if not used or any(op != "QUANTIZE" for op in used):
                    return (f"its float32 input feeds {', '.join(used) or 'no operator'}, "
                            "not a QUANTIZE to int8")
            elif producer.get(int(idx)) != "DEQUANTIZE":
                return (f"its float32 output comes from {producer.get(int(idx), 'no operator')}"
                        ", not a DEQUANTIZE from int8")
    return ""


def check_runnable(summary: TfliteSummary, path: str | Path) -> None:
    """Refuse a ``.tflite`` the int8 runtime cannot run, saying what it is and what to do."""
    custom = sorted({o for o in summary.ops if o.startswith("CUSTOM(")})
    if summary.kind == "float-io" and summary.edge_problem:
        raise UnsupportedModelError(
            f"{path} is {summary.description}, but {summary.edge_problem}: tinyscope runs "
            "float32 edges only as one QUANTIZE (float32 -> int8) at the input and one "
            "DEQUANTIZE (int8 -> float32) at the output. Export it with int8 or float32 input "
            "and output (converter.inference_input_type = tf.int8 or tf.float32; the same "
            "for inference_output_type), or give tinyscope the float model with --data"
        )
    if summary.kind not in ("int8", "float-io"):
        raise UnsupportedModelError(
            f"{path} is {summary.description}; the tinyscope runtime runs full-integer int8 "
            f"models only (int8 weights, activations, input and output). {EXPORT_HINT}"
        )
    if summary.num_subgraphs != 1:
        raise UnsupportedModelError(
            f"{path} has {summary.num_subgraphs} subgraphs (control flow such as WHILE/IF); "
            "tinyscope runs single-graph models: export the model without control flow"
        )
    if custom:
        raise UnsupportedModelError(
            f"{path} uses custom operators {', '.join(custom)}; the tinyscope runtime runs "
            "builtin TFLite operators only"
        )
    if len(summary.input_dtypes) != 1:
        raise UnsupportedModelError(
            f"{path} has {len(summary.input_dtypes)} inputs; tinyscope feeds one input tensor"
        )
    shape = summary.input_shapes[0]
    if shape and shape[0] != 1:
        raise UnsupportedModelError(
            f"{path}: input shape {list(shape)} has batch {shape[0]}; tinyscope runs batch 1: "
            "export with a fixed batch of 1 (keras.Input(..., batch_size=1))"
        )
