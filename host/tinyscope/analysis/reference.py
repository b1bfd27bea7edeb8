"""Desktop references for an int8 TFLite model: every tensor, by index.

The model's input is int8, or float32 for a model whose int8 body starts with a QUANTIZE
(its float32 inputs are fed as they are). Three int8 references, one call each, all
returning ``list[dict[tensor_index, ndarray]]`` (one dict per input image) for the model
input(s) and every operator output:

* :func:`litert_tensors` with ``resolver="ref"``: LiteRT with ``BUILTIN_REF`` kernels. They
  round as the TFLM reference kernels (double rounding) except FULLY_CONNECTED, which in
  ai-edge-litert 2.3.0 rounds once: a few logits differ by 1 LSB from TFLM (proven element
  by element in tests/analysis/test_reference.py). TFLM is therefore the device's reference;
* :func:`litert_tensors` with ``resolver="default"``: LiteRT's default (XNNPACK) kernels,
  what users usually see on a desktop; may differ by a few LSB (single rounding);
* :func:`tflm_tensors`: the TFLM reference interpreter itself (``tflite-micro`` on PyPI).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from tinyscope.convert.graph import activation_indices, graph, tflm_arena_size
from tinyscope.errors import TinyscopeError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TensorDict = dict[int, np.ndarray]
# TFLM's Python interpreter defaults to an arena of 10x the model size; keeping every tensor
# (kPreserveAllTensors) needs room for all activations at once, which a camera model with
# small weights and large feature maps exceeds. Doubling on a failed allocation, at most:
TFLM_ARENA_RETRIES = 3


def litert_interpreter(model: bytes, resolver: str):
    """A LiteRT interpreter keeping every tensor, allocated (which runs the kernels' prepare:
    in a worker process, see :mod:`tinyscope.analysis.references`)."""
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


def _tflm_interpreter(model: bytes):
    from tflite_micro import runtime

    arena = tflm_arena_size(model)
    for attempt in range(TFLM_ARENA_RETRIES + 1):
        try:
            return runtime.Interpreter.from_bytes(
                bytes(model), arena_size=arena,
                intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
            )
        except RuntimeError as err:
            if attempt == TFLM_ARENA_RETRIES:
                raise TinyscopeError(
                    f"the TFLM interpreter could not allocate the model's tensors in "
                    f"{arena:,} bytes ({err})"
                ) from err
            arena *= 2
    raise AssertionError("unreachable")


def _check_inputs(inputs: np.ndarray, shape: tuple[int, ...], dtype) -> np.ndarray:
    """``inputs`` as a batch of the model's input: its type (int8 or float32) and shape."""
    inputs = np.asarray(inputs)
    if inputs.dtype != np.dtype(dtype):
        raise TinyscopeError(f"the model's input is {np.dtype(dtype).name}; the reference got "
                             f"{inputs.dtype} inputs")
    per_image = tuple(shape[1:]) if len(shape) > 1 and shape[0] == 1 else tuple(shape)
    if tuple(inputs.shape[1:]) != per_image:
        raise TinyscopeError(
            f"input batch has images of shape {tuple(inputs.shape[1:])} but the model "
            f"expects {per_image}; resize the images or convert the model for that size"
        )
    return inputs


def litert_tensors(model: bytes, inputs: np.ndarray, resolver: str = "ref") -> list[TensorDict]:
    """Run LiteRT on each input (batch on axis 0); every activation tensor, by index."""
    interp = litert_interpreter(model, resolver)
    in_detail = interp.get_input_details()[0]
    inputs = _check_inputs(inputs, tuple(in_detail["shape"]), in_detail["dtype"])
    wanted = activation_indices(model)
    results: list[TensorDict] = []
    for image in inputs:
        interp.set_tensor(in_detail["index"], image.reshape(in_detail["shape"]))
        interp.invoke()
        results.append({i: np.array(interp.get_tensor(i)) for i in wanted})
    return results


def tflm_tensors(model: bytes, inputs: np.ndarray) -> list[TensorDict]:
    """Run the TFLM reference interpreter on each input; every activation, by index."""
    _, tensors, in_idx, _ = graph(model)
    wanted = activation_indices(model)
    # GetTensor with an index out of range segfaults: only ask for indices the graph has.
    if any(i not in tensors for i in wanted):
        raise TinyscopeError("model graph names a tensor index it does not define")
    interp = _tflm_interpreter(model)
    shape = tensors[in_idx[0]].shape
    inputs = _check_inputs(inputs, shape, tensors[in_idx[0]].dtype)
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
