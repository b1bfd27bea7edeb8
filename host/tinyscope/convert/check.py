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


def runner_is_stale(runner: Path, firmware: Path) -> bool:
    """True if ``runner`` is missing or older than a source of the runtime or the runner."""
    if not runner.exists():
        return True
    built = runner.stat().st_mtime
    srcs = [p for d in ("runtime", "host") for p in (firmware / d).rglob("*")
            if p.suffix in {".c", ".h", ".mk", ".def"}]
    return any(p.stat().st_mtime > built for p in srcs)


def ensure_runner(runner: Path | None = None) -> Path:
    """The native runner ``tinyscope-run``: ``runner`` or ``TINYSCOPE_RUNNER`` as given (a
    prebuilt one), else the checkout's, built with ``make -C firmware host`` when missing or
    stale. Raises :class:`TinyscopeError` naming the fix when there is none."""
    if runner is None and os.environ.get("TINYSCOPE_RUNNER"):
        runner = Path(os.environ["TINYSCOPE_RUNNER"])
    if runner is not None:
        if not runner.exists():
            raise TinyscopeError(f"runner {runner} does not exist; build it with "
                                 "'make -C firmware host' or unset TINYSCOPE_RUNNER")
        return runner
    root = repo_root()
    if root is None:
        raise TinyscopeError(f"the native runtime runner ({RUNNER_RELPATH}) needs the "
                             "firmware/ tree of a tinyscope checkout; set TINYSCOPE_RUNNER "
                             "to a built tinyscope-run")
    runner = root / RUNNER_RELPATH
    if runner_is_stale(runner, root / "firmware"):
        _build_runner(root / "firmware")
    return runner


def _build_runner(firmware: Path) -> None:
    cmd = ["make", "-C", str(firmware), "host"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                              check=False)
    except FileNotFoundError as err:
        raise TinyscopeError("'make' is not installed: run 'make setup' (needs make and a C "
                             "compiler) to build the native runner") from err
    except subprocess.TimeoutExpired as err:
        raise TinyscopeError(f"building the native runner ('make -C {firmware} host') took "
                             f"over {BUILD_TIMEOUT_S:.0f} s; run it by hand to see why") from err
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise TinyscopeError(f"building the native runner failed ('make -C {firmware} host'; "
                             "needs make and a C compiler): " + " | ".join(tail))


def run_runner(exe: Path, args: list[str], what: str) -> tuple[int, str]:
    """Run ``exe ARGS`` (the native runner); its exit status and the last line it wrote to
    stderr (its one-line error message). ``what`` names the job in the timeout error."""
    try:
        proc = subprocess.run([str(exe), *args], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        raise TinyscopeError(f"the native runner {exe} timed out after {RUN_TIMEOUT_S:.0f} s "
                             f"{what}") from err
    lines = proc.stderr.strip().splitlines()
    return proc.returncode, (lines[-1] if lines else "").removeprefix("tinyscope-run: ")


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
    exe = ensure_runner(runner)
    g = model_graph.read_graph(model)
    t = g.tensors[g.inputs[0]]
    nbytes = int(np.prod(t.shape, dtype=np.int64)) * t.dtype.itemsize
    with tempfile.TemporaryDirectory(prefix="tinyscope-check-") as tmp:
        d = Path(tmp)
        (d / "model.tflite").write_bytes(bytes(model))
        (d / "input.bin").write_bytes(bytes(nbytes))
        code, msg = run_runner(exe, [str(d / "model.tflite"), str(d / "input.bin"),
                                     str(d / "out")], "checking the model")
    if code == 0:
        return None
    if code != 1:
        raise TinyscopeError(f"the native runner {exe} failed checking the model (exit "
                             f"{code}): {msg or 'no message'}")
    m = _OP_LINE.match(msg)
    if m:
        return explain(model, int(m.group(1)), m.group(2))
    return Refusal(reason=msg or "refused without a message")
