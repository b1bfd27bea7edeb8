"""Would the tinyscope runtime accept this model? Its own prepare says, before any firmware.

The native build of the runtime (``firmware/build/host/tinyscope-run``, built by
``make -C firmware host``) loads the model with the same C code as the device: every
operator's prepare validates the model and precomputes its requantization, making the
checks the TFLM kernels make (a model the reference kernels cannot prepare is refused, see
tests/runtime/test_refusals.py). :func:`check_model` runs it once on a zero input and turns a
refusal into a :class:`Refusal` naming the operator, the reason, the numbers behind it and
what to do.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyscope.convert import graph as model_graph
from tinyscope.errors import TinyscopeError

RUN_TIMEOUT_S = 120.0
BUILD_TIMEOUT_S = 300.0
RUNNER_RELPATH = Path("firmware/build/host/tinyscope-run")
# TFLM's softmax (PreprocessSoftmaxScaling, 5 integer bits for the scaled difference) needs
# beta * input_scale * 2^26 > 1 to build its fixed-point multiplier.
SOFTMAX_MIN_BETA_SCALE = 2.0 ** -26

_OP_LINE = re.compile(r"operator (\d+): (.*)")


@dataclass(frozen=True)
class Refusal:
    """The runtime's prepare refused the model."""

    reason: str  # the runtime's words, e.g. "softmax beta * scale out of range"
    op_index: int | None = None
    op: str | None = None
    detail: str = ""  # the numbers behind it, from the graph
    advice: str = ""

    def describe(self) -> str:
        where = f"{self.op} operator {self.op_index}: " if self.op_index is not None else ""
        text = where + self.reason
        if self.detail:
            text += f" ({self.detail})"
        return text


def repo_root() -> Path | None:
    """The checkout holding ``firmware/`` (None for an installed package without it)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "firmware" / "Makefile").is_file():
            return parent
    return None


def _runner_is_stale(root: Path, runner: Path) -> bool:
    if not runner.exists():
        return True
    built = runner.stat().st_mtime
    srcs = [p for d in ("runtime", "host") for p in (root / "firmware" / d).rglob("*")
            if p.suffix in {".c", ".h", ".mk", ".def"}]
    return any(p.stat().st_mtime > built for p in srcs)


def find_runner(build: bool = True) -> Path | None:
    """``tinyscope-run`` (``TINYSCOPE_RUNNER`` overrides), built when missing or stale if
    ``build``; None when there is no firmware tree or no compiler to build it."""
    if os.environ.get("TINYSCOPE_RUNNER"):
        path = Path(os.environ["TINYSCOPE_RUNNER"])
        return path if path.exists() else None
    root = repo_root()
    if root is None:
        return None
    runner = root / RUNNER_RELPATH
    if build and _runner_is_stale(root, runner):
        try:
            subprocess.run(["make", "-C", str(root / "firmware"), "host"], capture_output=True,
                           text=True, timeout=BUILD_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
    return runner if runner.exists() else None


def explain(model: bytes, op_index: int | None, reason: str) -> Refusal:
    """A refusal with the operator's name, the numbers from the graph and advice."""
    g = model_graph.read_graph(model)
    op = g.ops[op_index] if op_index is not None and 0 <= op_index < len(g.ops) else None
    detail, advice = "", ""
    if op is not None and op.name == "SOFTMAX" and op.inputs:
        beta = float(op.options.get("beta", 1.0) or 0.0)
        t = g.tensors[op.inputs[0]]
        scale = t.scales[0] if t.scales else 0.0
        detail = (
            f"beta x input scale = {beta:g} x {scale:.3g} = {beta * scale:.3g}, below "
            f"{SOFTMAX_MIN_BETA_SCALE:.3g}, the smallest step TFLM's fixed-point softmax can "
            "represent"
        )
        span = 255 * scale
        advice = (
            f"the logits feeding the softmax span only about {span:.2g}: the classifier head "
            "looks untrained or its weights are tiny. Train the model (or its head), check "
            "that the calibration images have the range the model was trained on (--data), "
            "or end the model with its logits (no softmax)"
        )
    elif "requantization scale" in reason:
        advice = ("a layer's weights or activations span a range int8 cannot requantize; "
                  "train the model and check the calibration data (--data)")
    return Refusal(reason=reason, op_index=op.index if op else op_index,
                   op=op.name if op else None, detail=detail, advice=advice)


def check_model(model: bytes, runner: Path | None = None) -> Refusal | None:
    """None if the runtime loads and runs ``model`` on a zero input; else its refusal.

    Raises :class:`TinyscopeError` if the runner itself fails (crash, usage, timeout)."""
    exe = runner or find_runner()
    if exe is None:
        raise TinyscopeError(
            "the native runtime runner (firmware/build/host/tinyscope-run) is missing and "
            "could not be built; run 'make -C firmware host' (needs make and a C compiler)"
        )
    g = model_graph.read_graph(model)
    t = g.tensors[g.inputs[0]]
    nbytes = int(np.prod(t.shape, dtype=np.int64)) * t.dtype.itemsize
    with tempfile.TemporaryDirectory(prefix="tinyscope-check-") as tmp:
        d = Path(tmp)
        (d / "model.tflite").write_bytes(bytes(model))
        (d / "input.bin").write_bytes(bytes(nbytes))
        try:
            proc = subprocess.run(
                [str(exe), str(d / "model.tflite"), str(d / "input.bin"), str(d / "out")],
                capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as err:
            raise TinyscopeError(f"the native runner {exe} timed out after "
                                 f"{RUN_TIMEOUT_S:.0f} s checking the model") from err
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    msg = (lines[-1] if lines else "").removeprefix("tinyscope-run: ")
    if proc.returncode != 1:
        raise TinyscopeError(f"the native runner {exe} failed checking the model (exit "
                             f"{proc.returncode}): {msg or 'no message'}")
    m = _OP_LINE.match(msg)
    if m:
        return explain(model, int(m.group(1)), m.group(2))
    return Refusal(reason=msg or "refused without a message")
