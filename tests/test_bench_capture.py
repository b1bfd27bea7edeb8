"""tools/bench_capture.py's bookkeeping (the measurements themselves are make bench-capture's,
not tests'): CPU seconds per process and thread, and cold/warm speedups paired right."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("bench_capture",
                                                  ROOT / "tools" / "bench_capture.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_the_sampler_counts_each_child_and_thread_by_what_it_is():
    bc = _tool()
    child = subprocess.Popen([sys.executable, "-c",  # spins 0.4 s once told to
                              "import sys, time\nsys.stdin.readline()\n"
                              "end = time.process_time() + 0.4\n"
                              "while time.process_time() < end: pass"],
                             stdin=subprocess.PIPE, text=True)
    spun, release = threading.Event(), threading.Event()

    def waiter_body() -> None:  # alive until the sampler's last read: a thread that ends
        _spin(0.3)               # between two reads loses up to SAMPLE_S (by design)
        spun.set()
        release.wait()

    waiter = threading.Thread(target=waiter_body, name="tflm-digests_0")
    with bc.CpuSampler() as cpu:
        child.communicate("go\n")
        waiter.start()
        _spin(0.2)
        spun.wait()
    release.set()
    waiter.join()
    kinds = cpu.per_kind()
    assert 0.35 <= sum(kinds["reference worker"]) <= 0.6  # a child other than QEMU
    assert 0.25 <= sum(kinds["host: digest waiters"]) <= 0.45
    assert 0.15 <= sum(kinds["host: main thread"]) <= 0.4
    assert not any(k.startswith("host: other") for k in kinds)  # the sampler is not counted


def test_speedups_pair_cold_with_cold_and_warm_with_warm():
    bc = _tool()
    rows = [{"mode": m, "images_per_s": v} for m, v in (
        ("verify-bank", 30.0), ("verify-jobs2", 40.0), ("verify-bank-warm", 32.0),
        ("verify-jobs2-warm", 56.0))]
    assert bc.speedups(rows) == ["verify-jobs2: 1.33x one board (40.0 vs 30.0 img/s)",
                                 "verify-jobs2-warm: 1.75x one board (56.0 vs 32.0 img/s)"]


def test_qemu_shares_split_the_vcpu_threads_wall_time():
    """Per QEMU: CPU of all its threads per wall second, and its busiest thread's time
    running, runnable and asleep as shares of the wall time (from schedstat)."""
    bc = _tool()
    cpu = bc.CpuSampler()
    # QEMU 7: vCPU thread 70 ran 6 s, waited 1 s for a CPU in 10 s; main loop 71 ran 1 s
    cpu.sched_start = {(7, 70): (0.0, 0.0, 100.0), (7, 71): (0.0, 0.0, 100.0)}
    cpu.sched_last = {(7, 70): (6.0, 1.0, 110.0), (7, 71): (1.0, 0.5, 110.0)}
    assert cpu.qemu_shares() == [{"busy": 0.7, "vcpu_running": 0.6, "vcpu_runnable": 0.1,
                                  "vcpu_idle": 0.3}]
    run, wait = bc._schedstat(Path(f"/proc/self/task/{threading.get_native_id()}/schedstat"))
    assert run > 0 and wait >= 0
