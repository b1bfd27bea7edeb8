"""Verified capture: every layer of every image checked on the device by digest.

The device is bit-exact with TFLM, so for almost every image and operator the host already
knows the answer: instead of streaming every tensor, the device sends one DIGEST frame per
image (a 32-bit digest of every operator's output, docs/protocol.md) and the host compares it
with the digests of the TFLM reference's tensors, computed for the same inputs in batches in
the reference worker process (analysis/references.py: a TFLM abort cannot take tinyscope
down) while the device runs. Every operator whose digest differs is fetched in full
(RUN LIST of those operators) and stored with its image, so that ``compare`` reports it down
to the element and channel like a full dump. Operators whose digests agree are proven equal to
TFLM's tensors (any single changed word changes the digest), so ``compare`` takes their values
from TFLM: a verified capture is a first-class capture of every layer.

Stored in RUN_DIR (docs/capture-format.md): ``capture.npz`` with ``input_<i>``,
``output_<i>``, ``labels``, ``op_ticks``, ``device_digests`` and ``reference_digests``
(``(N, num_ops)`` uint32) and ``m<tensor>_<i>`` for each mismatching tensor; ``run.json``
with ``layers: "verify"`` and a ``verify`` section (images, per-operator mismatch counts).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinyscope.convert import manifest as manifest_mod
from tinyscope.device import capture as capture_mod
from tinyscope.device import protocol as proto
from tinyscope.device.link import (
    BAUDRATE,
    HELLO_TIMEOUT,
    REQUEST_TIMEOUT,
    RUN_TIMEOUT,
    Device,
    LinkError,
    open_port,
    release_port,
)
from tinyscope.errors import DeviceError, MismatchError, TinyscopeError

REFERENCE_BATCH = 32  # images per TFLM reference batch in the reference worker
MISMATCH_PREFIX = "m"  # capture.npz: m<tensor>_<image> = a mismatching tensor, in full


def reference_digests(tflite_bytes: bytes, inputs: np.ndarray,
                      out_tensors: list[int]) -> np.ndarray:
    """``(len(inputs), len(out_tensors))`` uint32: the digest of each operator's output
    tensor as the TFLM reference interpreter computes it (in this process: the capture uses
    :class:`ReferenceDigests`, which runs it in the reference worker)."""
    digests = worker_digests(tflite_bytes, inputs, out_tensors)
    return np.stack([digests[t] for t in out_tensors], axis=1).reshape(len(inputs), -1)


_INTERPRETERS: dict[str, tuple] = {}  # the worker's TFLM interpreter, kept between batches


def worker_digests(tflite_bytes: bytes, inputs: np.ndarray,
                   out_tensors: list[int]) -> dict[int, np.ndarray]:
    """``{tensor: (N,) uint32}``: TFLM's digest of each operator output for each input. Runs
    in the reference worker process (references.run_job, kind ``tflm_digests``), where a
    TFLM abort cannot take tinyscope down; the interpreter is built once per model."""
    from tinyscope.analysis import reference
    from tinyscope.convert.graph import graph

    key = hashlib.sha256(tflite_bytes).hexdigest()
    if key not in _INTERPRETERS:
        _, tensors, in_idx, _ = graph(tflite_bytes)
        # GetTensor with an index out of range segfaults: only ask for indices the graph has.
        if any(t not in tensors for t in out_tensors):
            raise TinyscopeError("the model graph names an operator output it does not define")
        _INTERPRETERS.clear()
        _INTERPRETERS[key] = (reference._tflm_interpreter(tflite_bytes), tensors, in_idx[0])
    interp, tensors, in_index = _INTERPRETERS[key]
    shape = tensors[in_index].shape
    inputs = reference._check_inputs(np.asarray(inputs), shape, tensors[in_index].dtype)
    rows: dict[int, list[np.ndarray]] = {t: [] for t in out_tensors}
    for image in inputs:
        interp.set_input(image.reshape(shape), 0)
        interp.invoke()
        for t in out_tensors:
            rows[t].append(np.asarray(interp.GetTensor(t, 0)["tensor_data"]).reshape(-1))
    if not len(inputs):
        return {t: np.zeros(0, np.uint32) for t in out_tensors}
    return {t: proto.tensor_digests(np.stack(r)) for t, r in rows.items()}


DIGEST_WORKER = "digests"  # the reference worker process that computes TFLM's digests
FIRST_BATCH = 4  # images in the first batch: the device waits for it, so keep it short


class ReferenceDigests:
    """TFLM digests for ``inputs``, computed batch by batch in the reference worker process
    (references.run_job) while the device runs; :meth:`get` waits for the batch holding
    image ``i``. A reference worker that dies raises references.ReferenceError there."""

    def __init__(self, tflite_bytes: bytes, inputs: np.ndarray, out_tensors: list[int],
                 batch: int = REFERENCE_BATCH) -> None:
        from tinyscope.analysis import references

        self._tmp = tempfile.TemporaryDirectory(prefix="tinyscope-digests-")
        work = Path(self._tmp.name)
        starts = [0, *range(min(FIRST_BATCH, len(inputs)), len(inputs), batch)]
        self._bounds = [(a, b) for a, b in zip(starts, [*starts[1:], len(inputs)],
                                                strict=True) if b > a]
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tflm-digests")
        job = {"out_tensors": [int(t) for t in out_tensors]}

        def run(a: int, b: int) -> np.ndarray:
            d = references.run_job("tflm_digests", tflite_bytes, np.asarray(inputs[a:b]),
                                   work, job, DIGEST_WORKER)
            return np.stack([d[t] for t in out_tensors], axis=1)

        self._futures: list[Future] = [self._pool.submit(run, a, b) for a, b in self._bounds]

    def get(self, i: int) -> np.ndarray:
        for (a, b), f in zip(self._bounds, self._futures, strict=True):
            if a <= i < b:
                return f.result()[i - a]
        raise IndexError(i)

    def close(self) -> None:
        for f in self._futures:
            f.cancel()
        self._pool.shutdown(wait=True)
        self._tmp.cleanup()


def _run_with_retry(dev: Device, image: np.ndarray, bank_index: int | None, mode: proto.RunMode,
                    ops: list[int], retries: int, **flags: bool):
    for attempt in range(retries + 1):
        try:
            if attempt:
                dev.hello()
            if bank_index is not None:
                return dev.run_from_bank(bank_index, mode, ops, **flags)
            dev.set_input(proto.input_data(image))
            return dev.run(mode, ops, **flags)
        except LinkError:
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


def _as_input(inputs: np.ndarray) -> np.ndarray:
    """The device inputs: float32 for a model with a float32 input edge, else int8."""
    inputs = np.asarray(inputs)
    return inputs if inputs.dtype == np.float32 else np.asarray(inputs, np.int8)


def _bank_holds(bank: Path | None, info: proto.Info, inputs: np.ndarray) -> int:
    """How many of ``inputs`` (the first ones) the device serves from its input bank: the
    bank file ``bank`` it booted or was built with must hold exactly those inputs. A bank in
    a real board's flash may hold fewer than all (the rest come by SET_INPUT)."""
    if bank is None or info.input_bank == 0:
        if bank is not None and Path(bank).is_file():
            raise MismatchError(f"the device reports no input bank, but {bank} was given: boot "
                                "(or flash) the board with it")
        return 0
    count = info.input_bank
    if count > len(inputs) or Path(bank).read_bytes() != proto.input_bank(inputs[:count]):
        raise MismatchError(f"the device's input bank ({count} inputs) holds other inputs "
                            f"than the first ones asked for ({bank}): write it with "
                            "protocol.input_bank(inputs) and boot or build with it")
    return count


class _VerifyState:
    """The complete images of a verified capture so far (kept in order; an image counts once
    its digests are compared and its mismatching tensors fetched), saved to RUN_DIR as a
    partial capture (``complete: false``) that ``resume`` continues."""

    def __init__(self, n: int, num_ops: int, prev_arrays: dict[str, np.ndarray],
                 prev: dict) -> None:
        self.done = int(prev.get("images", 0))
        self.arrays = {k: v for k, v in prev_arrays.items()
                       if k.startswith(("input_", "output_", MISMATCH_PREFIX))}
        self.dev_digests = np.zeros((n, num_ops), np.uint32)
        self.ref_digests = np.zeros((n, num_ops), np.uint32)
        for name, dst in (("device_digests", self.dev_digests),
                          ("reference_digests", self.ref_digests)):
            if self.done:
                dst[:self.done] = prev_arrays[name][:self.done]
        self.ticks: list[np.ndarray] = list(prev_arrays.get("op_ticks", []))[:self.done]
        self.digest_ticks: list[int] = [int(v) for v in prev_arrays.get(
            "digest_ticks", [])][:self.done]
        self.mismatches: list[dict] = [  # from the digests: run.json lists at most 1000
            {"image": i, "ops": [int(k) for k in np.flatnonzero(
                self.dev_digests[i] != self.ref_digests[i])]}
            for i in range(self.done) if (self.dev_digests[i] != self.ref_digests[i]).any()]
        self.seconds = float(prev.get("seconds", 0.0))

    def add(self, i: int, arrays: dict[str, np.ndarray], dev: np.ndarray, ref: np.ndarray,
            ticks: np.ndarray, digest_ticks: int, bad: list[int]) -> None:
        self.arrays.update(arrays)
        self.dev_digests[i], self.ref_digests[i] = dev, ref
        self.ticks.append(ticks)
        self.digest_ticks.append(digest_ticks)
        if bad:
            self.mismatches.append({"image": i, "ops": bad})
        self.done = i + 1

    def npz(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        d = self.done
        return dict(self.arrays, labels=np.asarray(labels[:d], np.int64),
                    op_ticks=np.asarray(self.ticks, np.int64).reshape(d, -1),
                    digest_ticks=np.asarray(self.digest_ticks, np.int64),
                    device_digests=self.dev_digests[:d], reference_digests=self.ref_digests[:d])


CHECKPOINT_SECONDS = capture_mod.CHECKPOINT_SECONDS


def verify_capture(port_url: str, build_dir: str | Path, out_dir: str | Path,
                   inputs: np.ndarray, labels: np.ndarray, progress: bool = True,
                   data_source: str = "", timeout: float = REQUEST_TIMEOUT,
                   retries: int = capture_mod.MAX_IMAGE_RETRIES,
                   baudrate: int = BAUDRATE, bank: Path | None = None,
                   on_image: Callable[[], None] | None = None, resume: bool = False,
                   stop: threading.Event | None = None) -> dict:
    """Verify every operator of every image of ``inputs`` on the device by digest; fetch and
    store the mismatching tensors; write RUN_DIR/capture.npz + run.json; return run.json.
    ``bank``: the input bank file the board booted with (inputs by USE_INPUT, no upload).
    Complete images are saved every CHECKPOINT_SECONDS and when the capture stops (an error,
    Ctrl-C, ``stop`` set by another thread): ``resume=True`` continues from there, no image
    lost or done twice."""
    build_dir, out_dir = Path(build_dir), Path(out_dir)
    manifest = manifest_mod.load(build_dir)
    tflite_bytes = manifest_mod.model_bytes(build_dir, manifest)
    ops = manifest["operators"]
    out_tensors = [int(op["outputs"][0]) for op in ops]
    shape = manifest["input"]["shape"]
    n = len(inputs)
    prev_arrays, prev = (capture_mod._load_previous(out_dir, manifest, "verify", inputs)
                         if resume else ({}, {}))
    state = _VerifyState(n, len(ops), prev_arrays, prev)
    q_all = _as_input(inputs)
    refs = ReferenceDigests(tflite_bytes, q_all[state.done:], out_tensors)
    port = open_port(port_url, baudrate)
    default = timeout == REQUEST_TIMEOUT
    dev = Device(port, timeout=timeout, run_timeout=RUN_TIMEOUT if default else timeout,
                 hello_timeout=HELLO_TIMEOUT if default else timeout)
    started = last_save = time.monotonic()
    bar = None
    info: proto.Info | None = None
    use_bank = 0  # the first use_bank inputs come from the device's input bank
    error: BaseException | None = None

    def save(complete: bool, why: str = "") -> dict:
        run = _run_json(port_url, build_dir, data_source, info, dev,
                        state.seconds + time.monotonic() - started, state, out_tensors, n)
        run.update(complete=complete, inputs_from=(
            "SET_INPUT" if not use_bank else "input bank (USE_INPUT)" if use_bank >= n else
            f"input bank (USE_INPUT) for the first {use_bank}, SET_INPUT for the rest"),
            input_bank=info.input_bank if info else 0, images_from_bank=min(use_bank, n))
        if why:
            run["error"] = why
        if state.done:
            capture_mod.save_capture(out_dir, state.npz(labels), run)
        return run

    try:
        info = dev.hello()
        capture_mod.check_info(info, manifest, build_dir)
        if [t for _, t in info.ops] != out_tensors:
            raise MismatchError(f"the device's operators (INFO) differ from {build_dir}/"
                                "manifest.json's: flash this build")
        use_bank = _bank_holds(bank, info, q_all)
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n, initial=state.done, desc="verify", unit="img")
        first = state.done
        for i in range(first, n):
            if stop is not None and stop.is_set():
                raise capture_mod.CaptureInterrupted("interrupted")
            image = q_all[i]
            slot = i if i < use_bank else None
            res = _run_with_retry(dev, image, slot, proto.RunMode.NONE, [], retries, timing=True,
                                  output=True, digest=True)
            if res.digest is None or len(res.digest.digests) != len(ops):
                raise TinyscopeError("the device answered RUN DIGEST without a DIGEST frame of "
                                     f"{len(ops)} operators: flash a protocol "
                                     f"{proto.PROTOCOL_VERSION} firmware")
            dev_d = np.asarray(res.digest.digests, np.uint32)
            ref_d = refs.get(i - first)
            arrays = {f"input_{i}": image.reshape(shape), f"output_{i}": res.output}
            bad = [k for k in range(len(ops)) if dev_d[k] != ref_d[k]]
            if bad:  # fetch those operators' tensors in full
                full = _run_with_retry(dev, image, slot, proto.RunMode.LIST, bad, retries,
                                       timing=False, output=False, digest=True)
                arrays.update({f"{MISMATCH_PREFIX}{out_tensors[k]}_{i}":
                               full.tensors[out_tensors[k]] for k in bad})
            state.add(i, arrays, dev_d, ref_d, np.asarray(res.timing.op_ticks, np.int64),
                      res.digest.digest_ticks, bad)
            if bar:
                bar.update(1)
            if on_image:
                on_image()
            if time.monotonic() - last_save > CHECKPOINT_SECONDS:
                save(False, "interrupted")  # a checkpoint: what a kill leaves behind
                last_save = time.monotonic()
    except KeyboardInterrupt:
        error = capture_mod.CaptureInterrupted("interrupted")
    except (TinyscopeError, OSError) as err:
        error = err
    finally:
        for closing in ((bar.close if bar else (lambda: None)), refs.close, port.close):
            with contextlib.suppress(Exception):
                closing()
        release_port(port_url)
    if error is None:
        return save(True)
    save(False, str(error))
    saved = (f" ({state.done} complete images saved in {out_dir}; continue with tinyscope "
             f"capture --resume {out_dir})") if state.done else ""
    if isinstance(error, TinyscopeError):  # same class and fields, the message extended
        error.args = (f"{error}{saved}",)
        raise error
    raise DeviceError(f"serial port {port_url}: {error}{saved}") from error


def _run_json(port_url: str, build_dir: Path, data_source: str, info: proto.Info | None,
              dev: Device, seconds: float, state: _VerifyState, out_tensors: list[int],
              n_requested: int) -> dict:
    n = state.done
    counts = np.zeros(len(out_tensors), np.int64)
    for m in state.mismatches:
        counts[m["ops"]] += 1
    run: dict = {"capture_format": capture_mod.CAPTURE_FORMAT, "port": port_url,
                 "build": str(build_dir), "data": data_source, "layers": "verify",
                 "complete": True, "images_requested": n_requested, "images": n,
                 "seconds": round(seconds, 3), "wire_bytes_received": dev.rx_bytes,
                 "bad_frames": dev.reader.bad_frames, "retries": 0, "reconnects": 0,
                 "device_bad_frames": dev.device_bad_frames, "stale_frames": dev.stale_frames}
    if info is not None:
        run.update(capture_mod._info_fields(info))
    if n:
        run["timing"] = capture_mod._timing_summary(np.asarray(state.ticks, np.int64), run)
    run["verify"] = {
        "images": n, "digest": "h = nbytes; h = h * 0x01000193 + word (mod 2^32)",
        "digest_ticks_median": int(np.median(state.digest_ticks)) if n else 0,
        "mismatched_images": len(state.mismatches),
        "per_op": [{"op_index": k, "tensor_index": t, "images": n,
                    "mismatches": int(counts[k])} for k, t in enumerate(out_tensors)],
        "mismatches": state.mismatches[:1000],
    }
    return run


def verified_tensors(run_dir: str | Path, run: dict, tflm: dict[int, np.ndarray]) -> dict[
        int, np.ndarray]:
    """The device's tensors of a verified capture, ``(N, ...)`` per operator output: TFLM's
    values where the digests agreed, the fetched device tensors where they did not."""
    out: dict[int, np.ndarray] = {}
    with np.load(Path(run_dir) / "capture.npz") as npz:
        stored = {k: npz[k] for k in npz.files if k.startswith(MISMATCH_PREFIX)}
    for row in run["verify"]["per_op"]:
        t = int(row["tensor_index"])
        out[t] = np.array(tflm[t], copy=True)
    for name, arr in stored.items():
        t, i = (int(v) for v in name[len(MISMATCH_PREFIX):].split("_"))
        out[t][i] = arr.reshape(out[t].shape[1:])
    return out


def verified_row(run: dict, tensor_index: int) -> dict | None:
    """``{"images": N, "mismatches": M}`` of one operator output of a verified capture."""
    for row in run.get("verify", {}).get("per_op", []):
        if int(row["tensor_index"]) == tensor_index:
            return {"images": int(row["images"]), "mismatches": int(row["mismatches"])}
    return None


MAX_LISTED_ELEMENTS = 200  # differing elements named one by one in metrics.json ...
MAX_LISTED_PER_TENSOR = 5  # ... at most this many per image and operator


def summary(run: dict, device: dict[int, np.ndarray], tflm: dict[int, np.ndarray],
            manifest: dict) -> dict:
    """metrics.json's ``verify``: images verified, and the first differing elements named by
    operator, image, element (flat index and NHWC position) and channel."""
    v = run["verify"]
    ops = {int(o["outputs"][0]): o for o in manifest["operators"]}
    elements = []
    for m in v["mismatches"]:
        i = int(m["image"])
        for k in m["ops"]:
            t = int(manifest["operators"][k]["outputs"][0])
            d = np.asarray(device[t][i], np.int32) - np.asarray(tflm[t][i], np.int32)
            room = min(MAX_LISTED_PER_TENSOR, MAX_LISTED_ELEMENTS - len(elements))
            for e in np.flatnonzero(d)[:max(room, 0)]:
                pos = np.unravel_index(int(e), d.shape)
                elements.append({
                    "op_index": k, "op": ops[t]["op"], "tensor_index": t, "image": i,
                    "element": int(e), "position": [int(x) for x in pos],
                    "channel": int(pos[-1]) if d.ndim else 0,
                    "device": int(device[t][i].flat[e]), "tflm": int(tflm[t][i].flat[e])})
    return {"images": int(v["images"]), "operators": len(v["per_op"]),
            "mismatched_images": int(v["mismatched_images"]),
            "mismatching_ops": sum(1 for r in v["per_op"] if r["mismatches"]),
            "elements": elements}


SHARD_ATTEMPTS = 2  # boards started per shard: a failing board is replaced once
SHARD_DIR = "shard{k}"  # RUN_DIR/shard<k>: one board's part until the shards are merged


def verify_on_boards(elf: Path, build_dir: str | Path, out_dir: str | Path, inputs: np.ndarray,
                     labels: np.ndarray, jobs: int, state_dir: Path, data_source: str = "",
                     progress: bool = True, resume: bool = False,
                     on_image: Callable[[], None] | None = None) -> dict:
    """:func:`verify_capture` on ``jobs`` emulated boards at once (one QEMU each, its shard of
    the images in its input bank), merged into one capture in ``out_dir``; one progress bar.
    A shard whose board fails is continued on a new board from its last complete image.
    Until the merge each shard lives in ``out_dir/shard<k>`` and ``out_dir/run.json`` says
    ``complete: false`` and ``jobs``: ``resume=True`` continues every shard where it stopped
    (Ctrl-C, a killed board), no image lost or done twice."""
    from tinyscope.device import boards

    out_dir, n = Path(out_dir), len(inputs)
    if resume:
        jobs = _previous_jobs(out_dir, jobs)
    else:  # shards of an older interrupted capture are not continued by a new one
        for old in out_dir.glob(SHARD_DIR.format(k="*")):
            shutil.rmtree(old, ignore_errors=True)
    shards = [s for s in np.array_split(np.arange(n), max(1, min(jobs, n))) if len(s)]
    lock = threading.Lock()
    stop = threading.Event()
    bar = None
    done0 = sum(_shard_done(out_dir / SHARD_DIR.format(k=k)) for k in range(len(shards))
                ) if resume else 0
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=done0, desc=f"verify ({len(shards)} boards)", unit="img")

    def tick() -> None:
        with lock:
            if bar:
                bar.update(1)
            if on_image:
                on_image()

    board_cpu: list[float] = []

    def shard(k: int, idx: np.ndarray) -> dict:
        q = _as_input(inputs)[idx]
        shard_dir = out_dir / SHARD_DIR.format(k=k)
        for attempt in range(SHARD_ATTEMPTS):
            state = Path(state_dir) / f"job{k}-{attempt}"
            state.mkdir(parents=True, exist_ok=True)
            bank = state / "input_bank.bin"
            bank.write_bytes(proto.input_bank(q))
            again = (resume or attempt > 0) and (shard_dir / "run.json").is_file()
            try:
                with boards.emulated_board(elf, state, input_bank=bank) as b:
                    try:
                        return verify_capture(b.url, build_dir, shard_dir, q,
                                              np.asarray(labels)[idx], progress=False,
                                              bank=bank, data_source=data_source, on_image=tick,
                                              resume=again, stop=stop)
                    finally:
                        board_cpu.append(b.cpu_seconds())
            except capture_mod.CaptureInterrupted:
                raise
            except TinyscopeError:
                if attempt == SHARD_ATTEMPTS - 1 or stop.is_set():
                    raise
        raise AssertionError("unreachable")

    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=len(shards))
    futures = [pool.submit(shard, k, idx) for k, idx in enumerate(shards)]
    error: BaseException | None = None
    runs: list[dict] = []
    try:
        for f in futures:
            runs.append(f.result())
    except KeyboardInterrupt:
        error = capture_mod.CaptureInterrupted("interrupted")
    except BaseException as err:  # one shard failed for good: stop the others, keep theirs
        error = err
    finally:
        if error is not None:
            stop.set()
        pool.shutdown(wait=True)
        if bar:
            bar.close()
    if error is not None:
        for f in futures:  # the other shards' own errors are only "interrupted"
            with contextlib.suppress(BaseException):
                f.result()
        done = sum(_shard_done(out_dir / SHARD_DIR.format(k=k)) for k in range(len(shards)))
        _write_partial(out_dir, build_dir, data_source, n, len(shards), done, str(error))
        saved = (f" ({done} complete images saved in {out_dir}; continue with tinyscope "
                 f"capture --resume {out_dir})") if done else ""
        if isinstance(error, TinyscopeError):  # the shard's own "saved in" is not for users
            why = re.sub(r" \(\d+ complete images saved in .*\)$", "", str(error))
            error.args = (f"{why}{saved}",)
            raise error
        raise error
    merged = _merge_shards(out_dir, shards, runs, labels, time.monotonic() - started)
    merged["board_cpu_seconds"] = round(sum(board_cpu), 3)  # the QEMUs' CPU time
    return merged


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
                  labels: np.ndarray, seconds: float) -> dict:
    arrays: dict[str, np.ndarray] = {}
    stacks: dict[str, list[np.ndarray]] = {"device_digests": [], "reference_digests": [],
                                           "op_ticks": [], "digest_ticks": []}
    for k, idx in enumerate(shards):
        with np.load(out_dir / SHARD_DIR.format(k=k) / "capture.npz") as z:
            for name in z.files:
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
                            mismatches=sorted(mismatches, key=lambda m: m["image"])[:1000])
    merged["timing"] = capture_mod._timing_summary(arrays["op_ticks"], merged)
    arrays["labels"] = np.asarray(labels[:n], np.int64)
    capture_mod.save_capture(out_dir, arrays, merged)
    for k in range(len(shards)):
        shutil.rmtree(out_dir / SHARD_DIR.format(k=k), ignore_errors=True)
    return merged
