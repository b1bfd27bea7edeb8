"""Verified capture on several emulated boards at once (``--jobs N``): the images are split
into shards, each verified by :func:`tinyscope.analysis.verify.verify_capture` on its own QEMU
board with its shard in the board's input bank, then merged into one capture.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinyscope.analysis.verify import _as_input, verify_capture
from tinyscope.device import capture as capture_mod
from tinyscope.errors import TinyscopeError

SHARD_ATTEMPTS = 2  # boards started per shard: a failing board is replaced once
SHARD_DIR = "shard{k}"  # RUN_DIR/shard<k>: one board's part until the shards are merged


class _Shards:
    """The boards of a sharded capture: shard ``k`` of the images runs on its own emulated
    board (its inputs in the board's input bank); a board that fails is replaced once."""

    def __init__(self, elf: Path, build_dir: str | Path, out_dir: Path, inputs: np.ndarray,
                 labels: np.ndarray, state_dir: Path, data_source: str, resume: bool,
                 tick: Callable[[], None], digest_cache: Path | None) -> None:
        self.elf, self.build_dir, self.out_dir = elf, build_dir, out_dir
        self.inputs, self.labels, self.state_dir = _as_input(inputs), labels, state_dir
        self.data_source, self.resume, self.tick = data_source, resume, tick
        self.digest_cache = digest_cache
        self.stop = threading.Event()
        self.board_cpu: list[float] = []
        self.arrays: dict[int, dict[str, np.ndarray]] = {}  # shard -> its capture's arrays

    def run(self, k: int, idx: np.ndarray) -> dict:
        from tinyscope.device import boards

        q = self.inputs[idx]
        shard_dir = self.out_dir / SHARD_DIR.format(k=k)
        for attempt in range(SHARD_ATTEMPTS):
            state = Path(self.state_dir) / f"job{k}-{attempt}"
            state.mkdir(parents=True, exist_ok=True)
            bank: Path | None = state / "input_bank.bin"
            if not boards.write_memory_bank(bank, q):  # the first that fit; others SET_INPUT
                bank = None
            again = (self.resume or attempt > 0) and (shard_dir / "run.json").is_file()
            try:
                with boards.emulated_board(self.elf, state, input_bank=bank) as b:
                    try:
                        arrays: dict[str, np.ndarray] = {}
                        run = verify_capture(
                            b.url, self.build_dir, shard_dir, q, np.asarray(self.labels)[idx],
                            progress=False, bank=bank, data_source=self.data_source,
                            on_image=self.tick, resume=again, stop=self.stop,
                            digest_cache=self.digest_cache, arrays_out=arrays)
                        self.arrays[k] = arrays
                        return run
                    finally:
                        self.board_cpu.append(b.cpu_seconds())
            except capture_mod.CaptureInterrupted:
                raise
            except TinyscopeError:
                if attempt == SHARD_ATTEMPTS - 1 or self.stop.is_set():
                    raise
        raise AssertionError("unreachable")


def verify_on_boards(elf: Path, build_dir: str | Path, out_dir: str | Path, inputs: np.ndarray,
                     labels: np.ndarray, jobs: int, state_dir: Path, data_source: str = "",
                     progress: bool = True, resume: bool = False,
                     on_image: Callable[[], None] | None = None,
                     digest_cache: Path | None = None) -> dict:
    """:func:`verify_capture` on ``jobs`` emulated boards at once (one QEMU each, its shard of
    the images in its input bank), merged into one capture in ``out_dir``; one progress bar.
    A shard whose board fails is continued on a new board from its last complete image.
    Until the merge each shard lives in ``out_dir/shard<k>`` and ``out_dir/run.json`` says
    ``complete: false`` and ``jobs``: ``resume=True`` continues every shard where it stopped
    (Ctrl-C, a killed board), no image lost or done twice. ``digest_cache``: as for
    verify_capture (the boards share it)."""
    out_dir, n = Path(out_dir), len(inputs)
    if resume:
        jobs = _previous_jobs(out_dir, jobs)
    else:  # shards of an older interrupted capture are not continued by a new one
        for old in out_dir.glob(SHARD_DIR.format(k="*")):
            shutil.rmtree(old, ignore_errors=True)
    shards = [s for s in np.array_split(np.arange(n), max(1, min(jobs, n))) if len(s)]
    lock = threading.Lock()
    bar = None
    if progress:
        from tqdm import tqdm

        done0 = sum(_shard_done(out_dir / SHARD_DIR.format(k=k)) for k in range(len(shards))
                    ) if resume else 0
        bar = tqdm(total=n, initial=done0, desc=f"verify ({len(shards)} boards)", unit="img")

    def tick() -> None:
        with lock:
            if bar:
                bar.update(1)
            if on_image:
                on_image()

    boards = _Shards(elf, build_dir, out_dir, inputs, labels, state_dir, data_source, resume,
                     tick, digest_cache)
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=len(shards), thread_name_prefix="verify-board")
    futures = [pool.submit(boards.run, k, idx) for k, idx in enumerate(shards)]
    error: BaseException | None = None
    runs: list[dict] = []
    try:
        runs = [f.result() for f in futures]
    except KeyboardInterrupt:
        error = capture_mod.CaptureInterrupted("interrupted")
    except BaseException as err:  # one shard failed for good: stop the others, keep theirs
        error = err
    finally:
        if error is not None:
            boards.stop.set()
        pool.shutdown(wait=True)
        if bar:
            bar.close()
    if error is not None:
        _raise_partial(error, futures, out_dir, build_dir, data_source, n, len(shards))
    merged = _merge_shards(out_dir, shards, runs, labels, time.monotonic() - started,
                           boards.arrays)
    merged["board_cpu_seconds"] = round(sum(boards.board_cpu), 3)  # the QEMUs' CPU time
    return merged


def _raise_partial(error: BaseException, futures: list[Future], out_dir: Path,
                   build_dir: str | Path, data_source: str, n: int, jobs: int) -> None:
    """Record an interrupted sharded capture (what ``--resume`` reads) and raise ``error``
    saying how many images are saved and how to continue."""
    for f in futures:  # the other shards' own errors are only "interrupted"
        with contextlib.suppress(BaseException):
            f.result()
    done = sum(_shard_done(out_dir / SHARD_DIR.format(k=k)) for k in range(jobs))
    _write_partial(out_dir, build_dir, data_source, n, jobs, done, str(error))
    saved = (f" ({done} complete images saved in {out_dir}; continue with tinyscope "
             f"capture --resume {out_dir})") if done else ""
    if isinstance(error, TinyscopeError):  # the shard's own "saved in" is not for users
        why = re.sub(r" \(\d+ complete images saved in .*\)$", "", str(error))
        error.args = (f"{why}{saved}",)
    raise error


def _shard_done(shard_dir: Path) -> int:
    try:
        return int(json.loads((shard_dir / "run.json").read_text()).get("images", 0))
    except (OSError, ValueError):
        return 0


def _previous_jobs(out_dir: Path, jobs: int) -> int:
    """The number of boards of the interrupted sharded capture in ``out_dir`` (its shards
    split the images: resuming with another number would shuffle them)."""
    try:
        prev = json.loads((out_dir / "run.json").read_text())
    except (OSError, ValueError):
        return jobs
    return int(prev.get("jobs", jobs))


def _write_partial(out_dir: Path, build_dir: str | Path, data_source: str, n: int, jobs: int,
                   done: int, why: str) -> None:
    """RUN_DIR/run.json of an interrupted sharded capture: what ``--resume`` reads."""
    from tinyscope.fsutil import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "run.json", json.dumps({
        "capture_format": capture_mod.CAPTURE_FORMAT, "build": str(build_dir),
        "data": data_source, "layers": "verify", "complete": False, "jobs": jobs,
        "images_requested": n, "images": done, "error": why,
        "shards": [SHARD_DIR.format(k=k) for k in range(jobs)]}, indent=2) + "\n")


def _merge_shards(out_dir: Path, shards: list[np.ndarray], runs: list[dict],
                  labels: np.ndarray, seconds: float,
                  in_memory: dict[int, dict[str, np.ndarray]]) -> dict:
    """One capture of the shards' (their arrays as the boards returned them, else read back
    from RUN_DIR/shard<k>/capture.npz), images renumbered to their global indices."""
    arrays: dict[str, np.ndarray] = {}
    stacks: dict[str, list[np.ndarray]] = {"device_digests": [], "reference_digests": [],
                                           "op_ticks": [], "digest_ticks": []}
    for k, idx in enumerate(shards):
        with contextlib.ExitStack() as stack:
            z = in_memory.get(k)
            if z is None:
                z = stack.enter_context(np.load(out_dir / SHARD_DIR.format(k=k) /
                                                "capture.npz"))
            for name in (z.files if hasattr(z, "files") else list(z)):
                if name in stacks:
                    stacks[name].append(z[name])
                elif name != "labels":
                    prefix, i = name.rsplit("_", 1)
                    arrays[f"{prefix}_{int(idx[int(i)])}"] = z[name]
    # digests and ticks were concatenated shard by shard: put them in image order
    order = np.argsort(np.concatenate(shards))
    for k in stacks:
        arrays[k] = np.concatenate(stacks[k])[order]
    differ = arrays["device_digests"] != arrays["reference_digests"]
    mismatches = [{"image": i, "ops": [int(k) for k in np.flatnonzero(differ[i])]}
                  for i in np.flatnonzero(differ.any(axis=1)).tolist()]
    merged = dict(runs[0])
    n = sum(len(s) for s in shards)
    per_op = [dict(r, images=n, mismatches=int(differ[:, j].sum()))
              for j, r in enumerate(runs[0]["verify"]["per_op"])]
    merged.update(images=n, images_requested=n, seconds=round(seconds, 3), jobs=len(shards),
                  wire_bytes_received=sum(r["wire_bytes_received"] for r in runs),
                  bad_frames=sum(r["bad_frames"] for r in runs),
                  ports=[r["port"] for r in runs])
    merged["verify"] = dict(runs[0]["verify"], images=n, per_op=per_op,
                            mismatched_images=len(mismatches),
                            digests_from_cache=sum(r["verify"].get("digests_from_cache", 0)
                                                   for r in runs),
                            mismatches=sorted(mismatches, key=lambda m: m["image"])[:1000])
    merged["timing"] = capture_mod._timing_summary(arrays["op_ticks"], merged)
    arrays["labels"] = np.asarray(labels[:n], np.int64)
    capture_mod.save_capture(out_dir, arrays, merged)
    for k in range(len(shards)):
        shutil.rmtree(out_dir / SHARD_DIR.format(k=k), ignore_errors=True)
    return merged
