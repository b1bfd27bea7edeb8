"""TFLM's digests of every operator output: what a verified capture compares the device's
DIGEST frames with (analysis/verify.py). :func:`worker_digests` runs in the reference worker
process (analysis/references.py, job kind ``tflm_digests``), where a TFLM abort cannot take
tinyscope down; the digest itself is ``device.protocol.tensor_digests`` (docs/protocol.md).
"""

from __future__ import annotations

import hashlib

import numpy as np

from tinyscope.device import protocol as proto
from tinyscope.errors import TinyscopeError


def reference_digests(tflite_bytes: bytes, inputs: np.ndarray,
                      out_tensors: list[int]) -> np.ndarray:
    """``(len(inputs), len(out_tensors))`` uint32: the digest of each operator's output
    tensor as the TFLM reference interpreter computes it (in this process: the capture uses
    :class:`ReferenceDigests`, which runs it in the reference worker)."""
    digests = worker_digests(tflite_bytes, inputs, out_tensors)
    return np.stack([digests[t] for t in out_tensors], axis=1).reshape(len(inputs), -1)


_INTERPRETERS: dict[str, tuple] = {}  # the worker's TFLM interpreter, kept between batches


def worker_digests(tflite_bytes: bytes, inputs: np.ndarray,
                   out_tensors: list[int]) -> dict[int, np.ndarray]:
    """``{tensor: (N,) uint32}``: TFLM's digest of each operator output for each input. Runs
    in the reference worker process (references.run_job, kind ``tflm_digests``), where a
    TFLM abort cannot take tinyscope down; the interpreter is built once per model."""
    from tinyscope.analysis import reference
    from tinyscope.convert.graph import graph

    key = hashlib.sha256(tflite_bytes).hexdigest()
    if key not in _INTERPRETERS:
        _, tensors, in_idx, _ = graph(tflite_bytes)
        # GetTensor with an index out of range segfaults: only ask for indices the graph has.
        if any(t not in tensors for t in out_tensors):
            raise TinyscopeError("the model graph names an operator output it does not define")
        _INTERPRETERS.clear()
        _INTERPRETERS[key] = (reference._tflm_interpreter(tflite_bytes), tensors, in_idx[0])
    interp, tensors, in_index = _INTERPRETERS[key]
    shape = tensors[in_index].shape
    inputs = reference._check_inputs(np.asarray(inputs), shape, tensors[in_index].dtype)
    rows: dict[int, list[np.ndarray]] = {t: [] for t in out_tensors}
    for image in inputs:
        interp.set_input(image.reshape(shape), 0)
        interp.invoke()
        for t in out_tensors:
            rows[t].append(np.asarray(interp.GetTensor(t, 0)["tensor_data"]).reshape(-1))
    if not len(inputs):
        return {t: np.zeros(0, np.uint32) for t in out_tensors}
    return {t: proto.tensor_digests(np.stack(r)) for t, r in rows.items()}
