"""``make bench-capture``: capture throughput figures of issue 15 on the emulated board.

For a build (default: the MobileNetV1-0.25 96x96x3 person-detection-class model in
build/bench-mnet, made by tools/make_bench_mnet.py), measures images/s and received wire bytes
per image for a full dump (--layers all) and a verified capture (--verify), and prints one line
per figure. Modes: all (full dump), verify (digests, inputs by SET_INPUT), verify-bank (inputs
from the input bank); a -115200 suffix runs it through the fault proxy limited to 11520 B/s
(a 115200-baud UART). Every mode goes through the proxy (unlimited unless -115200).
verify-jobsN: N emulated boards in parallel, each with its shard in its input bank.
Usage: python tools/bench_capture.py --build DIR [--n N] [--modes all,verify,verify-bank]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tinyscope.analysis.verify import verify_capture, verify_on_boards
from tinyscope.convert import manifest as manifest_mod
from tinyscope.data import quantized_test_inputs
from tinyscope.device import boards, capture
from tinyscope.device import protocol as proto
from tinyscope.device.faults import FaultProxy

LINE_RATE = 11520  # B/s: 115200 baud, 8N1


def measure(build: Path, n: int, mode: str, work: Path, elf: Path) -> dict:
    man = manifest_mod.load(build)
    _, q, labels = quantized_test_inputs(man, n, None)
    out = work / f"run-{mode}"
    bank = None
    if mode.startswith("verify-jobs"):
        jobs = int(mode.removeprefix("verify-jobs"))
        t0 = time.monotonic()
        run = verify_on_boards(elf, build, out, q, labels, jobs, work / f"qemu-{mode}",
                               progress=False)
        return _row(mode, len(q), time.monotonic() - t0, run)
    rate = LINE_RATE if mode.endswith("-115200") else None
    mode = mode.removesuffix("-115200")
    if mode == "verify-bank":
        bank = work / "input_bank.bin"
        bank.write_bytes(proto.input_bank(q))
    with boards.emulated_board(elf, work / f"qemu-{mode}", input_bank=bank) as board, \
            FaultProxy(("127.0.0.1", board.port), bytes_per_s=rate) as proxy:
        t0 = time.monotonic()
        if mode.startswith("verify"):
            run = verify_capture(proxy.url, build, out, q, labels, progress=False, bank=bank)
        else:
            run = capture.capture(proxy.url, build, out, q, labels, layers=mode, progress=False)
        secs = time.monotonic() - t0
    return _row(mode + (f" at {rate:g} B/s" if rate else ""), len(q), secs, run)


def _row(label: str, n: int, secs: float, run: dict) -> dict:
    rx = run.get("wire_bytes_received")
    return {"mode": label, "images": n, "seconds": round(secs, 2),
            "images_per_s": round(n / secs, 2),
            "rx_bytes_per_image": round(rx / n) if rx else None,
            "mismatched_images": run.get("verify", {}).get("mismatched_images")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--modes", default="all,verify,verify-bank,verify-jobs2")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        elf = boards.build_firmware(args.build, quiet=True, out_dir=work / "fw")
        rows = [measure(args.build, args.n, m, work, elf) for m in args.modes.split(",")]
    for r in rows:
        print(json.dumps(r))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
