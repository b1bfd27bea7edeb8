"""The child process that runs the int8 model for occlusion saliency.

``python -m tinyscope.analysis.saliency.int8_worker WORK``: reads ``WORK/model.tflite``,
``WORK/q.npy`` (int8 inputs, batch first) and ``WORK/job.json`` (input and output tensor
indices), runs LiteRT's builtin kernels without delegates (bit-exact with TFLM) on each input
and writes the output tensor's raw int8 values to ``WORK/out.npy``. A kernel that aborts
ends this process only; a Python error is written to ``WORK/error.txt`` (exit status 1).
The output tensor is read after the last operator, so nothing has reused its memory yet.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

FAULT_ENV = "TINYSCOPE_OCCLUSION_FAULT"


def main(argv: list[str]) -> int:
    work = Path(argv[0])
    if os.environ.get(FAULT_ENV) == "abort":  # fault injection for the tests: die as a C
        os.abort()  # kernel's abort() does
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        job = json.loads((work / "job.json").read_text())
        q = np.load(work / "q.npy")
        interp = Interpreter(
            model_content=(work / "model.tflite").read_bytes(), num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interp.allocate_tensors()
        shape = tuple(interp.get_input_details()[0]["shape"])
        t_in, t_out = job["input"], job["output"]
        out = None
        for i, x in enumerate(q):
            interp.set_tensor(t_in, x.reshape(shape))
            interp.invoke()
            y = interp.get_tensor(t_out).reshape(-1)
            if out is None:
                out = np.empty((len(q), y.size), y.dtype)
            out[i] = y
        tmp = work / "out.tmp.npy"
        np.save(tmp, out if out is not None else np.empty((0, 0), np.int8))
        tmp.replace(work / "out.npy")
    except Exception as err:  # noqa: BLE001 - reported to the parent, which names it
        (work / "error.txt").write_text(f"{type(err).__name__}: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
