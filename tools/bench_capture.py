"""``make bench-capture``: capture throughput figures of issue 15 on the emulated board.

For a build (default: the MobileNetV1-0.25 96x96x3 person-detection-class model in
build/bench-mnet, made by tools/make_bench_mnet.py), measures images/s and received wire bytes
per image for a full dump (--layers all) and a verified capture (--verify), and prints one line
per mode: images, seconds, images/s, and CPU seconds per image of every process: this one
(split by thread: one board's capture loop in the main thread, the --jobs board threads, the
threads waiting on TFLM digest batches), its reference worker (TFLM's digests) and each QEMU
(read from /proc while the mode runs: valid on a loaded machine, wall-clock figures are not),
plus the emulated instructions per image and QEMU's CPU ns per emulated instruction.
Modes: all (full dump), verify (digests, inputs by SET_INPUT), verify-bank (inputs from the
input bank), verify-jobsN (N emulated boards in parallel, each with its shard in its input
bank). Verify modes are cold (TFLM computes the digests during the run, no cache) unless
suffixed -warm (the digests come from the TFLM digest cache, filled by an untimed earlier
run of the same inputs: re-verifying after a firmware change). A -115200 suffix runs
through the fault proxy limited to 11520 B/s (a 115200-baud UART); the other modes talk to
QEMU's socket directly, as `tinyscope capture` does. The speedup of verify-jobsN over
verify-bank is printed cold against cold and warm against warm.

Inputs: ``--inputs generated`` (default) makes --n smooth random int8 images of the model's
input shape (a bench needs hundreds of inputs; a model's test split may hold a dozen);
``--inputs test`` takes the build's test split and refuses when it holds fewer than --n.
Usage: python tools/bench_capture.py --build DIR [--n N] [--modes verify-bank,verify-jobs2,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from tinyscope.analysis.verify import ReferenceDigests, verify_capture
from tinyscope.analysis.verify_boards import verify_on_boards
from tinyscope.convert import manifest as manifest_mod
from tinyscope.data import quantized_test_inputs
from tinyscope.device import boards, capture
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


CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.05  # CpuSampler: this process's threads and its children read every 50 ms ...
SCAN_EVERY = 20  # ... and /proc scanned for new children every 20th read


def _stat_cpu(path: Path) -> tuple[str, int, float, float, float] | None:
    """(comm, ppid, user + system, user, system CPU seconds) from a /proc/.../stat file;
    None if gone."""
    try:
        head, tail = path.read_text().rsplit(")", 1)
    except (OSError, ValueError):
        return None
    fields = tail.split()
    user, system = int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK
    return head.split("(", 1)[1], int(fields[1]), user + system, user, system


class CpuSampler:
    """CPU seconds per process (and per thread of this process) while a mode runs, read from
    /proc every SAMPLE_S: this process's threads (by Python thread name: the capture thread(s),
    the threads waiting on the TFLM digest batches), its reference worker process(es) and
    each QEMU. Valid on a loaded machine too (CPU time, not wall time). A process or thread
    that ends between two reads loses at most SAMPLE_S of its time (QEMU's exact total is
    read before each board stops, see measure())."""

    def __init__(self) -> None:
        self.start: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.names: dict[tuple[str, int], str] = {}
        self._children: set[int] = set()
        self.qemu_start: dict[tuple[int, int], tuple[float, float]] = {}
        self.qemu_last: dict[tuple[int, int], tuple[float, float]] = {}
        self.sched_start: dict[tuple[int, int], tuple[float, float, float]] = {}
        self.sched_last: dict[tuple[int, int], tuple[float, float, float]] = {}
        self._reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)

    def _read(self) -> dict[tuple[str, int], float]:
        me = os.getpid()
        tnames = {t.native_id: t.name for t in threading.enumerate()}
        now: dict[tuple[str, int], float] = {}
        for path in Path(f"/proc/{me}/task").glob("*/stat"):
            got = _stat_cpu(path)
            tid = int(path.parent.name)
            if got:
                now[("thread", tid)] = got[2]
                kind = ("bench: this sampler (not counted)" if tid == self._thread.native_id
                        else _thread_kind(tnames.get(tid, ""), got[0]))
                if tid in tnames or tid == self._thread.native_id:
                    self.names[("thread", tid)] = kind
                else:  # a thread started between the two reads has no name yet
                    self.names.setdefault(("thread", tid), kind)
        if self._reads % SCAN_EVERY == 0:  # new child processes (reading all of /proc costs)
            self._children |= {int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat")
                               if (got := _stat_cpu(p)) and got[1] == me}
        self._reads += 1
        for pid in list(self._children):
            got = _stat_cpu(Path(f"/proc/{pid}/stat"))
            if got is None:
                continue
            now[("proc", pid)] = got[2]
            # comm is "python" between fork and exec: the last read names it
            self.names[("proc", pid)] = ("qemu" if got[0] == boards.QEMU[:15]
                                         else "reference worker")
            if got[0] == boards.QEMU[:15]:
                self._qemu_threads(pid)
        return now

    def _qemu_threads(self, pid: int) -> None:
        """User and system CPU of each thread of QEMU ``pid`` (its vCPU thread runs the
        guest and writes each UART byte to the socket; its main loop reads the requests),
        and from /proc/.../schedstat its time on a CPU and runnable waiting for one."""
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        born = _start_time(pid)
        for path in Path(f"/proc/{pid}/task").glob("*/stat"):
            got = _stat_cpu(path)
            sched = _schedstat(path.parent / "schedstat")
            if got and sched:
                key = (pid, int(path.parent.name))
                alive = self._thread.is_alive()  # first seen after the start: since its birth
                self.qemu_start.setdefault(key, (0.0, 0.0) if alive else (got[3], got[4]))
                self.qemu_last[key] = (got[3], got[4])
                self.sched_start.setdefault(key, (0.0, 0.0, born) if alive
                                            else (*sched, now))
                self.sched_last[key] = (*sched, now)

    def qemu_shares(self) -> list[dict[str, float]]:
        """Per QEMU, over the time it ran in the mode: ``busy``, its CPU seconds (all
        threads) per wall second; and what its vCPU thread (the one that ran most) did:
        ``vcpu_running`` on a CPU, ``vcpu_runnable`` waiting for a CPU (the machine is
        busy), ``vcpu_idle`` asleep (the guest waits for the host in WFI, or QEMU waits for
        its main loop): shares of the wall time, from /proc/<pid>/task/<tid>/schedstat."""
        out = []
        for pid in sorted({p for p, _ in self.sched_last}):
            keys = [k for k in self.sched_last if k[0] == pid]
            ran = {k: self.sched_last[k][0] - self.sched_start[k][0] for k in keys}
            vcpu = max(keys, key=lambda k: ran[k])
            wall = self.sched_last[vcpu][2] - self.sched_start[vcpu][2]
            if wall <= 0:
                continue
            wait = self.sched_last[vcpu][1] - self.sched_start[vcpu][1]
            out.append({"busy": round(sum(ran.values()) / wall, 3),
                        "vcpu_running": round(ran[vcpu] / wall, 3),
                        "vcpu_runnable": round(wait / wall, 3),
                        "vcpu_idle": round(1 - (ran[vcpu] + wait) / wall, 3)})
        return out

    def qemu_threads(self, n: int) -> list[list[float]]:
        """[user, system] ms of CPU per image it ran (``n`` / the number of QEMUs) of each
        thread of the first QEMU, busiest first."""
        if not self.qemu_last:
            return []
        first = min(pid for pid, _ in self.qemu_last)
        n = n / len({pid for pid, _ in self.qemu_last})
        rows = [[round(1e3 * (u - self.qemu_start[k][0]) / n, 2),
                 round(1e3 * (sy - self.qemu_start[k][1]) / n, 2)]
                for k, (u, sy) in self.qemu_last.items() if k[0] == first]
        return sorted((r for r in rows if sum(r) > 0), key=sum, reverse=True)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.last.update(self._read())

    def __enter__(self) -> CpuSampler:
        self.start = self._read()
        self.last = dict(self.start)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._reads = 0  # scan again: a process started since the last scan
        self.last.update(self._read())

    def per_kind(self) -> dict[str, list[float]]:
        """CPU seconds used during the mode, per kind, one value per process or thread."""
        out: dict[str, list[float]] = {}
        for key, cpu in sorted(self.last.items()):
            used = cpu - self.start.get(key, 0.0)
            if used > 0.005:
                out.setdefault(self.names[key], []).append(used)
        return out


def _schedstat(path: Path) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable waiting for a CPU) of a thread; None if gone."""
    try:
        run, wait = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return int(run) / 1e9, int(wait) / 1e9


def _start_time(pid: int) -> float:
    """When process ``pid`` started, in CLOCK_BOOTTIME seconds (0 if gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
                   ) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


def _thread_kind(name: str, comm: str) -> str:
    """Which part of the host process a thread is: a board's capture loop (--jobs), a
    digest batch waiter (it only waits on the reference worker's pipe), the main thread
    (one board's capture loop), or a thread Python did not start (OpenBLAS, ...)."""
    if name.startswith("tflm-digests"):
        return "host: digest waiters"
    if name == "MainThread":
        return "host: main thread"
    if name.startswith("verify-board"):
        return "host: board threads"
    return f"host: other threads ({comm})"


def fill_cache(build: Path, q: np.ndarray, cache_root: Path) -> None:
    """An earlier run of the same images: TFLM's digests of ``q`` in the cache at
    ``cache_root`` (what the ``-warm`` modes start from; not timed)."""
    manifest = manifest_mod.load(build)
    outs = [int(op["outputs"][0]) for op in manifest["operators"]]
    tflite = manifest_mod.model_bytes(build, manifest)
    refs = ReferenceDigests(tflite, q, outs, cache_root=cache_root)
    try:
        for i in range(len(q)):
            refs.get(i)
    finally:
        refs.close()


def measure(build: Path, q: np.ndarray, labels: np.ndarray, mode: str, work: Path,
            elf: Path) -> dict:
    """One mode: wall seconds, and CPU seconds per process (CpuSampler; QEMU's total read
    from /proc before each board stops). One board or N, the time and the CPU include the
    boards' boot (verify-jobsN boots its boards inside verify_on_boards). ``-warm``: TFLM's
    digests come from a cache filled before (cold modes compute them during the run)."""
    out = work / f"run-{mode}"
    warm = "-warm" in mode
    rate = LINE_RATE if "-115200" in mode else None
    base = mode.replace("-warm", "").replace("-115200", "")
    cache = work / "digest-cache" if warm else None
    if cache is not None and not cache.exists():
        fill_cache(build, q, cache)
    if base.startswith("verify-jobs"):
        with CpuSampler() as cpu:
            t0 = time.monotonic()
            run = verify_on_boards(elf, build, out, q, labels, int(base.removeprefix(
                "verify-jobs")), work / f"qemu-{mode}", progress=False, digest_cache=cache)
            secs = time.monotonic() - t0
        return _row(mode, len(q), secs, run, cpu, float(run.get("board_cpu_seconds", 0.0)))
    bank = work / "input_bank.bin" if base == "verify-bank" else None
    with contextlib.ExitStack() as stack:  # timed from the bank's file and the boot, as
        cpu = stack.enter_context(CpuSampler())  # verify-jobsN is (verify_on_boards)
        t0 = time.monotonic()
        if bank is not None and not boards.write_memory_bank(bank, q):
            bank = None  # (an input larger than the bank memory: all by SET_INPUT)
        board = stack.enter_context(
            boards.emulated_board(elf, work / f"qemu-{mode}", input_bank=bank))
        url = board.url
        if rate:
            url = stack.enter_context(FaultProxy(("127.0.0.1", board.port),
                                                 bytes_per_s=rate)).url
        if base.startswith("verify"):
            run = verify_capture(url, build, out, q, labels, progress=False, bank=bank,
                                 digest_cache=cache)
        else:
            run = capture.capture(url, build, out, q, labels, layers=base, progress=False)
        secs = time.monotonic() - t0
        qemu_cpu = board.cpu_seconds()
    return _row(mode + (f" at {rate:g} B/s" if rate else ""), len(q), secs, run, cpu, qemu_cpu)


def _row(label: str, n: int, secs: float, run: dict, cpu: CpuSampler,
         qemu_cpu: float) -> dict:
    rx = run.get("wire_bytes_received")
    kinds = cpu.per_kind()
    host_kinds = {k: sum(v) for k, v in kinds.items() if k.startswith("host")}
    worker = sum(kinds.get("reference worker", []))
    per_image = {k: round(v / n, 4) for k, v in sorted(host_kinds.items())}
    per_image["reference worker"] = round(worker / n, 4)
    per_image["each qemu"] = [round(v / n, 4) for v in kinds.get("qemu", [])]
    per_image["qemu threads, ms user/sys"] = cpu.qemu_threads(n)
    timing = run.get("timing", {})
    instr = timing.get("total_ticks_median", 0) * (timing.get("instructions_per_tick") or 0)
    return {"mode": label, "images": n, "seconds": round(secs, 2),
            "images_per_s": round(n / secs, 2),
            "host_cpu_s_per_image": round((sum(host_kinds.values()) + worker) / n, 4),
            "qemu_cpu_s_per_image": round(qemu_cpu / n, 4),
            "qemu_shares": cpu.qemu_shares(),
            "cpu_s_per_image": per_image,
            "instructions_per_image": instr or None,  # the inference, on the emulated M4
            "qemu_ns_per_instruction": round(1e9 * qemu_cpu / n / instr, 2) if instr else None,
            "digests_from_cache": run.get("verify", {}).get("digests_from_cache"),
            "rx_bytes_per_image": round(rx / n) if rx else None,
            "mismatched_images": run.get("verify", {}).get("mismatched_images")}


def speedups(rows: list[dict]) -> list[str]:
    """``verify-jobsN`` against ``verify-bank`` (one board, same inputs), cold against cold
    and warm (``-warm``) against warm."""
    lines = []
    for suffix in ("", "-warm"):
        one = next((r for r in rows if r["mode"] == "verify-bank" + suffix), None)
        if one is None:
            continue
        lines += [f"{r['mode']}: {r['images_per_s'] / one['images_per_s']:.2f}x one board "
                  f"({r['images_per_s']} vs {one['images_per_s']} img/s)"
                  for r in rows if r["mode"].startswith("verify-jobs")
                  and r["mode"].endswith("-warm") == bool(suffix)]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, required=True)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--inputs", choices=("generated", "test"), default="generated",
                    help="generated: --n smooth random int8 inputs (default); test: the "
                    "build's test split")
    ap.add_argument("--modes", default="verify-bank,verify-jobs2,verify-bank-warm,"
                    "verify-jobs2-warm")
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
