"""Desktop references for an int8 TFLite model: every tensor, by index.

Three int8 references, one call each, all returning ``list[dict[tensor_index, ndarray]]``
(one dict per input image) for the model input(s) and every operator output:

* :func:`litert_tensors` with ``resolver="ref"``: LiteRT with ``BUILTIN_REF`` kernels. They
  round as the TFLM reference kernels (double rounding) except FULLY_CONNECTED, which in
  ai-edge-litert 2.3.0 rounds once: a few logits differ by 1 LSB from TFLM (proven element
  by element in tests/test_host_reference.py). TFLM is therefore the device's reference;
* :func:`litert_tensors` with ``resolver="default"``: LiteRT's default (XNNPACK) kernels,
  what users usually see on a desktop; may differ by a few LSB (single rounding);
* :func:`tflm_tensors`: the TFLM reference interpreter itself (``tflite-micro`` on PyPI).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from tinyscope.errors import TinyscopeError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TensorDict = dict[int, np.ndarray]


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


def _litert_interpreter(model: bytes, resolver: str):
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
    interp = _litert_interpreter(model, "ref")
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


def _check_inputs(inputs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    inputs = np.asarray(inputs)
    if inputs.dtype != np.int8:
        raise TinyscopeError(f"int8 reference needs int8 inputs, got {inputs.dtype}")
    per_image = tuple(shape[1:]) if len(shape) > 1 and shape[0] == 1 else tuple(shape)
    if tuple(inputs.shape[1:]) != per_image:
        raise TinyscopeError(
            f"input batch has images of shape {tuple(inputs.shape[1:])} but the model "
            f"expects {per_image}; resize the images or convert the model for that size"
        )
    return inputs


def litert_tensors(model: bytes, inputs: np.ndarray, resolver: str = "ref") -> list[TensorDict]:
    """Run LiteRT on each int8 input (batch on axis 0); every activation tensor, by index."""
    interp = _litert_interpreter(model, resolver)
    in_detail = interp.get_input_details()[0]
    inputs = _check_inputs(inputs, tuple(in_detail["shape"]))
    wanted = activation_indices(model)
    results: list[TensorDict] = []
    for image in inputs:
        interp.set_tensor(in_detail["index"], image.reshape(in_detail["shape"]))
        interp.invoke()
        results.append({i: np.array(interp.get_tensor(i)) for i in wanted})
    return results


def tflm_tensors(model: bytes, inputs: np.ndarray) -> list[TensorDict]:
    """Run the TFLM reference interpreter on each int8 input; every activation, by index."""
    from tflite_micro import runtime

    _, tensors, in_idx, _ = graph(model)
    wanted = activation_indices(model)
    # GetTensor with an index out of range segfaults: only ask for indices the graph has.
    if any(i not in tensors for i in wanted):
        raise TinyscopeError("model graph names a tensor index it does not define")
    interp = runtime.Interpreter.from_bytes(
        bytes(model), intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors
    )
    shape = tensors[in_idx[0]].shape
    inputs = _check_inputs(inputs, shape)
    results: list[TensorDict] = []
    for image in inputs:
        interp.set_input(image.reshape(shape), 0)
        interp.invoke()
        out: TensorDict = {}
        for i in wanted:
            data = np.asarray(interp.GetTensor(i, 0)["tensor_data"])
            out[i] = data.reshape(tensors[i].shape).astype(tensors[i].dtype, copy=False)
        results.append(out)
    return results


def float_tensors(keras_model, model: bytes, float_inputs: np.ndarray) -> dict[int, np.ndarray]:
    """The float Keras model's per-layer outputs on the same tensor indices as the int8 model.

    Operators are matched to Keras layers by the graph (op kind, order and output shape), not
    by tensor names; see :mod:`tinyscope.floatref`. Returns ``{tensor_index: (N, ...)}``.
    """
    from tinyscope import floatref

    return floatref.float_tensors(keras_model, model, float_inputs)
