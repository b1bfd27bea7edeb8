"""Verified capture: every layer of every image checked on the device by digest.

The device is bit-exact with TFLM, so for almost every image and operator the host already
knows the answer: instead of streaming every tensor, the device sends one DIGEST frame per
image (a 32-bit digest of every operator's output, docs/protocol.md) and the host compares it
with the digests of the TFLM reference's tensors, computed for the same inputs in batches on
a worker thread while the device runs. Every operator whose digest differs is fetched in full
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
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinyscope.analysis.reference import tflm_tensors
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
from tinyscope.errors import MismatchError, TinyscopeError

REFERENCE_BATCH = 32  # images per TFLM reference batch on the worker thread
MISMATCH_PREFIX = "m"  # capture.npz: m<tensor>_<image> = a mismatching tensor, in full


def reference_digests(model: bytes, inputs: np.ndarray, out_tensors: list[int]) -> np.ndarray:
    """``(len(inputs), len(out_tensors))`` uint32: the digest of each operator's output
    tensor as the TFLM reference interpreter computes it."""
    per_image = tflm_tensors(model, inputs)
    out = np.zeros((len(per_image), len(out_tensors)), np.uint32)
    for k, t in enumerate(out_tensors):
        rows = np.stack([np.ascontiguousarray(d[t]).reshape(-1) for d in per_image])
        out[:, k] = proto.tensor_digests(rows)
    return out


class ReferenceDigests:
    """TFLM digests for ``inputs``, computed in batches on one worker thread (ahead of the
    device); :meth:`get` waits for the batch holding image ``i``."""

    def __init__(self, model: bytes, inputs: np.ndarray, out_tensors: list[int],
                 batch: int = REFERENCE_BATCH) -> None:
        self.batch = batch
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tflm-digests")
        self._futures: list[Future] = [
            self._pool.submit(reference_digests, model, inputs[s:s + batch], out_tensors)
            for s in range(0, len(inputs), batch)]

    def get(self, i: int) -> np.ndarray:
        return self._futures[i // self.batch].result()[i % self.batch]

    def close(self) -> None:
        for f in self._futures:
            f.cancel()
        self._pool.shutdown(wait=True)


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


def _bank_holds(bank: Path | None, info: proto.Info, inputs: np.ndarray) -> bool:
    """True if the device booted with the input bank file ``bank`` and it holds ``inputs``."""
    if bank is None:
        return False
    if Path(bank).read_bytes() != proto.input_bank(inputs):
        raise MismatchError(f"input bank {bank} holds other inputs than the ones asked for: "
                            "write it with protocol.input_bank(inputs) and boot with it")
    if info.input_bank != len(inputs):
        raise MismatchError(f"the device reports {info.input_bank} inputs in its bank, not "
                            f"{len(inputs)}: boot the board with the input bank {bank}")
    return True


def verify_capture(port_url: str, build_dir: str | Path, out_dir: str | Path,
                   inputs: np.ndarray, labels: np.ndarray, progress: bool = True,
                   data_source: str = "", timeout: float = REQUEST_TIMEOUT,
                   retries: int = capture_mod.MAX_IMAGE_RETRIES,
                   baudrate: int = BAUDRATE, bank: Path | None = None,
                   on_image: Callable[[], None] | None = None) -> dict:
    """Verify every operator of every image of ``inputs`` on the device by digest; fetch and
    store the mismatching tensors; write RUN_DIR/capture.npz + run.json; return run.json.
    ``bank``: the input bank file the board booted with (inputs by USE_INPUT, no upload)."""
    build_dir, out_dir = Path(build_dir), Path(out_dir)
    manifest = manifest_mod.load(build_dir)
    model = manifest_mod.model_bytes(build_dir, manifest)
    ops = manifest["operators"]
    out_tensors = [int(op["outputs"][0]) for op in ops]
    shape = manifest["input"]["shape"]
    n = len(inputs)
    refs = ReferenceDigests(model, _as_input(inputs), out_tensors)
    port = open_port(port_url, baudrate)
    default = timeout == REQUEST_TIMEOUT
    dev = Device(port, timeout=timeout, run_timeout=RUN_TIMEOUT if default else timeout,
                 hello_timeout=HELLO_TIMEOUT if default else timeout)
    arrays: dict[str, np.ndarray] = {}
    dev_digests = np.zeros((n, len(ops)), np.uint32)
    ref_digests = np.zeros((n, len(ops)), np.uint32)
    ticks: list[np.ndarray] = []
    digest_ticks: list[int] = []
    mismatches: list[dict] = []
    started = time.monotonic()
    bar = None
    try:
        info = dev.hello()
        capture_mod.check_info(info, manifest, build_dir)
        if [t for _, t in info.ops] != out_tensors:
            raise MismatchError(f"the device's operators (INFO) differ from {build_dir}/"
                                "manifest.json's: flash this build")
        use_bank = _bank_holds(bank, info, _as_input(inputs))
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n, desc="verify", unit="img")
        for i in range(n):
            image = _as_input(inputs)[i]
            slot = i if use_bank else None
            res = _run_with_retry(dev, image, slot, proto.RunMode.NONE, [], retries, timing=True,
                                  output=True, digest=True)
            if res.digest is None or len(res.digest.digests) != len(ops):
                raise TinyscopeError("the device answered RUN DIGEST without a DIGEST frame of "
                                     f"{len(ops)} operators: flash a protocol "
                                     f"{proto.PROTOCOL_VERSION} firmware")
            dev_digests[i] = res.digest.digests
            ref_digests[i] = refs.get(i)
            arrays[f"input_{i}"] = image.reshape(shape)
            arrays[f"output_{i}"] = res.output
            ticks.append(np.asarray(res.timing.op_ticks, np.int64))
            digest_ticks.append(res.digest.digest_ticks)
            bad = [k for k in range(len(ops)) if dev_digests[i, k] != ref_digests[i, k]]
            if bad:  # fetch those operators' tensors in full
                full = _run_with_retry(dev, image, slot, proto.RunMode.LIST, bad, retries,
                                       timing=False, output=False, digest=True)
                arrays.update({f"{MISMATCH_PREFIX}{out_tensors[k]}_{i}":
                               full.tensors[out_tensors[k]] for k in bad})
                mismatches.append({"image": i, "ops": bad})
            if bar:
                bar.update(1)
            if on_image:
                on_image()
    finally:
        for closing in ((bar.close if bar else (lambda: None)), refs.close, port.close):
            with contextlib.suppress(Exception):
                closing()
        release_port(port_url)
    run = _run_json(port_url, build_dir, data_source, info, dev, time.monotonic() - started,
                    np.asarray(ticks, np.int64), digest_ticks, out_tensors, mismatches)
    run["inputs_from"] = "input bank (USE_INPUT)" if use_bank else "SET_INPUT"
    run["input_bank"] = info.input_bank
    arrays.update(labels=np.asarray(labels[:n], np.int64), op_ticks=np.asarray(ticks, np.int64),
                  device_digests=dev_digests, reference_digests=ref_digests)
    capture_mod.save_capture(out_dir, arrays, run)
    return run


def _run_json(port_url: str, build_dir: Path, data_source: str, info: proto.Info, dev: Device,
              seconds: float, ticks: np.ndarray, digest_ticks: list[int],
              out_tensors: list[int], mismatches: list[dict]) -> dict:
    n = len(ticks)
    counts = np.zeros(len(out_tensors), np.int64)
    for m in mismatches:
        counts[m["ops"]] += 1
    run: dict = {"capture_format": capture_mod.CAPTURE_FORMAT, "port": port_url,
                 "build": str(build_dir), "data": data_source, "layers": "verify",
                 "complete": True, "images_requested": n, "images": n,
                 "seconds": round(seconds, 3), "wire_bytes_received": dev.rx_bytes,
                 "bad_frames": dev.reader.bad_frames, "retries": 0, "reconnects": 0,
                 "device_bad_frames": dev.device_bad_frames, "stale_frames": dev.stale_frames}
    run.update(capture_mod._info_fields(info))
    run["timing"] = capture_mod._timing_summary(ticks, run)
    run["verify"] = {
        "images": n, "digest": "h = nbytes; h = h * 0x01000193 + word (mod 2^32)",
        "digest_ticks_median": int(np.median(digest_ticks)),
        "mismatched_images": len(mismatches),
        "per_op": [{"op_index": k, "tensor_index": t, "images": n,
                    "mismatches": int(counts[k])} for k, t in enumerate(out_tensors)],
        "mismatches": mismatches[:1000],
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


def verify_on_boards(elf: Path, build_dir: str | Path, out_dir: str | Path, inputs: np.ndarray,
                     labels: np.ndarray, jobs: int, state_dir: Path, data_source: str = "",
                     progress: bool = True) -> dict:
    """:func:`verify_capture` on ``jobs`` emulated boards at once (one QEMU each, its shard of
    the images in its input bank), merged into one capture in ``out_dir``; one progress bar.
    A shard whose board fails is run again on a new board."""
    from tinyscope.device import boards

    out_dir, n = Path(out_dir), len(inputs)
    shards = [s for s in np.array_split(np.arange(n), max(1, min(jobs, n))) if len(s)]
    lock = threading.Lock()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=f"verify ({len(shards)} boards)", unit="img")

    def tick() -> None:
        if bar:
            with lock:
                bar.update(1)

    board_cpu: list[float] = []

    def shard(k: int, idx: np.ndarray) -> dict:
        q = _as_input(inputs)[idx]
        for attempt in range(SHARD_ATTEMPTS):
            state = Path(state_dir) / f"job{k}-{attempt}"
            state.mkdir(parents=True, exist_ok=True)
            bank = state / "input_bank.bin"
            bank.write_bytes(proto.input_bank(q))
            try:
                with boards.emulated_board(elf, state, input_bank=bank) as b:
                    try:
                        return verify_capture(b.url, build_dir, out_dir / f"shard{k}", q,
                                              np.asarray(labels)[idx], progress=False,
                                              bank=bank, data_source=data_source, on_image=tick)
                    finally:
                        board_cpu.append(b.cpu_seconds())
            except TinyscopeError:
                if attempt == SHARD_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(shards)) as pool:
        runs = list(pool.map(shard, range(len(shards)), shards))
    if bar:
        bar.close()
    merged = _merge_shards(out_dir, shards, runs, labels, time.monotonic() - started)
    merged["board_cpu_seconds"] = round(sum(board_cpu), 3)  # the QEMUs' CPU time
    return merged


def _merge_shards(out_dir: Path, shards: list[np.ndarray], runs: list[dict],
                  labels: np.ndarray, seconds: float) -> dict:
    arrays: dict[str, np.ndarray] = {}
    stacks: dict[str, list[np.ndarray]] = {"device_digests": [], "reference_digests": [],
                                           "op_ticks": []}
    mismatches: list[dict] = []
    for k, (idx, run) in enumerate(zip(shards, runs, strict=True)):
        with np.load(out_dir / f"shard{k}" / "capture.npz") as z:
            for name in z.files:
                if name in stacks:
                    stacks[name].append(z[name])
                elif name != "labels":
                    prefix, i = name.rsplit("_", 1)
                    arrays[f"{prefix}_{int(idx[int(i)])}"] = z[name]
        mismatches += [{"image": int(idx[m["image"]]), "ops": m["ops"]}
                       for m in run["verify"]["mismatches"]]
    merged = dict(runs[0])
    n = sum(len(s) for s in shards)
    per_op = [dict(r, images=n, mismatches=sum(run["verify"]["per_op"][j]["mismatches"]
                                               for run in runs))
              for j, r in enumerate(runs[0]["verify"]["per_op"])]
    merged.update(images=n, images_requested=n, seconds=round(seconds, 3), jobs=len(shards),
                  wire_bytes_received=sum(r["wire_bytes_received"] for r in runs),
                  bad_frames=sum(r["bad_frames"] for r in runs),
                  ports=[r["port"] for r in runs])
    merged["verify"] = dict(runs[0]["verify"], images=n, per_op=per_op,
                            mismatched_images=len(mismatches),
                            mismatches=sorted(mismatches, key=lambda m: m["image"])[:1000])
    ticks = np.concatenate(stacks["op_ticks"])
    merged["timing"] = capture_mod._timing_summary(ticks, merged)
    arrays.update({k: np.concatenate(v) for k, v in stacks.items()},
                  labels=np.asarray(labels[:n], np.int64))
    # digests and ticks were concatenated shard by shard: put them in image order
    order = np.argsort(np.concatenate(shards))
    for k in stacks:
        arrays[k] = arrays[k][order]
    capture_mod.save_capture(out_dir, arrays, merged)
    for k in range(len(shards)):
        shutil.rmtree(out_dir / f"shard{k}", ignore_errors=True)
    return merged
