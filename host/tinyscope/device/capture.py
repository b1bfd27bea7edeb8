"""The host side of a device session, and ``tinyscope capture``.

:class:`Device` speaks the protocol of :mod:`tinyscope.link.protocol` over any pyserial port
(a device path, a pty, ``socket://127.0.0.1:PORT`` of the emulated board, ``loop://``).
:func:`capture` runs a set of int8 images on the device and saves every streamed tensor in
``RUN_DIR/capture.npz`` + ``RUN_DIR/run.json`` (docs/capture-format.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import select
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyscope.errors import DeviceError, MismatchError, TinyscopeError
from tinyscope.fsutil import atomic_write, atomic_write_text
from tinyscope.link import protocol as P

BAUDRATE = 115200  # ignored by QEMU and USB CDC ports
HELLO_TIMEOUT = 5.0  # s for the answer to HELLO
REQUEST_TIMEOUT = 10.0  # s without a good frame while waiting for an answer
RUN_TIMEOUT = 120.0  # s without a good frame during RUN (the model computes)
AFTER_BAD_FRAME_TIMEOUT = 2.0  # s to wait for our answer once the device reported a bad frame
RECONNECT_TIMEOUT = 10.0  # s to reopen a port that went away (USB re-enumeration, socket)
RECONNECT_INTERVAL = 0.2  # s between attempts to reopen it
MAX_IMAGE_RETRIES = 3  # attempts per image after the first, on link errors (--retries)
CHECKPOINT_SECONDS = 5.0  # complete images are saved to RUN_DIR at least this often
READ_TIMEOUT = 0.05  # s per serial read call
CAPTURE_FORMAT = 1


_OP_CODE = re.compile(r"\bop code (\d+)\b")


def name_op_codes(text: str) -> str:
    """``text`` with each "op code N" of a known TFLite builtin operator as "op NAME".

    The runtime reports operators by builtin code (the firmware carries no name table), e.g.
    "unsupported op code 28 at operator 1" -> "unsupported op TANH at operator 1". Names
    come from the TFLite schema shipped with ai-edge-litert; unknown codes stay numbers.
    """
    if not _OP_CODE.search(text):
        return text
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items()
             if not k.startswith("_") and isinstance(v, int)}

    def name(m: re.Match[str]) -> str:
        op = names.get(int(m.group(1)))
        return f"op {op}" if op else m.group(0)

    return _OP_CODE.sub(name, text)


class LinkError(DeviceError):
    """A transient link failure: a timeout, lost or corrupted frames, the port went away.
    capture retries the image (up to ``MAX_IMAGE_RETRIES`` times) after one of these."""


@dataclass
class RunResult:
    """What one RUN returned."""

    tensors: dict[int, np.ndarray]  # tensor index -> array in the model's shape
    tensor_meta: dict[int, P.TensorChunk]  # first chunk (op, shape, scales, zero points)
    output: np.ndarray | None
    output_meta: P.TensorChunk | None
    timing: P.Timing | None
    frames: int


@dataclass
class Device:
    """One session with a tinyscope device on an open pyserial port."""

    port: object  # serial.Serial-like: read(n), write(b), in_waiting, timeout
    reader: P.FrameReader = field(default_factory=P.FrameReader)
    seq: int = field(default_factory=lambda: random.randrange(0, 0xFF00))
    stale_frames: int = 0  # good frames of an earlier request (skipped)
    device_bad_frames: int = 0  # ERROR BAD_FRAME/TOO_LARGE answers: the device saw garbage
    rx_bytes: int = 0  # bytes received from the device (wire bytes, delimiters included)
    timeout: float = REQUEST_TIMEOUT  # s without a good frame before a request fails
    run_timeout: float = RUN_TIMEOUT
    hello_timeout: float = HELLO_TIMEOUT
    info: P.Info | None = None
    _pending: list[P.Frame] = field(default_factory=list)
    _deadline: float | None = None  # early end of the current wait (after a device BAD_FRAME)
    _fileno: int | None = None  # the port's descriptor for _read, -1: read through pyserial

    # -- low level

    def send(self, ftype: P.FrameType, payload: bytes = b"") -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        if self.seq == P.SEQ_NONE:
            self.seq = 0
        self.port.write(P.Frame(int(ftype), self.seq, payload).encode())
        return self.seq

    def _read(self) -> bytes:
        """What the port has (up to 64 KB), after waiting up to READ_TIMEOUT for a byte.

        A POSIX serial port or a socket is read from its descriptor: one select and one read
        per call, however much arrived. pyserial's ``read(n)`` costs a select and a recv per
        TCP segment, and the emulated UART sends one byte per segment: that per-byte work took
        more CPU than QEMU itself and slowed capture down on a 2-core machine."""
        try:
            fd = self._fd()
            if fd is None:  # e.g. loop:// or rfc2217://: pyserial's own read
                waiting = getattr(self.port, "in_waiting", 0)
                data = self.port.read(max(1, min(waiting, 1 << 16)))
            else:
                if not select.select([fd], [], [], READ_TIMEOUT)[0]:
                    return b""
                try:
                    data = os.read(fd, 1 << 16)
                except BlockingIOError:
                    return b""
                if not data:
                    raise LinkError("the serial port went away (end of file: the device "
                                    "disconnected or the emulator stopped)")
            self.rx_bytes += len(data)
            return data
        except OSError as err:  # serial.SerialException is an OSError
            raise LinkError(f"the serial port went away: {err}") from err

    def _fd(self) -> int | None:
        if self._fileno is None:
            try:
                fileno = self.port.fileno() if _descriptor_port(self.port) else -1
            except (AttributeError, OSError, ValueError):
                fileno = -1
            self._fileno = fileno
        return self._fileno if self._fileno >= 0 else None

    def frames(self, timeout: float) -> Iterable[P.Frame]:
        """Good frames as they arrive; raises LinkError after ``timeout`` s without one
        (bytes that never form a good frame, e.g. endless garbage, do not count)."""
        last = time.monotonic()
        while True:
            while self._pending:
                yield self._pending.pop(0)
                last = time.monotonic()
            data = self._read()
            if data:
                self._pending.extend(self.reader.feed(data))
                if self.reader.foreign_version and not self.reader.good_frames:
                    raise MismatchError(
                        f"the device answers in protocol version {self.reader.foreign_version}"
                        f", this tinyscope speaks version {P.PROTOCOL_VERSION}: flash firmware "
                        "built by this tinyscope (make flash), or use the tinyscope release "
                        "that built the firmware"
                    )
            if not self._pending and self._deadline and time.monotonic() > self._deadline:
                raise LinkError("the device received a corrupted frame and did not answer "
                                "the request (it was damaged on the line)")
            if not self._pending and time.monotonic() - last > timeout:
                raise LinkError(
                    f"no answer from the device for {timeout:g} s (timeout; bad frames so "
                    f"far: {self.reader.bad_frames}); is the firmware running and the port "
                    "right? Try 'make flash' again, or a longer --timeout"
                )

    def request(self, ftype: P.FrameType, payload: bytes = b"",
                timeout: float | None = None) -> list[P.Frame]:
        """Send one request; return its answer frames (DONE excluded). ERROR raises."""
        timeout = self.timeout if timeout is None else timeout
        try:
            seq = self.send(ftype, payload)
        except OSError as err:
            raise LinkError(f"the serial port went away: {err}") from err
        answer: list[P.Frame] = []
        self._deadline = None
        try:
            return self._answer(ftype, seq, timeout, answer)
        finally:
            self._deadline = None

    def _answer(self, ftype: P.FrameType, seq: int, timeout: float,
                answer: list[P.Frame]) -> list[P.Frame]:
        for frame in self.frames(timeout):
            if frame.seq != seq:
                if frame.type == P.FrameType.ERROR and frame.seq == P.SEQ_NONE:
                    self.device_bad_frames += 1
                    # Ours, or junk that preceded it: our answer, if any, comes right after.
                    if not answer:
                        self._deadline = time.monotonic() + min(timeout,
                                                                AFTER_BAD_FRAME_TIMEOUT)
                else:
                    self.stale_frames += 1
                continue
            self._deadline = None
            if frame.type == P.FrameType.ERROR:
                code, text = P.decode_error(frame.payload)
                raise DeviceError(f"device answered {ftype.name} with {P.error_name(code)}: "
                                  f"{name_op_codes(text)}")
            if frame.type == P.FrameType.DONE:
                request, count = P.decode_done(frame.payload)
                if request != ftype or count != len(answer):
                    raise LinkError(
                        f"DONE for {ftype.name} says {count} frames of request 0x{request:02x}; "
                        f"received {len(answer)} (bad frames: {self.reader.bad_frames})"
                    )
                return answer
            answer.append(frame)
        raise AssertionError("unreachable")

    # -- requests

    def hello(self, timeout: float | None = None) -> P.Info:
        try:
            self.port.write(P.DELIMITER)  # ends any partial frame the device holds
        except OSError as err:
            raise LinkError(f"the serial port went away: {err}") from err
        if timeout is None:
            timeout = min(self.hello_timeout, self.timeout)
        frames = self.request(P.FrameType.HELLO, b"", timeout)
        infos = [f for f in frames if f.type == P.FrameType.INFO]
        if len(infos) != 1:
            raise DeviceError(f"HELLO answered with {[f.name for f in frames]}, expected INFO")
        self.info = P.Info.decode(infos[0].payload)
        if self.info.protocol_version != P.PROTOCOL_VERSION:
            raise MismatchError(
                f"device speaks protocol {self.info.protocol_version}, host "
                f"{P.PROTOCOL_VERSION}: rebuild and flash the firmware (make flash)"
            )
        return self.info

    def ping(self) -> None:
        self.request(P.FrameType.PING)

    def reset(self) -> None:
        self.request(P.FrameType.RESET)

    def set_input(self, data: bytes) -> None:
        for payload in P.set_input_payloads(bytes(data)):
            self.request(P.FrameType.SET_INPUT, payload)

    def run(self, mode: P.RunMode = P.RunMode.FIRST, ops: Sequence[int] = (),
            timing: bool = True, output: bool = True) -> RunResult:
        frames = self.request(P.FrameType.RUN, P.run_payload(mode, ops, timing, output),
                              self.run_timeout)
        try:
            return self._assemble(frames, output)
        except P.ProtocolError as err:  # gaps, overlaps: frames were lost on the line
            raise LinkError(f"RUN answer damaged: {err}") from err

    def _assemble(self, frames: list[P.Frame], output: bool = True) -> RunResult:
        parts: dict[int, P.TensorAssembler] = {}
        out: P.TensorAssembler | None = None
        timing_frame: P.Timing | None = None
        for frame in frames:
            if frame.type == P.FrameType.TENSOR:
                chunk = P.TensorChunk.decode(frame.payload)
                if chunk.tensor_index in parts:
                    parts[chunk.tensor_index].add(chunk)
                else:
                    parts[chunk.tensor_index] = P.TensorAssembler(chunk)
            elif frame.type == P.FrameType.OUTPUT:
                chunk = P.TensorChunk.decode(frame.payload)
                if out is None:
                    out = P.TensorAssembler(chunk)
                else:
                    out.add(chunk)
            elif frame.type == P.FrameType.TIMING:
                timing_frame = P.Timing.decode(frame.payload)
            else:
                raise DeviceError(f"unexpected {frame.name} frame in the answer to RUN")
        for asm in [*parts.values(), *([out] if out else [])]:
            if not asm.complete:
                raise LinkError(
                    f"tensor {asm.first.tensor_index}: {asm.received} of {asm.first.total} "
                    "bytes arrived"
                )
        if output and out is None:
            # Protocol 2: no OUTPUT frame when a TENSOR of this run carried the model output
            # (INFO names its tensor index).
            if self.info is None:
                self.hello()
            assert self.info is not None
            out = parts.get(self.info.output_tensor)
            if out is None:
                raise DeviceError("the device answered RUN with the OUTPUT flag without the "
                                  f"model output (tensor {self.info.output_tensor}): neither "
                                  "an OUTPUT frame nor a TENSOR frame of it")
        return RunResult(
            tensors={i: a.array() for i, a in parts.items()},
            tensor_meta={i: a.first for i, a in parts.items()},
            output=out.array() if out else None,
            output_meta=out.first if out else None,
            timing=timing_frame,
            frames=len(frames),
        )


# ---------------------------------------------------------------- ports


def resolve_port(port: str, state_dir: str | Path = "build/qemu") -> str:
    """``auto``: the running emulator's URL, else the ST-LINK's port, else the only USB port.

    A real board's debug probe (ST-LINK: USB vendor id 0x0483) exposes the firmware's UART as
    a USB serial port (/dev/ttyACM0 on Linux); it is preferred over other USB serial ports.
    """
    if port != "auto":
        return port
    from tinyscope.link import boards

    board = boards.running(state_dir)
    if board is not None:
        return board.url
    from serial.tools import list_ports

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    seen = ", ".join(
        f"{p.device} ({p.description}{f', USB {p.vid:04x}:{p.pid or 0:04x}' if p.vid else ''})"
        for p in ports) or "none"
    probe_vids = {b.usb_vid for b in boards.REAL_BOARDS.values()}
    for candidates in ([p for p in ports if p.vid in probe_vids],
                       [p for p in ports if p.vid is not None]):
        if len(candidates) == 1:
            return candidates[0].device
        if len(candidates) > 1:
            raise TinyscopeError(
                f"--port auto: several candidate serial ports "
                f"({', '.join(p.device for p in candidates)}); pick one with --port. "
                f"Ports seen: {seen}"
            )
    raise TinyscopeError(
        f"--port auto: no emulator running ({Path(state_dir) / 'port'}) and no USB serial port "
        f"of a board (ST-LINK vendor id 0483) found; ports seen: {seen}. Run 'make flash' "
        "first, plug the board in, or give --port /dev/ttyACM0"
    )


def open_port(url: str, baudrate: int = BAUDRATE):
    import serial

    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=READ_TIMEOUT)
    except (serial.SerialException, ValueError) as err:
        raise DeviceError(
            f"cannot open serial port {url}: {err}; is the board connected / the emulator "
            "running ('make flash')?"
        ) from err


def _descriptor_port(port: object) -> bool:
    """A pyserial port that reads straight from one descriptor: a POSIX serial device (or
    pty) or a socket:// URL. Others (loop://, rfc2217://, spy://) keep pyserial's read."""
    module = type(port).__module__
    return module in ("serial.serialposix", "serial.urlhandler.protocol_socket")


# ---------------------------------------------------------------- capture


def parse_layers(spec: str, num_ops: int) -> tuple[P.RunMode, list[int]]:
    if spec == "first":
        return P.RunMode.FIRST, []
    if spec == "all":
        return P.RunMode.ALL, []
    if spec == "none":
        return P.RunMode.NONE, []
    try:
        ops = sorted({int(s) for s in spec.split(",") if s.strip()})
    except ValueError:
        raise TinyscopeError(f"--layers {spec!r}: give first, all or operator indices "
                             "like 0,2,5") from None
    bad = [o for o in ops if not 0 <= o < num_ops]
    if not ops or bad:
        raise TinyscopeError(f"--layers {spec!r}: operator indices must be in 0..{num_ops - 1}")
    return P.RunMode.LIST, ops


def check_info(info: P.Info, manifest: dict, build_dir: Path) -> None:
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
    from tinyscope import manifest as manifest_mod

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
                                        "dtype": P.DTYPES[m.dtype].name,
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


def _info_fields(info: P.Info) -> dict:
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


def _cmd_capture(args: argparse.Namespace) -> int:
    from tinyscope import convert
    from tinyscope import manifest as manifest_mod

    prev: dict = {}
    if args.resume:
        run_path = Path(args.resume) / "run.json"
        try:
            prev = json.loads(run_path.read_text())
        except (OSError, ValueError) as err:
            raise TinyscopeError(f"--resume {args.resume}: cannot read {run_path} ({err}); give "
                                 "the RUN_DIR of an earlier 'tinyscope capture'") from err
        if prev.get("complete"):
            print(f"{args.resume} is complete ({prev.get('images')} images): nothing to do")
            return 0
    build = args.build or prev.get("build")
    out = args.resume or args.out
    if not build or not out:
        raise TinyscopeError("give --build BUILD_DIR and --out RUN_DIR (or --resume RUN_DIR)")
    layers = args.layers or prev.get("layers") or "first"
    n = args.n or prev.get("images_requested") or 100
    data = args.data or prev.get("data") or None
    manifest = manifest_mod.load(build)
    _, q, labels = convert.quantized_test_inputs(manifest, n, data)
    url = resolve_port(args.port, args.state_dir)
    run = capture(url, build, out, q, labels, layers, progress=not args.no_progress,
                  data_source=data or manifest.get("data", ""), timeout=args.timeout,
                  retries=args.retries, resume=bool(args.resume), baudrate=args.baud)
    timing = run.get("timing", {})
    print(f"captured {run['images']} images from {run['board']} ({url}) in {run['seconds']} s "
          f"-> {out}/capture.npz, run.json")
    if run.get("retries") or run.get("bad_frames"):
        print(f"link: {run['retries']} images retried, {run['reconnects']} reconnects, "
              f"{run['bad_frames']} bad frames received, {run['device_bad_frames']} reported "
              "by the device")
    if timing:
        print(f"median ticks per inference: {timing['total_ticks_median']} "
              f"at {timing['tick_hz']} Hz")
    return 0


def add_cli(sub) -> None:
    c = sub.add_parser(
        "capture", help="run test images on the device and save the streamed int8 tensors",
        description="Handshake with the device (its model sha256 must match BUILD/manifest.json), "
        "send each test image, run it, and save RUN_DIR/capture.npz (input_<i>, "
        "t<tensor>_<i>, output_<i>, labels) and RUN_DIR/run.json; see docs/capture-format.md. "
        "Link errors (timeouts, corrupted frames, a reset or reconnected device) retry the "
        "image; complete images are always kept, and --resume RUN_DIR continues a run.",
    )
    c.add_argument("--port", default="auto",
                   help="serial port: /dev/ttyACM0, /dev/pts/N, socket://127.0.0.1:PORT or "
                   "auto (the running emulator, else the only USB serial port)")
    c.add_argument("--build", default=None, help="the model's build dir (tinyscope convert)")
    c.add_argument("--data", default=None, help="mnist or an image folder (default: the "
                   "build's dataset)")
    c.add_argument("--n", type=int, default=None, help="number of test images (default 100)")
    c.add_argument("--layers", default=None,
                   help="first (the first layer, default), all, or operator indices like 0,2,5")
    c.add_argument("--out", default=None, help="run directory to write")
    c.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the interrupted capture in RUN_DIR (same build, data, layers)")
    c.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT,
                   help=f"seconds to wait for the device before a request fails (default "
                   f"{REQUEST_TIMEOUT:g}; RUN waits at least {RUN_TIMEOUT:g} unless given)")
    c.add_argument("--retries", type=int, default=MAX_IMAGE_RETRIES,
                   help=f"retries per image after a link error (default {MAX_IMAGE_RETRIES})")
    c.add_argument("--baud", type=int, default=BAUDRATE,
                   help=f"UART baud rate of a real board: must match the firmware's BAUD= "
                   f"(default {BAUDRATE}; ignored by the emulator and USB CDC ports)")
    c.add_argument("--state-dir", default="build/qemu", help=argparse.SUPPRESS)
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_capture)
