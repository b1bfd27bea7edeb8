"""Run a model with tinyscope's own C runtime on the host (``tinyscope-run``).

The runner is the native build of the firmware runtime (``make -C firmware host``); it
executes the same C code as the device, so its tensors are what the device computes.
:func:`run_native` runs one int8 (or float32, for a float-input model) input and returns
every activation by tensor index, plus the arena bytes the runtime planned.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tinyscope.errors import TinyscopeError

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO_ROOT / "firmware"
RUNNER_PATH = FIRMWARE_DIR / "build" / "host" / "tinyscope-run"
RUN_TIMEOUT_S = 120.0
BUILD_TIMEOUT_S = 300.0

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


def _sources() -> list[Path]:
    roots = [FIRMWARE_DIR / "runtime", FIRMWARE_DIR / "host"]
    return [p for r in roots for p in r.rglob("*") if p.suffix in {".c", ".h", ".mk", ".def"}]


def runner_is_stale(runner: Path = RUNNER_PATH) -> bool:
    """True if the runner binary is missing or older than a runtime source file."""
    if not runner.exists():
        return True
    built = runner.stat().st_mtime
    return any(src.stat().st_mtime > built for src in _sources())


def ensure_runner(runner: Path | None = None) -> Path:
    """Path of ``tinyscope-run``; builds it with ``make -C firmware host`` when needed.

    ``TINYSCOPE_RUNNER`` in the environment names a prebuilt runner (used as is).
    """
    if runner is None and os.environ.get("TINYSCOPE_RUNNER"):
        runner = Path(os.environ["TINYSCOPE_RUNNER"])
    if runner is not None:
        if not runner.exists():
            raise TinyscopeError(f"runner {runner} does not exist; build it with "
                                 "'make -C firmware host' or unset TINYSCOPE_RUNNER")
        return runner
    if runner_is_stale():
        try:
            proc = subprocess.run(["make", "-C", str(FIRMWARE_DIR), "host"], capture_output=True,
                                  text=True, timeout=BUILD_TIMEOUT_S, check=False)
        except FileNotFoundError as err:
            raise TinyscopeError("'make' is not installed: run 'make setup' (needs make and "
                                 "a C compiler) to build the native runner") from err
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise TinyscopeError("building the native runner failed ('make -C firmware host'): "
                                 + " | ".join(tail))
    return RUNNER_PATH


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
        cmd = [str(exe)]
        if arena_bytes is not None:
            cmd += ["--arena", str(int(arena_bytes))]
        cmd += [str(model_path), str(input_path), str(out_dir)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired as err:
            raise TinyscopeError(f"native runner timed out after {RUN_TIMEOUT_S:.0f} s on "
                                 f"{model_path}") from err
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            msg = lines[-1] if lines else f"exit status {proc.returncode}"
            msg = msg.removeprefix("tinyscope-run: ")
            if proc.returncode < 0:
                msg = f"runner crashed with signal {-proc.returncode}: {msg}"
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
