"""Capture: run images on a device and keep what it streams.

:func:`capture` runs a set of images (int8, or float32 for a model with a float32 input)
on the device and saves every streamed tensor in
``RUN_DIR/capture.npz`` + ``RUN_DIR/run.json`` (docs/capture-format.md).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyscope.convert import manifest as manifest_mod
from tinyscope.device import protocol as proto
from tinyscope.device.link import (
    BAUDRATE,
    REQUEST_TIMEOUT,
    Device,
    LinkError,
    RunResult,
    explain_stripped,
    name_op_codes,
    open_port,
    release_port,
    session,
)
from tinyscope.errors import DeviceError, MismatchError, TinyscopeError
from tinyscope.fsutil import atomic_write, atomic_write_text

RECONNECT_TIMEOUT = 10.0  # s to reopen a port that went away (USB re-enumeration, socket)
RECONNECT_INTERVAL = 0.2  # s between attempts to reopen it
MAX_IMAGE_RETRIES = 3  # attempts per image after the first, on link errors (--retries)
CHECKPOINT_SECONDS = 5.0  # complete images are saved to RUN_DIR at least this often
CAPTURE_FORMAT = 1


class CaptureInterrupted(TinyscopeError):
    """Ctrl-C during a capture: the complete images are saved; the message says how to go on."""

    exit_code = 130


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
        text = explain_stripped(info.model_error, build_dir / "model_int8.tflite")
        raise DeviceError(f"the firmware cannot run the model: {name_op_codes(text)}")
    dtype = manifest_mod.input_dtype(manifest)
    want_bytes = int(np.prod(manifest["input"]["shape"])) * dtype.itemsize
    if info.input_bytes != want_bytes:
        raise MismatchError(f"device input has {info.input_bytes} bytes, manifest {want_bytes} "
                            f"({dtype.name} {manifest['input']['shape']}): flash this build "
                            f"(make flash MODEL_DIR={build_dir})")


def check_input_type(manifest: dict, inputs: np.ndarray) -> None:
    """Refuse inputs of the wrong kind for the model input (float values for an int8 input
    would be truncated, int8 values for a float32 input would be read as real values)."""
    want = manifest_mod.input_dtype(manifest)
    got = next((np.asarray(image).dtype for image in inputs  # image by image: may be ragged
                if (np.asarray(image).dtype.kind == "f") != (want.kind == "f")), None)
    if got is not None:
        raise TinyscopeError(
            f"the model input is {want.name} but the inputs are {got}: give "
            + ("float32 real values (data.quantized_test_inputs gives them)" if want.kind == "f"
               else "int8 values quantized with the input scale and zero point "
               "(data.quantized_test_inputs gives them)"))


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
        want = np.asarray(inputs[i], manifest_mod.input_dtype(manifest)).reshape(shape)
        if saved is None or saved.dtype != want.dtype or saved.tobytes() != want.tobytes():
            raise TinyscopeError(f"--resume {out_dir}: image {i} differs from the one saved; "
                                 "resume with the same --data and --n as the original run")
    return arrays, prev


class Link:
    """The port and :class:`Device` of one capture; reopens the port when it went away and
    keeps the link counters across the Devices it made."""

    COUNTERS = ("retries", "reconnects", "bad_frames", "device_bad_frames", "stale_frames")

    def __init__(self, url: str, baudrate: int, timeout: float, prev: dict) -> None:
        self.url, self.baudrate, self.timeout = url, baudrate, timeout
        self.counters = {k: int(prev.get(k, 0)) for k in self.COUNTERS}
        self.port = open_port(url, baudrate)
        self.dev = session(self.port, timeout)

    def reconnect(self) -> None:
        d = self.dev
        for k, v in (("bad_frames", d.reader.bad_frames),
                     ("device_bad_frames", d.device_bad_frames),
                     ("stale_frames", d.stale_frames)):
            self.counters[k] += v
        with contextlib.suppress(Exception):
            self.port.close()
        deadline = time.monotonic() + max(RECONNECT_TIMEOUT, self.timeout)
        while True:
            try:
                self.port = open_port(self.url, self.baudrate)
                break
            except DeviceError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(RECONNECT_INTERVAL)
        self.counters["reconnects"] += 1
        self.dev = Device(self.port, timeout=d.timeout, run_timeout=d.run_timeout,
                          hello_timeout=d.hello_timeout)

    def totals(self) -> dict:
        """The counters of run.json, including the current Device's."""
        out = dict(self.counters)
        out["bad_frames"] += self.dev.reader.bad_frames
        out["device_bad_frames"] += self.dev.device_bad_frames
        out["stale_frames"] += self.dev.stale_frames
        out["bad_frames_by_kind"] = dict(self.dev.reader.bad_by_kind)
        out["wire_bytes_received"] = self.dev.rx_bytes  # since the last reconnect
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.port.close()
        release_port(self.url)


class CaptureWriter:
    """Owns RUN_DIR/capture.npz and run.json: the complete images so far (arrays, tensor
    metadata, ticks) and the run description; :meth:`save` writes both atomically."""

    def __init__(self, out_dir: Path, run: dict, prev: dict, arrays: dict[str, np.ndarray],
                 labels: np.ndarray, input_shape: list[int]) -> None:
        self.out_dir, self.run, self.prev, self.labels = out_dir, run, prev, labels
        self.input_shape = input_shape
        self.done = int(prev.get("images", 0))
        self.meta: dict[int, dict] = {t["tensor_index"]: t for t in prev.get("tensors", [])}
        self.ticks: list[np.ndarray] = list(
            arrays.pop("op_ticks", np.zeros((0, 0), np.int64)))[:self.done]
        arrays.pop("labels", None)
        self.arrays = arrays
        self.recoveries: list[dict] = list(prev.get("recoveries", []))
        self.started = self.last_save = time.monotonic()

    def add(self, i: int, image: np.ndarray, res: RunResult) -> None:
        """Image ``i`` is complete: keep its input and everything the device sent for it."""
        self.arrays[f"input_{i}"] = image.reshape(self.input_shape)
        for t, arr in res.tensors.items():
            self.arrays[f"t{t}_{i}"] = arr
            m = res.tensor_meta[t]
            self.meta.setdefault(t, {"tensor_index": t, "op_index": m.op_index,
                                     "builtin_op": m.builtin_op, "shape": list(m.shape),
                                     "dtype": proto.DTYPES[m.dtype].name, "scales": list(m.scales),
                                     "zero_points": list(m.zero_points),
                                     "quantized_dimension": m.quantized_dimension})
        if res.output is not None:
            self.arrays[f"output_{i}"] = res.output
        if res.timing is not None:
            self.ticks.append(np.asarray(res.timing.op_ticks, np.int64))
        self.done = i + 1

    def checkpoint(self, link: Link) -> None:
        """Save if the last save is older than CHECKPOINT_SECONDS."""
        if time.monotonic() - self.last_save > CHECKPOINT_SECONDS:
            self.save(link)
            self.last_save = time.monotonic()

    def save(self, link: Link) -> None:
        part = dict(self.arrays)
        if self.done:
            part["labels"] = np.asarray(self.labels[:self.done], np.int64)
        if self.ticks:
            part["op_ticks"] = np.asarray(self.ticks, np.int64)
        snapshot = dict(self.run)
        snapshot.update(images=self.done, seconds=round(time.monotonic() - self.started, 3)
                        + float(self.prev.get("seconds", 0.0)),
                        tensors=[self.meta[t] for t in sorted(self.meta)],
                        recoveries=self.recoveries[:100])
        snapshot.update(link.totals())
        if self.ticks:
            snapshot["timing"] = _timing_summary(np.asarray(self.ticks, np.int64), self.run)
        if self.done:
            save_capture(self.out_dir, part, snapshot)
        self.run.clear()
        self.run.update(snapshot)


def run_image(link: Link, i: int, image: np.ndarray, check: Callable[[proto.Info], None],
              mode: proto.RunMode, ops: list[int], retries: int,
              writer: CaptureWriter) -> RunResult:
    """Image ``i`` on the device, retried up to ``retries`` times after a link error
    (reconnecting if the port went away, HELLO again to resync and re-check the model)."""
    for attempt in range(retries + 1):
        try:
            if attempt:  # resync: the device may have reset or lost frames
                check(link.dev.hello())
            link.dev.set_input(proto.input_data(image))
            return link.dev.run(mode, ops, timing=True, output=True)
        except LinkError as err:
            link.counters["retries"] += 1 if attempt < retries else 0
            writer.recoveries.append({"image": i, "attempt": attempt + 1, "error": str(err)})
            if attempt == retries:
                raise LinkError(f"image {i}: {err}; gave up after {retries} retries "
                                "(--retries)") from err
            if "went away" in str(err):
                link.reconnect()
    raise AssertionError("unreachable")


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
    """Run ``inputs`` (``(N, ...)``, int8 or, for a float32 model input, float32: sent as
    they are) on the device; save capture.npz + run.json.

    A link error (timeout, lost or corrupted frames, the port going away, a device reset)
    during an image makes capture reconnect, handshake again (the model hash is checked
    again) and retry that image, at most ``retries`` times per image. Complete images are
    saved every ``CHECKPOINT_SECONDS`` and when capture stops; on an error the images
    captured so far stay on disk (run.json says ``complete: false`` and why) and the error
    is raised. ``resume=True`` continues the run saved in ``out_dir``. ``timeout`` bounds
    every wait for the device (RUN waits at least as long).
    """
    build_dir, out_dir = Path(build_dir), Path(out_dir)
    manifest = manifest_mod.load(build_dir)
    check_input_type(manifest, inputs)
    arrays, prev = _load_previous(out_dir, manifest, layers, inputs) if resume else ({}, {})
    run: dict = {"capture_format": CAPTURE_FORMAT, "port": port_url, "build": str(build_dir),
                 "data": data_source, "layers": layers, "complete": False,
                 "images_requested": len(inputs),
                 "input_dtype": manifest_mod.input_dtype(manifest).name}
    writer = CaptureWriter(out_dir, run, prev, arrays, labels, manifest["input"]["shape"])
    error: TinyscopeError | OSError | None = None
    link = Link(port_url, baudrate, timeout, prev)

    def check(info: proto.Info) -> None:
        check_info(info, manifest, build_dir)

    dtype = manifest_mod.input_dtype(manifest)
    bar = None
    try:
        info = link.dev.hello()
        check(info)
        mode, ops = parse_layers(layers, len(info.ops))
        run.update(_info_fields(info))
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(inputs), initial=writer.done, desc="capture", unit="img")
        while writer.done < len(inputs):
            i = writer.done
            image = np.asarray(inputs[i], dtype)
            writer.add(i, image, run_image(link, i, image, check, mode, ops, retries, writer))
            if bar:
                bar.update(1)
            writer.checkpoint(link)
        run["complete"] = True
        run.pop("error", None)
    except (TinyscopeError, OSError) as err:
        error = err
        run["error"] = str(err)
    except KeyboardInterrupt:
        run["error"] = "interrupted"
        error = CaptureInterrupted("interrupted")
    finally:
        if bar:
            bar.close()
        link.close()
        writer.save(link)
    if error is not None:
        done = writer.done
        saved = (f" ({done} complete images saved in {out_dir}; continue with tinyscope "
                 f"capture --resume {out_dir})") if done else ""
        if isinstance(error, TinyscopeError):
            raise type(error)(f"{error}{saved}") from error
        raise DeviceError(f"serial port {port_url}: {error}{saved}") from error
    return run


def _info_fields(info: proto.Info) -> dict:
    return dict(
        board=info.board, cpu_hz=info.cpu_hz, tick_hz=info.tick_hz,
        tick_unit=proto.TickUnit(info.tick_unit).name.lower()
        if info.tick_unit in proto.TickUnit._value2member_map_ else str(info.tick_unit),
        instructions_per_tick=info.instructions_per_tick_or_none(),
        firmware_version=info.firmware_version, protocol_version=info.protocol_version,
        model_sha256=info.model_sha256, model_bytes=info.model_bytes,
        arena_bytes=info.arena_bytes, arena_used=info.arena_used,
        operators=[{"index": i, "builtin_op": c, "output_tensor": t}
                   for i, (c, t) in enumerate(info.ops)],
    )


def tick_note(tick_unit: str, tick_hz: int | None, instructions_per_tick: int | None) -> str:
    """What one TIMING tick is, in words, from INFO's ``tick_unit`` fields (for people: code
    reads ``instructions_per_tick`` from run.json's timing, never this sentence)."""
    if tick_unit == "instructions":
        return f"1 tick = {instructions_per_tick} instructions (deterministic instruction clock)"
    if tick_unit == "cycles":
        return f"CPU cycles ({tick_hz} Hz)"
    return f"a timer at {tick_hz} Hz (wall time, not cycle-exact)"


def _timing_summary(t: np.ndarray, run: dict) -> dict:
    return {
        "tick_hz": run.get("tick_hz"),
        "tick_unit": run.get("tick_unit"),
        "instructions_per_tick": run.get("instructions_per_tick"),
        "tick_note": tick_note(str(run.get("tick_unit")), run.get("tick_hz"),
                               run.get("instructions_per_tick")),
        "per_op_ticks_median": [int(v) for v in np.median(t, axis=0)],
        "per_op_ticks_min": [int(v) for v in t.min(axis=0)],
        "per_op_ticks_max": [int(v) for v in t.max(axis=0)],
        "total_ticks_median": int(np.median(t.sum(axis=1))),
    }
