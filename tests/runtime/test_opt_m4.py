"""Optimized kernels == reference kernels, bit for bit, on the emulated Cortex-M4.

tests/runtime/test_opt.py runs ``ts-kernel-check`` natively, where the DSP intrinsics are
portable C and hand-written Thumb-2 is compiled out. Here the same checker is built for the
Cortex-M4 (``make -f host/host.mk m4check``: the firmware's -mcpu/FPU flags and -O2, stdio
and argv over semihosting) and runs in QEMU mps2-an386, so SXTB16/SMLAD/SSAT/SEL and the
kernels' inline assembly execute as real instructions. QEMU's exit status is the checker's
(0 all equal, 1 a mismatch, 3 a fault: m4check_semihost.c prints its pc). The run also
reports the stack's high-water mark, which must fit the smallest board stack (NUCLEO-F446RE).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.runtime.helpers import KERNELS

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware"
CM4 = FW / "runtime/src/kernels/cm4"
CASES = 3000  # per kernel and seed: ~3 s per QEMU run


def board_stack_bytes(board: str) -> int:
    text = (FW / "boards" / board / "board.mk").read_text()
    return int(re.search(r"^BOARD_STACK_BYTES\s*:?=\s*(\d+)", text, re.M).group(1))


def build(*make_args: str) -> None:
    proc = subprocess.run(["make", "-s", "-C", str(FW), "-f", "host/host.mk", *make_args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"make {' '.join(make_args)}:\n{proc.stdout}{proc.stderr}"


def run_m4(elf: Path, seed: int, cases: int,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``ts-kernel-check SEED CASES`` on the emulated board; QEMU exits with its status."""
    return subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none",
         "-serial", "none", "-semihosting-config", "enable=on,target=native",
         "-kernel", str(elf), "-append", f"{seed} {cases}"],
        capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def checkers() -> list[Path]:
    build("m4check")
    out = FW / "build/m4check"
    return [out / "ts-kernel-check.elf", out / "ts-kernel-check-small.elf"]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("variant", [0, 1], ids=["default-buffers", "small-buffers"])
def test_opt_kernels_equal_reference_on_m4(checkers, variant, seed):
    elf = checkers[variant]
    proc = run_m4(elf, seed, CASES)
    report = f"{elf.name} seed {seed}:\n{proc.stdout}{proc.stderr}"
    assert proc.returncode == 0, report
    lines = proc.stdout.splitlines()
    assert f"requant {CASES * 200} triples ok" in lines, report
    for kernel in KERNELS[1:]:
        assert f"{kernel} {CASES} cases ok" in lines, report  # also: argv reached the checker
    assert "MISMATCH" not in proc.stdout and "FAULT" not in proc.stdout + proc.stderr, report
    used, size = map(int, re.search(r"^stack (\d+) of (\d+) bytes$", proc.stdout, re.M).groups())
    assert 0 < used < size, report  # used == size: the paint is gone, the stack overflowed
    assert used <= board_stack_bytes("nucleo-f446re"), report


def _patched_kernels(tmp_path: Path, name: str, pattern: str, repl: str) -> Path:
    """A copy of kernels/cm4 with the first match of ``pattern`` in ``name`` replaced."""
    cm4 = tmp_path / "cm4"
    shutil.copytree(CM4, cm4)
    src = (cm4 / name).read_text()
    new, n = re.subn(pattern, repl, src, count=1)
    assert n == 1, f"{pattern!r} not in kernels/cm4/{name}: update this test's mutation"
    (cm4 / name).write_text(new)
    return cm4


def _build_and_run_patched(tmp_path: Path, cm4: Path) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    build(f"M4CHECK_CM4={cm4}", f"M4CHECK_OUT={out}", str(out / "ts-kernel-check.elf"))
    return run_m4(out / "ts-kernel-check.elf", 1, 300)


def test_checker_catches_a_wrong_dsp_intrinsic_on_m4(tmp_path):
    """SMLADX (halves exchanged) where ts_dsp.h's ACLE path uses SMLAD: an error only the M4
    build can see (the host's portable ts_smlad is untouched), and the M4 run reports it."""
    cm4 = _patched_kernels(tmp_path, "ts_dsp.h", r"\b__smlad\(", "__smladx(")
    proc = _build_and_run_patched(tmp_path, cm4)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "MISMATCH" in proc.stdout
    assert any(line.endswith(" FAIL") for line in proc.stdout.splitlines()), proc.stdout


def test_checker_catches_a_wrong_assembly_instruction_on_m4(tmp_path):
    """One SMLAD of the hand-written Thumb-2 in kernels/cm4 turned into SMLADX: conv fails."""
    asm = [p.name for p in sorted(CM4.glob("*.c")) if re.search(r'"\s*smlad r', p.read_text())]
    if not asm:
        pytest.skip("no hand-written SMLAD in kernels/cm4 (inline assembly) to mutate")
    cm4 = _patched_kernels(tmp_path, asm[0], r'"(\s*)smlad r', r'"\1smladx r')
    proc = _build_and_run_patched(tmp_path, cm4)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"^MISMATCH \w+ case \d+: element \d+", proc.stdout, re.M), proc.stdout


# Mutations of the hand-written Thumb-2 (instructions inside the kernels' asm strings): each
# turns an instruction into a near miss. A conditional branch is dropped (a loop runs once,
# a guarded block runs anyway) or, to a numeric forward label, taken always: no mutant loops
# for ever, but one that faults or hangs counts as caught too (status 3, or the timeout).
ASM_MUTATIONS = (
    (r'"(\s*)smlad ', r'"\1smladx '),  # halves exchanged
    (r'"(\s*)smlal ', r'"\1smull '),  # the accumulator (the rounding nudge) dropped
    (r'"(\s*)smla(b|t)b ', r'"\1smla\2t '),  # the other half of the second operand
    (r'"(\s*)smla(b|t)t ', r'"\1smla\2b '),
    (r'"(\s*)sxtb16 ', r'"\1uxtb16 '),  # zero- instead of sign-extended
    (r'"(\s*)sxtab16 ', r'"\1uxtab16 '),
    (r'"(\s*)ssat ', r'"\1usat '),  # saturation to [0, 255]
    (r'"(\s*)b(?:eq|ne|pl|mi|cc|cs|lo|hs|gt|ge|lt|le)(\.w)? (\d+f)\b', r'"\1b\2 \3'),
    (r'"(\s*)b(?:eq|ne|pl|mi|cc|cs|lo|hs|gt|ge|lt|le)(\.w)? (?!\d+f\b)[.\w]+', r'"\1nop\2'),
)


def _asm_mutants() -> list[tuple[str, int, str, str]]:
    """(file, line number, mutated source, description) for every matching asm line."""
    mutants = []
    for path in sorted(CM4.glob("*.c")):
        lines = path.read_text().splitlines(keepends=True)
        for n, line in enumerate(lines):
            for pattern, repl in ASM_MUTATIONS:
                new = re.sub(pattern, repl, line, count=1)
                if new != line:
                    src = "".join(lines[:n] + [new] + lines[n + 1:])
                    mutants.append((path.name, n + 1, src, f"{line.strip()} -> {new.strip()}"))
                    break
    return mutants


@pytest.mark.slow
def test_every_assembly_mutant_is_caught_on_m4(tmp_path):
    """Each near-miss instruction in the kernels' Thumb-2 fails the M4 check (1000 cases)."""
    mutants = _asm_mutants()
    if not mutants:
        pytest.skip("no hand-written assembly in kernels/cm4")
    survivors, unbuilt, caught = [], [], 0
    for name, line, src, what in mutants:
        cm4, out = tmp_path / "cm4", tmp_path / "out"
        shutil.copytree(CM4, cm4)
        (cm4 / name).write_text(src)
        try:
            made = subprocess.run(["make", "-s", "-C", str(FW), "-f", "host/host.mk",
                                   f"M4CHECK_CM4={cm4}", f"M4CHECK_OUT={out}",
                                   str(out / "ts-kernel-check.elf")],
                                  capture_output=True, text=True, timeout=300)
            if made.returncode != 0:  # e.g. an operand the mutated instruction does not take
                unbuilt.append(f"{name}:{line}: {what}")
                continue
            try:
                proc = run_m4(out / "ts-kernel-check.elf", 1, 1000, timeout=60)
            except subprocess.TimeoutExpired:
                caught += 1  # a hang is not a pass
                continue
            if proc.returncode == 0:
                survivors.append(f"{name}:{line}: {what}")
            else:
                caught += 1
        finally:
            shutil.rmtree(cm4)
            shutil.rmtree(out, ignore_errors=True)
    assert not survivors, (f"{len(survivors)} of {len(mutants)} mutants pass:\n"
                           + "\n".join(survivors))
    assert caught > len(unbuilt), f"only {caught} mutants built: {unbuilt}"
