"""Capture: run int8 images on a device and keep what it streams.

:func:`capture` runs a set of int8 images on the device and saves every streamed tensor in
``RUN_DIR/capture.npz`` + ``RUN_DIR/run.json`` (docs/capture-format.md).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np

from tinyscope.convert import manifest as manifest_mod
from tinyscope.device import protocol as proto
from tinyscope.device.link import (
    BAUDRATE,
    HELLO_TIMEOUT,
    REQUEST_TIMEOUT,
    RUN_TIMEOUT,
    Device,
    LinkError,
    name_op_codes,
    open_port,
)
from tinyscope.errors import DeviceError, MismatchError, TinyscopeError
from tinyscope.fsutil import atomic_write, atomic_write_text

RECONNECT_TIMEOUT = 10.0  # s to reopen a port that went away (USB re-enumeration, socket)
RECONNECT_INTERVAL = 0.2  # s between attempts to reopen it
MAX_IMAGE_RETRIES = 3  # attempts per image after the first, on link errors (--retries)
CHECKPOINT_SECONDS = 5.0  # complete images are saved to RUN_DIR at least this often
CAPTURE_FORMAT = 1


# ---------------------------------------------------------------- capture


def parse_layers(spec: str, num_ops: int) -> tuple[proto.RunMode, list[int]]:
    if spec == "first":
        return proto.RunMode.FIRST, []
    if spec == "all":
        return proto.RunMode.ALL, []
    if spec == "none":
        return proto.RunMode.NONE, []
    try:
        ops = sorted({int(s) for s in spec.split(",") if s.strip()})
    except ValueError:
        raise TinyscopeError(f"--layers {spec!r}: give first, all or operator indices "
                             "like 0,2,5") from None
    bad = [o for o in ops if not 0 <= o < num_ops]
    if not ops or bad:
        raise TinyscopeError(f"--layers {spec!r}: operator indices must be in 0..{num_ops - 1}")
    return proto.RunMode.LIST, ops


def check_info(info: proto.Info, manifest: dict, build_dir: Path) -> None:
    want = manifest["model_sha256"]
    if info.model_sha256 != want:
        raise MismatchError(
            f"the device runs model sha256 {info.model_sha256}, but {build_dir}/manifest.json "
            f"is sha256 {want}: flash this build (make flash MODEL_DIR={build_dir}) or pass "
            "the --build the device was flashed with"
        )
    if info.model_status != 0:
        raise DeviceError(f"the firmware cannot run the model: {name_op_codes(info.model_error)}")
    want_bytes = int(np.prod(manifest["input"]["shape"]))
    if info.input_bytes != want_bytes:
        raise MismatchError(f"device input has {info.input_bytes} bytes, manifest {want_bytes}")


def save_capture(run_dir: Path, arrays: dict[str, np.ndarray], run: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)

    def write_npz(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(run_dir / "capture.npz", write_npz)
    atomic_write_text(run_dir / "run.json", json.dumps(run, indent=2) + "\n")


def _load_previous(out_dir: Path, manifest: dict, layers: str, inputs: np.ndarray) -> tuple[
        dict[str, np.ndarray], dict]:
    """The arrays and run.json of an interrupted capture in ``out_dir``, checked to be the
    same build, layers and images as the ones asked for now."""
    run_path, npz_path = out_dir / "run.json", out_dir / "capture.npz"
    if not run_path.is_file() or not npz_path.is_file():
        raise TinyscopeError(f"--resume {out_dir}: no run.json + capture.npz there; start a new "
                             "capture with --out instead")
    try:
        prev = json.loads(run_path.read_text())
        with np.load(npz_path) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise TinyscopeError(f"--resume {out_dir}: cannot read the saved capture ({err}); "
                             "start a new capture with --out") from err
    if prev.get("model_sha256") not in (None, manifest["model_sha256"]):
        raise MismatchError(
            f"--resume {out_dir}: that run captured model sha256 {prev['model_sha256']}, the "
            f"build's manifest is sha256 {manifest['model_sha256']}; resume with the build the "
            "run was started with (--build)"
        )
    if prev.get("layers") != layers:
        raise TinyscopeError(f"--resume {out_dir}: the run streamed --layers "
                             f"{prev.get('layers')!r}, not {layers!r}; give the same --layers")
    done = int(prev.get("images", 0))
    if done > len(inputs):
        raise TinyscopeError(f"--resume {out_dir}: the run already holds {done} images, more "
                             f"than the {len(inputs)} asked for; give --n {done} or more")
    shape = manifest["input"]["shape"]
    for i in range(done):
        saved = arrays.get(f"input_{i}")
        if saved is None or not np.array_equal(saved, np.asarray(inputs[i], np.int8).reshape(
                shape)):
            raise TinyscopeError(f"--resume {out_dir}: image {i} differs from the one saved; "
                                 "resume with the same --data and --n as the original run")
    return arrays, prev


def capture(
    port_url: str,
    build_dir: str | Path,
    out_dir: str | Path,
    inputs: np.ndarray,
    labels: np.ndarray,
    layers: str = "first",
    progress: bool = True,
    data_source: str = "",
    timeout: float = REQUEST_TIMEOUT,
    retries: int = MAX_IMAGE_RETRIES,
    resume: bool = False,
    baudrate: int = BAUDRATE,
) -> dict:
    """Run ``inputs`` (int8, ``(N, ...)``) on the device; save capture.npz + run.json.

    A link error (timeout, lost or corrupted frames, the port going away, a device reset)
    during an image makes capture reconnect, handshake again (the model hash is checked
    again) and retry that image, at most ``retries`` times per image. Complete images are
    saved every ``CHECKPOINT_SECONDS`` and when capture stops; on an error the images
    captured so far stay on disk (run.json says ``complete: false`` and why) and the error
    is raised. ``resume=True`` continues the run saved in ``out_dir``. ``timeout`` bounds
    every wait for the device (RUN waits at least as long).
    """
    build_dir = Path(build_dir)
    out_dir = Path(out_dir)
    manifest = manifest_mod.load(build_dir)
    arrays: dict[str, np.ndarray] = {}
    prev: dict = {}
    if resume:
        arrays, prev = _load_previous(out_dir, manifest, layers, inputs)
    done = int(prev.get("images", 0))
    meta: dict[int, dict] = {t["tensor_index"]: t for t in prev.get("tensors", [])}
    ticks: list[np.ndarray] = list(arrays.pop("op_ticks", np.zeros((0, 0), np.int64)))[:done]
    arrays.pop("labels", None)
    run: dict = {"capture_format": CAPTURE_FORMAT, "port": port_url, "build": str(build_dir),
                 "data": data_source, "layers": layers, "complete": False,
                 "images_requested": len(inputs)}
    counters = {k: int(prev.get(k, 0)) for k in ("retries", "reconnects", "bad_frames",
                                                  "device_bad_frames", "stale_frames")}
    recoveries: list[dict] = list(prev.get("recoveries", []))
    started = time.monotonic()
    last_save = started
    error: TinyscopeError | OSError | None = None
    port = open_port(port_url, baudrate)
    default = timeout == REQUEST_TIMEOUT  # else --timeout bounds every wait
    dev = Device(port, timeout=timeout, run_timeout=RUN_TIMEOUT if default else timeout,
                 hello_timeout=HELLO_TIMEOUT if default else timeout)

    def account(d: Device) -> None:
        counters["bad_frames"] += d.reader.bad_frames
        counters["device_bad_frames"] += d.device_bad_frames
        counters["stale_frames"] += d.stale_frames

    def reconnect() -> Device:
        nonlocal port
        with contextlib.suppress(Exception):
            port.close()
        deadline = time.monotonic() + max(RECONNECT_TIMEOUT, timeout)
        while True:
            try:
                port = open_port(port_url, baudrate)
                break
            except DeviceError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(RECONNECT_INTERVAL)
        counters["reconnects"] += 1
        return Device(port, timeout=dev.timeout, run_timeout=dev.run_timeout,
                      hello_timeout=dev.hello_timeout)

    def save() -> None:
        part = dict(arrays)
        if done:
            part["labels"] = np.asarray(labels[:done], np.int64)
        if ticks:
            part["op_ticks"] = np.asarray(ticks, np.int64)
        snapshot = dict(run)
        snapshot.update(images=done, seconds=round(time.monotonic() - started, 3)
                        + float(prev.get("seconds", 0.0)),
                        tensors=[meta[t] for t in sorted(meta)], recoveries=recoveries[:100])
        snapshot.update(counters)
        snapshot["bad_frames"] += dev.reader.bad_frames
        snapshot["device_bad_frames"] += dev.device_bad_frames
        snapshot["stale_frames"] += dev.stale_frames
        snapshot["bad_frames_by_kind"] = dict(dev.reader.bad_by_kind)
        if ticks:
            snapshot["timing"] = _timing_summary(np.asarray(ticks, np.int64), run)
        if done:
            save_capture(out_dir, part, snapshot)
        run.clear()
        run.update(snapshot)

    try:
        info = dev.hello()
        check_info(info, manifest, build_dir)
        mode, ops = parse_layers(layers, len(info.ops))
        run.update(_info_fields(info))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(inputs), initial=done, desc="capture", unit="img")
        try:
            while done < len(inputs):
                i = done
                image = np.asarray(inputs[i], np.int8)
                for attempt in range(retries + 1):
                    try:
                        if attempt:  # resync: the device may have reset or lost frames
                            check_info(dev.hello(), manifest, build_dir)
                        dev.set_input(image.tobytes())
                        res = dev.run(mode, ops, timing=True, output=True)
                        break
                    except LinkError as err:
                        counters["retries"] += 1 if attempt < retries else 0
                        recoveries.append({"image": i, "attempt": attempt + 1,
                                           "error": str(err)})
                        if attempt == retries:
                            raise LinkError(f"image {i}: {err}; gave up after {retries} "
                                            f"retries (--retries)") from err
                        if "went away" in str(err):
                            account(dev)
                            dev = reconnect()
                arrays[f"input_{i}"] = image.reshape(manifest["input"]["shape"])
                for t, arr in res.tensors.items():
                    arrays[f"t{t}_{i}"] = arr
                    m = res.tensor_meta[t]
                    meta.setdefault(t, {"tensor_index": t, "op_index": m.op_index,
                                        "builtin_op": m.builtin_op, "shape": list(m.shape),
                                        "dtype": proto.DTYPES[m.dtype].name,
                                        "scales": list(m.scales),
                                        "zero_points": list(m.zero_points),
                                        "quantized_dimension": m.quantized_dimension})
                if res.output is not None:
                    arrays[f"output_{i}"] = res.output
                if res.timing is not None:
                    ticks.append(np.asarray(res.timing.op_ticks, np.int64))
                done = i + 1
                if bar:
                    bar.update(1)
                if time.monotonic() - last_save > CHECKPOINT_SECONDS:
                    save()
                    last_save = time.monotonic()
        finally:
            if bar:
                bar.close()
        run["complete"] = True
        run.pop("error", None)
    except (TinyscopeError, OSError) as err:
        error = err
        run["error"] = str(err)
    except KeyboardInterrupt:
        run["error"] = "interrupted"
        raise
    finally:
        with contextlib.suppress(Exception):
            port.close()
        save()
    if error is not None:
        saved = (f" ({done} complete images saved in {out_dir}; continue with tinyscope "
                 f"capture --resume {out_dir})") if done else ""
        if isinstance(error, TinyscopeError):
            raise type(error)(f"{error}{saved}") from error
        raise DeviceError(f"serial port {port_url}: {error}{saved}") from error
    return run


def _info_fields(info: proto.Info) -> dict:
    return dict(
        board=info.board, cpu_hz=info.cpu_hz, tick_hz=info.tick_hz,
        firmware_version=info.firmware_version, protocol_version=info.protocol_version,
        model_sha256=info.model_sha256, model_bytes=info.model_bytes,
        arena_bytes=info.arena_bytes, arena_used=info.arena_used,
        operators=[{"index": i, "builtin_op": c, "output_tensor": t}
                   for i, (c, t) in enumerate(info.ops)],
    )


def tick_note(board: str, tick_hz: int | None) -> str:
    """What one TIMING tick is on ``board`` (as the device names itself in INFO)."""
    if board.startswith("qemu"):
        return "QEMU -icount shift=0: 1 tick = 40 instructions"
    if "SysTick" in board:
        return f"SysTick ticks at {tick_hz} Hz (DWT CYCCNT not running: not cycle-exact)"
    return f"CPU cycles (DWT CYCCNT at {tick_hz} Hz)"


def _timing_summary(t: np.ndarray, run: dict) -> dict:
    return {
        "tick_hz": run.get("tick_hz"),
        "tick_note": tick_note(str(run.get("board", "")), run.get("tick_hz")),
        "per_op_ticks_median": [int(v) for v in np.median(t, axis=0)],
        "per_op_ticks_min": [int(v) for v in t.min(axis=0)],
        "per_op_ticks_max": [int(v) for v in t.max(axis=0)],
        "total_ticks_median": int(np.median(t.sum(axis=1))),
    }
