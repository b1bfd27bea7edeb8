"""``make bench-capture``: capture throughput figures of issue 15 on the emulated board.

For a build (default: the MobileNetV1-0.25 96x96x3 person-detection-class model in
build/bench-mnet, made by tools/make_bench_mnet.py), measures images/s and received wire bytes
per image for a full dump (--layers all) and a verified capture (--verify), and prints one line
per figure: images, seconds, images/s, and CPU seconds per image of the host (this process
and its reference worker processes) and of the emulator (QEMU). Modes: all (full dump),
verify (digests, inputs by SET_INPUT), verify-bank (inputs from the input bank); a -115200
suffix runs it through the fault proxy limited to 11520 B/s (a 115200-baud UART); the
other modes talk to QEMU's socket directly, as `tinyscope capture` does. verify-jobsN: N
emulated boards in parallel, each with its shard in its input bank; its speedup over
verify-bank is printed when both ran.

Inputs: ``--inputs generated`` (default) makes --n smooth random int8 images of the model's
input shape (a bench needs hundreds of inputs; a model's test split may hold a dozen);
``--inputs test`` takes the build's test split and refuses when it holds fewer than --n.
Usage: python tools/bench_capture.py --build DIR [--n N] [--modes all,verify,verify-bank]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from tinyscope.analysis.verify import verify_capture
from tinyscope.analysis.verify_boards import verify_on_boards
from tinyscope.convert import manifest as manifest_mod
from tinyscope.data import quantized_test_inputs
from tinyscope.device import boards, capture
from tinyscope.device import protocol as proto
from tinyscope.device.faults import FaultProxy
from tinyscope.errors import TinyscopeError

LINE_RATE = 11520  # B/s: 115200 baud, 8N1
COARSE = 8  # generated inputs: random values on a grid COARSE times coarser, interpolated


def generated_inputs(shape: list[int], n: int, seed: int = 0) -> np.ndarray:
    """``n`` smooth random int8 inputs of the model input ``shape`` (batch 1 dropped): uniform
    values on a coarse grid, linearly interpolated along every axis but the last (channels),
    so that images look like images to the model (large smooth regions, edges)."""
    per = [int(d) for d in (shape[1:] if len(shape) > 1 and shape[0] == 1 else shape)]
    rng = np.random.default_rng(seed)
    coarse = [max(2, d // COARSE) for d in per[:-1]] + per[-1:]
    x = rng.uniform(-128, 127, (n, *coarse))
    for axis, d in enumerate(per[:-1], start=1):  # interpolate along each spatial axis
        src = np.linspace(0, 1, x.shape[axis])
        dst = np.linspace(0, 1, d)
        x = np.apply_along_axis(lambda v, s=src, t=dst: np.interp(t, s, v), axis, x)
    return np.clip(np.rint(x), -128, 127).astype(np.int8)


def inputs_for(build: Path, n: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    manifest = manifest_mod.load(build)
    if source == "generated":
        q = generated_inputs(manifest["input"]["shape"], n)
        return q, np.zeros(n, np.int64)
    _, q, labels = quantized_test_inputs(manifest, n, None)
    if len(q) < n:
        raise TinyscopeError(f"--inputs test: {build}'s test split holds {len(q)} inputs, not "
                             f"--n {n}; use --inputs generated or a smaller --n")
    return q, labels


def _children_cpu() -> float:
    """CPU seconds of this process's children: those that ended (rusage) plus those still
    running other than QEMU (the reference worker processes, kept between jobs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        if int(fields[1]) == os.getpid() and not head.endswith(boards.QEMU[:15]):
            live += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return r.ru_utime + r.ru_stime + live


def measure(build: Path, q: np.ndarray, labels: np.ndarray, mode: str, work: Path,
            elf: Path) -> dict:
    """One mode: wall seconds, and CPU seconds of the host and of the QEMU processes (read
    from /proc before each QEMU is stopped; the host's = this process + reaped children other
    than QEMU, i.e. the reference workers)."""
    out = work / f"run-{mode}"
    bank = None
    cpu0, child0 = time.process_time(), _children_cpu()
    if mode.startswith("verify-jobs"):
        jobs = int(mode.removeprefix("verify-jobs"))
        t0 = time.monotonic()
        run = verify_on_boards(elf, build, out, q, labels, jobs, work / f"qemu-{mode}",
                               progress=False)
        secs = time.monotonic() - t0
        qemu_cpu = float(run.get("board_cpu_seconds", 0.0))
        return _row(mode, len(q), secs, run, cpu0, child0, qemu_cpu)
    rate = LINE_RATE if mode.endswith("-115200") else None
    base = mode.removesuffix("-115200")
    if base == "verify-bank":
        bank = work / "input_bank.bin"
        bank.write_bytes(proto.input_bank(q))
    with contextlib.ExitStack() as stack:
        board = stack.enter_context(
            boards.emulated_board(elf, work / f"qemu-{mode}", input_bank=bank))
        url = board.url
        if rate:
            url = stack.enter_context(FaultProxy(("127.0.0.1", board.port),
                                                 bytes_per_s=rate)).url
        t0 = time.monotonic()
        if base.startswith("verify"):
            run = verify_capture(url, build, out, q, labels, progress=False, bank=bank)
        else:
            run = capture.capture(url, build, out, q, labels, layers=base, progress=False)
        secs = time.monotonic() - t0
        qemu_cpu = board.cpu_seconds()
    return _row(base + (f" at {rate:g} B/s" if rate else ""), len(q), secs, run, cpu0, child0,
                qemu_cpu)


def _row(label: str, n: int, secs: float, run: dict, cpu0: float, child0: float,
         qemu_cpu: float) -> dict:
    rx = run.get("wire_bytes_received")
    host_cpu = time.process_time() - cpu0 + max(0.0, _children_cpu() - child0 - qemu_cpu)
    return {"mode": label, "images": n, "seconds": round(secs, 2),
            "images_per_s": round(n / secs, 2),
            "host_cpu_s_per_image": round(host_cpu / n, 4),
            "qemu_cpu_s_per_image": round(qemu_cpu / n, 4),
            "rx_bytes_per_image": round(rx / n) if rx else None,
            "mismatched_images": run.get("verify", {}).get("mismatched_images")}


def speedups(rows: list[dict]) -> list[str]:
    """``verify-jobsN`` against ``verify-bank`` (one board, same inputs)."""
    one = next((r for r in rows if r["mode"] == "verify-bank"), None)
    if one is None:
        return []
    return [f"{r['mode']}: {r['images_per_s'] / one['images_per_s']:.2f}x one board "
            f"({r['images_per_s']} vs {one['images_per_s']} img/s)"
            for r in rows if r["mode"].startswith("verify-jobs")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, required=True)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--inputs", choices=("generated", "test"), default="generated",
                    help="generated: --n smooth random int8 inputs (default); test: the "
                    "build's test split")
    ap.add_argument("--modes", default="all,verify,verify-bank,verify-jobs2")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    q, labels = inputs_for(args.build, args.n, args.inputs)
    load = os.getloadavg()
    print(f"{len(q)} {args.inputs} inputs of {q[0].nbytes} B; {os.cpu_count()} cores; load "
          f"average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        elf = boards.build_firmware(args.build, quiet=True, out_dir=work / "fw")
        for m in args.modes.split(","):
            rows.append(measure(args.build, q, labels, m, work, elf))
            print(json.dumps(rows[-1]), flush=True)
    for line in speedups(rows):
        print(line)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    if args.json:
        args.json.write_text(json.dumps({"inputs": args.inputs, "rows": rows,
                                         "speedups": speedups(rows)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
