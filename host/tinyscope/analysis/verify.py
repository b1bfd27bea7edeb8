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
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinyscope.analysis.digest_cache import DigestCache, input_keys
from tinyscope.convert import manifest as manifest_mod
from tinyscope.device import capture as capture_mod
from tinyscope.device import pipeline
from tinyscope.device import protocol as proto
from tinyscope.device.link import (
    BAUDRATE,
    REQUEST_TIMEOUT,
    Device,
    LinkError,
    RunResult,
    close_port,
    open_port,
    release_port,
    session,
)
from tinyscope.device.pipeline import BankRuns
from tinyscope.errors import DeviceError, MismatchError, TinyscopeError

REFERENCE_BATCH = 32  # images per TFLM reference batch in the reference worker
MISMATCH_PREFIX = "m"  # capture.npz: m<tensor>_<image> = a mismatching tensor, in full


DIGEST_WORKER = "digests"  # the reference worker process that computes TFLM's digests
FIRST_BATCH = 4  # images in the first batch: the device waits for it, so keep it short


class ReferenceDigests:
    """TFLM digests for ``inputs``, computed batch by batch in the reference worker process
    (references.run_job) while the device runs; :meth:`get` waits for the batch holding
    image ``i``. A reference worker that dies raises references.ReferenceError there.
    With ``cache_root`` (analysis/digest_cache.py) the images its cache holds are not
    computed again and the computed batches are added to it."""

    def __init__(self, tflite_bytes: bytes, inputs: np.ndarray, out_tensors: list[int],
                 batch: int = REFERENCE_BATCH, cache_root: Path | None = None) -> None:
        from tinyscope.analysis import references

        cache = (DigestCache(cache_root, tflite_bytes, out_tensors)
                 if cache_root is not None else None)
        self.cache_dir = str(cache.dir) if cache is not None else None

        self._tmp = tempfile.TemporaryDirectory(prefix="tinyscope-digests-")
        work = Path(self._tmp.name)
        keys = input_keys(inputs) if cache is not None else []
        self.cached = cache.lookup(keys) if cache is not None else {}
        todo = [i for i in range(len(inputs)) if i not in self.cached]
        starts = [0, *range(min(FIRST_BATCH, len(todo)), len(todo), batch)]
        self._batches = [todo[a:b] for a, b in zip(starts, [*starts[1:], len(todo)],
                                                   strict=True) if b > a]
        self._where = {i: (k, j) for k, idx in enumerate(self._batches)
                       for j, i in enumerate(idx)}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tflm-digests")
        job = {"out_tensors": [int(t) for t in out_tensors]}

        def run(idx: list[int]) -> np.ndarray:
            d = references.run_job("tflm_digests", tflite_bytes, np.asarray(inputs[idx]),
                                   work, job, DIGEST_WORKER)
            rows = np.stack([d[t] for t in out_tensors], axis=1)
            if cache is not None:
                cache.store([keys[i] for i in idx], rows)
            return rows

        self._futures: list[Future] = [self._pool.submit(run, idx) for idx in self._batches]

    def ready(self, i: int) -> bool:
        """Whether :meth:`get` of image ``i`` would return without waiting."""
        if i in self.cached:
            return True
        k, _ = self._where[i]
        return self._futures[k].done()

    def get(self, i: int) -> np.ndarray:
        if i in self.cached:
            return self.cached[i]
        if i not in self._where:
            raise IndexError(i)
        k, j = self._where[i]
        return self._futures[k].result()[j]

    def close(self) -> None:
        for f in self._futures:
            f.cancel()
        self._pool.shutdown(wait=True)
        self._tmp.cleanup()


def _run_with_retry(dev: Device, image: np.ndarray, mode: proto.RunMode, ops: list[int],
                    retries: int, **flags: bool):
    """SET_INPUT ``image`` and RUN (an image not in the device's input bank)."""
    for attempt in range(retries + 1):
        try:
            if attempt:
                dev.hello()
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
        self.from_cache = int(prev.get("verify", {}).get("digests_from_cache", 0))

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
CHECKPOINT_SHARE = 20  # ... or at least this many times as long as the last save took


def verify_capture(port_url: str, build_dir: str | Path, out_dir: str | Path,
                   inputs: np.ndarray, labels: np.ndarray, progress: bool = True,
                   data_source: str = "", timeout: float = REQUEST_TIMEOUT,
                   retries: int = capture_mod.MAX_IMAGE_RETRIES,
                   baudrate: int = BAUDRATE, bank: Path | None = None,
                   on_image: Callable[[], None] | None = None, resume: bool = False,
                   stop: threading.Event | None = None, digest_cache: Path | None = None,
                   arrays_out: dict[str, np.ndarray] | None = None) -> dict:
    """Verify every operator of every image of ``inputs`` on the device by digest; fetch and
    store the mismatching tensors; write RUN_DIR/capture.npz + run.json; return run.json.
    ``bank``: the input bank file the board booted with (inputs by USE_INPUT, no upload).
    Complete images are saved every CHECKPOINT_SECONDS and when the capture stops (an error,
    Ctrl-C, ``stop`` set by another thread): ``resume=True`` continues from there, no image
    lost or done twice. ``digest_cache``: the TFLM digest cache's root (digest_cache.py).
    ``arrays_out``: filled with capture.npz's arrays when the capture completes."""
    build_dir, out_dir = Path(build_dir), Path(out_dir)
    manifest = manifest_mod.load(build_dir)
    tflite_bytes = manifest_mod.model_bytes(build_dir, manifest)
    out_tensors = [int(op["outputs"][0]) for op in manifest["operators"]]
    shape, n = manifest["input"]["shape"], len(inputs)
    prev_arrays, prev = (capture_mod._load_previous(out_dir, manifest, "verify", inputs)
                         if resume else ({}, {}))
    state = _VerifyState(n, len(out_tensors), prev_arrays, prev)
    q_all = _as_input(inputs)
    refs = ReferenceDigests(tflite_bytes, q_all[state.done:], out_tensors, cache_root=digest_cache)
    port = open_port(port_url, baudrate)
    dev = session(port, timeout)
    started, bar = time.monotonic(), None
    info: proto.Info | None = None
    use_bank = 0  # the first use_bank inputs come from the device's input bank
    error: BaseException | None = None

    def save(complete: bool, why: str = "") -> dict:
        run = _run_json(port_url, build_dir, data_source, info, dev,
                        state.seconds + time.monotonic() - started, state, out_tensors, n)
        run["verify"]["digest_cache"] = refs.cache_dir
        run.update(complete=complete, inputs_from=_inputs_from(use_bank, n),
                   input_bank=info.input_bank if info else 0, images_from_bank=min(use_bank, n))
        if why:
            run["error"] = why
        if state.done:
            capture_mod.save_capture(out_dir, state.npz(labels), run)
        return run

    checkpoint = _Checkpoints(lambda: save(False, "interrupted"))

    def after_image() -> None:
        if bar:
            bar.update(1)
        if on_image:
            on_image()
        checkpoint.maybe()

    try:
        info = _hello(dev, manifest, build_dir, out_tensors)
        use_bank = _bank_holds(bank, info, q_all)
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n, initial=state.done, desc="verify", unit="img")
        runs = BankRuns(dev, retries, depth=pipeline.depth_for(info.board))
        _verify_images(runs, refs, q_all, use_bank, shape, out_tensors, state, stop,
                       after_image)
    except KeyboardInterrupt:
        error = capture_mod.CaptureInterrupted("interrupted")
    except (TinyscopeError, OSError) as err:
        error = err
    finally:
        for closing in ((bar.close if bar else (lambda: None)), refs.close,
                        lambda: close_port(port)):
            with contextlib.suppress(Exception):
                closing()
        release_port(port_url)
    if error is None:
        run = save(True)
        if arrays_out is not None:
            arrays_out.update(state.npz(labels))
        return run
    save(False, str(error))
    _raise_saved(error, state.done, out_dir, port_url)


def _hello(dev: Device, manifest: dict, build_dir: Path, out_tensors: list[int]) -> proto.Info:
    """INFO, checked against the build: the same model and the same operators."""
    info = dev.hello()
    capture_mod.check_info(info, manifest, build_dir)
    if [t for _, t in info.ops] != out_tensors:
        raise MismatchError(f"the device's operators (INFO) differ from {build_dir}/"
                            "manifest.json's: flash this build")
    return info


def _raise_saved(error: BaseException, done: int, out_dir: Path, port_url: str) -> None:
    """Raise ``error`` of a stopped capture, saying how many images are saved and how to
    continue (a TinyscopeError keeps its class and fields, the message extended)."""
    saved = (f" ({done} complete images saved in {out_dir}; continue with tinyscope "
             f"capture --resume {out_dir})") if done else ""
    if isinstance(error, TinyscopeError):
        error.args = (f"{error}{saved}",)
        raise error
    raise DeviceError(f"serial port {port_url}: {error}{saved}") from error


class _Checkpoints:
    """Saves a partial capture (what a kill leaves behind) every CHECKPOINT_SECONDS, or less
    often when saving takes long (it rewrites every image so far): the host's time per
    image stays small and the device, running ahead, is not left waiting."""

    def __init__(self, save: Callable[[], object]) -> None:
        self.save, self.last, self.cost = save, time.monotonic(), 0.0

    def maybe(self) -> None:
        if time.monotonic() - self.last > max(CHECKPOINT_SECONDS, CHECKPOINT_SHARE * self.cost):
            t0 = time.monotonic()
            self.save()
            self.last = time.monotonic()
            self.cost = self.last - t0


MAX_AHEAD = 2 * REFERENCE_BATCH  # images the device may run ahead of TFLM's digests


def _verify_images(runs: BankRuns, refs: ReferenceDigests, q_all: np.ndarray, use_bank: int,
                   shape: list[int], out_tensors: list[int], state: _VerifyState,
                   stop: threading.Event | None, after_image: Callable[[], None]) -> None:
    """Images state.done.. of ``q_all``: each one's RUN as soon as the device can take it
    (the next bank image's requests queued behind it: device/pipeline.py); each completed
    (:func:`_complete_image`), in order, once TFLM's digests for it are ready, so the device
    does not wait for the reference worker (up to MAX_AHEAD images ahead). An image whose
    RUN was answered but which is not complete when the capture stops is not saved."""
    first = state.done
    pending: deque[tuple[int, RunResult]] = deque()

    def complete(everything: bool) -> None:
        while pending and (everything or len(pending) > MAX_AHEAD
                           or refs.ready(pending[0][0] - first)):
            j, res = pending.popleft()
            _complete_image(runs, q_all[j], j, j < use_bank, shape, out_tensors, res,
                            refs.get(j - first), state)
            state.from_cache += (j - first) in refs.cached
            after_image()

    for i in range(first, len(q_all)):
        if stop is not None and stop.is_set():
            raise capture_mod.CaptureInterrupted("interrupted")
        if i < use_bank:
            res = runs.run(i, range(i + 1, min(i + runs.depth, use_bank)))
        else:
            res = _run_with_retry(runs.dev, q_all[i], proto.RunMode.NONE, [], runs.retries,
                                  timing=True, output=True, digest=True)
        if res.digest is None or len(res.digest.digests) != len(out_tensors):
            raise TinyscopeError("the device answered RUN DIGEST without a DIGEST frame of "
                                 f"{len(out_tensors)} operators: flash a protocol "
                                 f"{proto.PROTOCOL_VERSION} firmware")
        pending.append((i, res))
        complete(False)
    complete(True)


def _complete_image(runs: BankRuns, image: np.ndarray, i: int, in_bank: bool,
                    shape: list[int], out_tensors: list[int], res: RunResult,
                    ref_d: np.ndarray, state: _VerifyState) -> None:
    """Image ``i``, whose RUN answered ``res``: the operators whose digest differs from
    TFLM's ``ref_d`` are fetched in full (RUN LIST, the input again from the bank or by
    SET_INPUT); all added to ``state``."""
    dev_d = np.asarray(res.digest.digests, np.uint32)
    arrays = {f"input_{i}": image.reshape(shape), f"output_{i}": res.output}
    bad = [k for k in range(len(out_tensors)) if dev_d[k] != ref_d[k]]
    if bad:  # fetch those operators' tensors in full
        flags = {"timing": False, "output": False, "digest": True}
        full = (runs.run_now(i, proto.RunMode.LIST, bad, **flags) if in_bank
                else _run_with_retry(runs.dev, image, proto.RunMode.LIST, bad, runs.retries,
                                     **flags))
        arrays.update({f"{MISMATCH_PREFIX}{out_tensors[k]}_{i}": full.tensors[out_tensors[k]]
                       for k in bad})
    state.add(i, arrays, dev_d, ref_d, np.asarray(res.timing.op_ticks, np.int64),
              res.digest.digest_ticks, bad)


def _inputs_from(use_bank: int, n: int) -> str:
    """run.json's ``inputs_from``: how the inputs reached the device."""
    if not use_bank:
        return "SET_INPUT"
    if use_bank >= n:
        return "input bank (USE_INPUT)"
    return f"input bank (USE_INPUT) for the first {use_bank}, SET_INPUT for the rest"


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
        "digests_from_cache": state.from_cache,
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
