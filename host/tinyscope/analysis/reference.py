"""Desktop references for an int8 TFLite model: every tensor, by index.

Three int8 references, one call each, all returning ``list[dict[tensor_index, ndarray]]``
(one dict per input image) for the model input(s) and every operator output:

* :func:`litert_tensors` with ``resolver="ref"``: LiteRT with ``BUILTIN_REF`` kernels. They
  round as the TFLM reference kernels (double rounding) except FULLY_CONNECTED, which in
  ai-edge-litert 2.3.0 rounds once: a few logits differ by 1 LSB from TFLM (proven element
  by element in tests/analysis/test_reference.py). TFLM is therefore the device's reference;
* :func:`litert_tensors` with ``resolver="default"``: LiteRT's default (XNNPACK) kernels,
  what users usually see on a desktop; may differ by a few LSB (single rounding);
* :func:`tflm_tensors`: the TFLM reference interpreter itself (``tflite-micro`` on PyPI).
"""

from __future__ import annotations

import numpy as np

from tinyscope.convert.graph import activation_indices, graph, litert_interpreter
from tinyscope.errors import TinyscopeError

TensorDict = dict[int, np.ndarray]


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
    interp = litert_interpreter(model, resolver)
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
