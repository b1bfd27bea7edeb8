"""Run a model with tinyscope's own C runtime on the host (``tinyscope-run``).

The runner is the native build of the firmware runtime (``make -C firmware host``; found or
built by :func:`tinyscope.convert.check.ensure_runner`, which this module re-exports); it
executes the same C code as the device, so its tensors are what the device computes.
:func:`run_native` runs one int8 (or float32, for a float-input model) input and returns
every activation by tensor index, plus the arena bytes the runtime planned.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tinyscope.convert.check import ensure_runner, run_runner
from tinyscope.errors import TinyscopeError

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO_ROOT / "firmware"

_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
           "int64": np.int64, "float32": np.float32}


@dataclass(frozen=True)
class NativeTensor:
    """One tensor as the runner reports it in ``tensors.json``."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    op_index: int  # -1 for a model input
    op: str | None


def _model_path(model: bytes | str | os.PathLike, tmp: Path) -> Path:
    if isinstance(model, bytes | bytearray | memoryview):
        path = tmp / "model.tflite"
        path.write_bytes(bytes(model))
        return path
    path = Path(model)
    if not path.exists():
        raise TinyscopeError(f"model {path} does not exist")
    return path


def read_outputs(out_dir: Path) -> tuple[dict[int, np.ndarray], list[NativeTensor], int]:
    """Parse a runner output directory: arrays by tensor index, tensor records, arena bytes."""
    meta = json.loads((out_dir / "tensors.json").read_text())
    arrays: dict[int, np.ndarray] = {}
    infos: list[NativeTensor] = []
    for t in meta["tensors"]:
        info = NativeTensor(index=int(t["index"]), name=str(t["name"]),
                            shape=tuple(int(s) for s in t["shape"]), dtype=str(t["dtype"]),
                            scale=tuple(float(s) for s in t["scale"]),
                            zero_point=tuple(int(z) for z in t["zero_point"]),
                            op_index=int(t["op_index"]), op=t["op"])
        data = np.fromfile(out_dir / t["file"], dtype=_DTYPES[info.dtype])
        arrays[info.index] = data.reshape(info.shape)
        infos.append(info)
    return arrays, infos, int(meta["arena_bytes"])


def run_native_full(
    model: bytes | str | os.PathLike,
    int8_input: np.ndarray,
    *,
    arena_bytes: int | None = None,
    runner: Path | None = None,
) -> tuple[dict[int, np.ndarray], list[NativeTensor], int]:
    """Like :func:`run_native`, also returning the runner's tensor records."""
    exe = ensure_runner(runner)
    data = np.asarray(int8_input)
    if data.dtype not in (np.int8, np.float32):
        raise TinyscopeError(f"the native runner takes int8 (or, for a float-input model, "
                             f"float32) input, got {data.dtype}; quantize the input with the "
                             "model's input scale and zero point")
    with tempfile.TemporaryDirectory(prefix="tinyscope-run-") as tmpdir:
        tmp = Path(tmpdir)
        model_path = _model_path(model, tmp)
        input_path = tmp / "input.bin"
        input_path.write_bytes(np.ascontiguousarray(data).tobytes())
        out_dir = tmp / "out"
        args = ["--arena", str(int(arena_bytes))] if arena_bytes is not None else []
        args += [str(model_path), str(input_path), str(out_dir)]
        code, msg = run_runner(exe, args, f"on {model_path}")
        if code != 0:
            msg = msg or f"exit status {code}"
            if code < 0:
                msg = f"runner crashed with signal {-code}: {msg}"
            raise TinyscopeError(msg)
        return read_outputs(out_dir)


def run_native(
    model: bytes | str | os.PathLike,
    int8_input: np.ndarray,
    *,
    arena_bytes: int | None = None,
    runner: Path | None = None,
) -> tuple[dict[int, np.ndarray], int]:
    """Run ``model`` (bytes or path) on one int8 input with the C runtime.

    Returns ``({tensor_index: ndarray}, arena_bytes)`` for the input and every operator
    output. Raises :class:`TinyscopeError` with the runner's one-line error message.
    """
    arrays, _, arena = run_native_full(model, int8_input, arena_bytes=arena_bytes,
                                       runner=runner)
    return arrays, arena
