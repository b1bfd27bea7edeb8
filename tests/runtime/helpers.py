"""Shared helpers of the runtime tests: building the native runner, small Keras models,
bit-exact comparison with a per-element mismatch report, TFLM's arena figures."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tinyscope.analysis import references
from tinyscope.convert import check, graph

from tests.runtime.native_runner import ensure_runner, run_native

ROOT = Path(__file__).resolve().parents[2]
# The kernels ts-kernel-check compares (optimized vs reference), on the host and on the M4.
KERNELS = ("requant", "conv", "depthwise", "fully_connected", "max_pool", "avg_pool", "mean", "add",
           "softmax")


def build_runner() -> Path:
    """Build (if missing or stale) and return the native runner."""
    return ensure_runner()


def first_mismatch(
    got: dict[int, np.ndarray], want: dict[int, np.ndarray], names: dict[int, str] | None = None
) -> str | None:
    """None if every tensor of ``want`` is in ``got`` with equal values; else a description
    of the first mismatching tensor and element (and the mismatch count)."""
    for idx, ref in want.items():
        name = (names or {}).get(idx, "")
        if idx not in got:
            return f"tensor {idx} {name!r} missing from the runtime's output"
        ours = got[idx]
        if ours.size != ref.size:
            return f"tensor {idx} {name!r}: {ours.shape} elements vs reference {ref.shape}"
        if ref.dtype.kind == "f":  # float32 edges: bit for bit
            a = ours.reshape(ref.shape).astype(np.float32).view(np.int32).astype(np.int64)
            b = ref.astype(np.float32).view(np.int32).astype(np.int64)
        else:
            a = ours.reshape(ref.shape).astype(np.int64)
            b = ref.astype(np.int64)
        diff = np.argwhere(a != b)
        if len(diff):
            pos = tuple(int(i) for i in diff[0])
            return (f"tensor {idx} {name!r} shape {ref.shape}: {len(diff)} mismatching elements; "
                    f"first at {pos}: runtime {a[pos]} vs reference {b[pos]}")
    return None


def tflm_tensors_float_input(model: bytes, inputs: np.ndarray) -> list[dict[int, np.ndarray]]:
    """TFLM's every activation for a float32-input model (reference.tflm_tensors takes int8)."""
    from tflite_micro import runtime

    _, tensors, in_idx, _ = graph.graph(model)
    interp = runtime.Interpreter.from_bytes(
        bytes(model), intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    shape = tensors[in_idx[0]].shape
    out = []
    for image in inputs:
        interp.set_input(np.asarray(image, np.float32).reshape(shape), 0)
        interp.invoke()
        out.append({i: np.asarray(interp.GetTensor(i, 0)["tensor_data"]).reshape(
            tensors[i].shape).astype(tensors[i].dtype, copy=False)
            for i in graph.activation_indices(model)})
    return out


_TFLM_FLOAT = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from tests.runtime.helpers import tflm_tensors_float_input
model = open(sys.argv[2], "rb").read()
per_image = tflm_tensors_float_input(model, np.load(sys.argv[3]))
np.savez(sys.argv[4], **{f"{n}_{i}": v for n, r in enumerate(per_image) for i, v in r.items()})
"""


def tflm_float_contained(model: bytes, inputs: np.ndarray
                         ) -> tuple[list[dict[int, np.ndarray]] | None, str | None]:
    """``tflm_tensors_float_input`` in a child process, as the int8 path's reference worker
    (TFLM aborts the process on some models): (tensors per image, None) or (None, why)."""
    with tempfile.TemporaryDirectory() as d:
        m, x, out = Path(d) / "model.tflite", Path(d) / "inputs.npy", Path(d) / "tflm.npz"
        m.write_bytes(model)
        np.save(x, np.asarray(inputs, np.float32))
        proc = subprocess.run([sys.executable, "-c", _TFLM_FLOAT, str(ROOT), str(m), str(x),
                               str(out)], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [""])[-1]
            return None, f"TFLM's process ended with status {proc.returncode}: {last}"
        per_image: list[dict[int, np.ndarray]] = [{} for _ in range(len(inputs))]
        with np.load(out) as z:
            for key in z.files:
                n, i = (int(k) for k in key.split("_"))
                per_image[n][i] = z[key]
        return per_image, None


@dataclass
class Outcome:
    """One model through TFLM (in a worker process) and the runtime (the native runner)."""

    tflm_refused: str | None = None  # why TFLM could not run it (its process died, ...)
    runtime_refused: str | None = None  # the runtime's prepare refusal
    mismatch: str | None = None  # first differing tensor, or a refusal only one side makes
    arena: int = 0


def run_with_tflm(model: bytes, inputs: np.ndarray) -> Outcome:
    """Run every input through TFLM and the runtime. A model both refuse is a refusal (they
    agree); one that only one of them refuses is a mismatch."""
    refusal = check.check_model(model)
    if np.asarray(inputs).dtype == np.float32:  # a float-input model (the worker takes int8)
        per_image, tflm_refused = tflm_float_contained(model, inputs)
        want = ({i: np.stack([r[i] for r in per_image]) for i in per_image[0]}
                if per_image else {})
    else:
        refs = references.compute(model, inputs, kinds=("tflm",))
        tflm_refused = refs.missing.get("tflm")
        want = refs.tensors.get("tflm", {})
    out = Outcome(tflm_refused=tflm_refused,
                  runtime_refused=refusal.describe() if refusal else None)
    if out.tflm_refused and not out.runtime_refused:
        out.mismatch = f"TFLM fails on a model the runtime accepts: {out.tflm_refused}"
    elif out.runtime_refused and not out.tflm_refused:
        out.mismatch = f"the runtime refuses a model TFLM runs: {out.runtime_refused}"
    if out.tflm_refused or out.runtime_refused:
        return out
    _, tensors, _, _ = graph.graph(model)
    names = {i: t.name for i, t in tensors.items()}
    for n, x in enumerate(inputs):
        got, out.arena = run_native(model, x)
        msg = first_mismatch(got, {i: v[n] for i, v in want.items()}, names)
        if msg:
            out.mismatch = f"input {n}: {msg}"
            break
    return out


def compare_with_tflm(model: bytes, inputs: np.ndarray) -> tuple[str | None, int]:
    """Run every input through the runtime and TFLM; (first mismatch or refusal, arena)."""
    out = run_with_tflm(model, inputs)
    msg = out.mismatch or (f"refused by TFLM and the runtime: {out.runtime_refused}"
                           if out.runtime_refused else None)
    return msg, out.arena


def random_int8_inputs(model: bytes, n: int, seed: int) -> np.ndarray:
    _, tensors, inputs, _ = graph.graph(model)
    shape = tensors[inputs[0]].shape
    per_image = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(n, *per_image), dtype=np.int8)


_TFLM_ARENA = """
import sys
from tflite_micro import runtime
it = runtime.Interpreter.from_file(sys.argv[1])
it.print_allocations()
"""


def tflm_arena(model_path: Path) -> dict[str, int]:
    """TFLM's arena figures (total/head/tail bytes) from print_allocations(), which prints
    from C to stdout: run it in a subprocess."""
    proc = subprocess.run([sys.executable, "-c", _TFLM_ARENA, str(model_path)],
                          capture_output=True, text=True, timeout=120, check=True)
    text = proc.stdout + proc.stderr
    found = dict(re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text))
    return {k: int(v) for k, v in found.items()}


def keras_model(layers_fn, input_shape: tuple[int, ...], seed: int = 0):
    """A functional Keras model from ``layers_fn(x) -> y`` with batch size 1 and random,
    non-trivial biases (so bias handling is exercised)."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(input_shape, batch_size=1)
    net = keras.Model(inp, layers_fn(inp))
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w if w.ndim > 1 else rng.normal(0, 0.3, w.shape).astype(w.dtype)
                               for w in weights])
    return net


def calibration(input_shape: tuple[int, ...], seed: int, n: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo = rng.uniform(-2.0, 0.0)
    hi = rng.uniform(0.5, 3.0)
    return rng.uniform(lo, hi, size=(n, *input_shape)).astype(np.float32)


def quantize_float_io(net, calib: np.ndarray) -> bytes:
    """``net`` as an int8 model whose input and output stay float32 (QUANTIZE and DEQUANTIZE
    at the edges), as the TFLite converter gives without inference_input/output_type."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(net)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c[None]] for c in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def random_float_inputs(model: bytes, n: int, seed: int) -> np.ndarray:
    _, tensors, inputs, _ = graph.graph(model)
    shape = tensors[inputs[0]].shape
    per_image = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
    rng = np.random.default_rng(seed)
    return rng.uniform(-3.0, 3.0, size=(n, *per_image)).astype(np.float32)

