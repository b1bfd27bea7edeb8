"""The host side of a device session, and ``tinyscope capture``.

:class:`Device` speaks the protocol of :mod:`tinyscope.link.protocol` over any pyserial port
(a device path, a pty, ``socket://127.0.0.1:PORT`` of the emulated board, ``loop://``).
:func:`capture` runs a set of int8 images on the device and saves every streamed tensor in
``RUN_DIR/capture.npz`` + ``RUN_DIR/run.json`` (docs/capture-format.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyscope.errors import DeviceError, MismatchError, TinyscopeError
from tinyscope.link import protocol as P

BAUDRATE = 115200  # ignored by QEMU and USB CDC ports
HELLO_TIMEOUT = 5.0  # s for the answer to HELLO
REQUEST_TIMEOUT = 10.0  # s of silence allowed while waiting for an answer
RUN_TIMEOUT = 120.0  # s of silence allowed during RUN (the model computes)
READ_TIMEOUT = 0.05  # s per serial read call
CAPTURE_FORMAT = 1


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
    info: P.Info | None = None
    _pending: list[P.Frame] = field(default_factory=list)

    # -- low level

    def send(self, ftype: P.FrameType, payload: bytes = b"") -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        if self.seq == P.SEQ_NONE:
            self.seq = 0
        self.port.write(P.Frame(int(ftype), self.seq, payload).encode())
        return self.seq

    def frames(self, timeout: float) -> Iterable[P.Frame]:
        """Good frames as they arrive; raises DeviceError after ``timeout`` s of silence."""
        last = time.monotonic()
        while True:
            while self._pending:
                yield self._pending.pop(0)
                last = time.monotonic()
            waiting = getattr(self.port, "in_waiting", 0)
            data = self.port.read(max(1, min(waiting, 1 << 16)))
            if data:
                last = time.monotonic()
                self._pending.extend(self.reader.feed(data))
            elif time.monotonic() - last > timeout:
                raise DeviceError(
                    f"no answer from the device for {timeout:.0f} s (bad frames so far: "
                    f"{self.reader.bad_frames}); is the firmware running and the port right? "
                    "Try 'make flash' again"
                )

    def request(self, ftype: P.FrameType, payload: bytes = b"",
                timeout: float = REQUEST_TIMEOUT) -> list[P.Frame]:
        """Send one request; return its answer frames (DONE excluded). ERROR raises."""
        seq = self.send(ftype, payload)
        answer: list[P.Frame] = []
        for frame in self.frames(timeout):
            if frame.seq != seq:
                if frame.type == P.FrameType.ERROR and frame.seq == P.SEQ_NONE:
                    self.device_bad_frames += 1
                else:
                    self.stale_frames += 1
                continue
            if frame.type == P.FrameType.ERROR:
                code, text = P.decode_error(frame.payload)
                raise DeviceError(f"device answered {ftype.name} with {P.error_name(code)}: {text}")
            if frame.type == P.FrameType.DONE:
                request, count = P.decode_done(frame.payload)
                if request != ftype or count != len(answer):
                    raise DeviceError(
                        f"DONE for {ftype.name} says {count} frames of request 0x{request:02x}; "
                        f"received {len(answer)} (bad frames: {self.reader.bad_frames})"
                    )
                return answer
            answer.append(frame)
        raise AssertionError("unreachable")

    # -- requests

    def hello(self, timeout: float = HELLO_TIMEOUT) -> P.Info:
        self.port.write(P.DELIMITER)  # ends any partial frame the device holds
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
                              RUN_TIMEOUT)
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
                raise DeviceError(
                    f"tensor {asm.first.tensor_index}: {asm.received} of {asm.first.total} "
                    "bytes arrived"
                )
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


def open_port(url: str):
    import serial

    try:
        return serial.serial_for_url(url, baudrate=BAUDRATE, timeout=READ_TIMEOUT)
    except (serial.SerialException, ValueError) as err:
        raise DeviceError(
            f"cannot open serial port {url}: {err}; is the board connected / the emulator "
            "running ('make flash')?"
        ) from err


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
        raise DeviceError(f"the firmware cannot run the model: {info.model_error}")
    want_bytes = int(np.prod(manifest["input"]["shape"]))
    if info.input_bytes != want_bytes:
        raise MismatchError(f"device input has {info.input_bytes} bytes, manifest {want_bytes}")


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_capture(run_dir: Path, arrays: dict[str, np.ndarray], run: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)

    def write_npz(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)

    _atomic_write(run_dir / "capture.npz", write_npz)
    _atomic_write(run_dir / "run.json",
                  lambda tmp: tmp.write_text(json.dumps(run, indent=2) + "\n"))


def capture(
    port_url: str,
    build_dir: str | Path,
    out_dir: str | Path,
    inputs: np.ndarray,
    labels: np.ndarray,
    layers: str = "first",
    progress: bool = True,
    data_source: str = "",
) -> dict:
    """Run ``inputs`` (int8, ``(N, ...)``) on the device; save capture.npz + run.json.

    On an error after some images, the images captured so far are saved (run.json says
    ``complete: false`` and why), then the error is raised.
    """
    from tinyscope import manifest as manifest_mod

    build_dir = Path(build_dir)
    out_dir = Path(out_dir)
    manifest = manifest_mod.load(build_dir)
    arrays: dict[str, np.ndarray] = {}
    timings: list[list[int]] = []
    total_ticks: list[int] = []
    run: dict = {"capture_format": CAPTURE_FORMAT, "port": port_url, "build": str(build_dir),
                 "data": data_source, "layers": layers, "complete": False}
    started = time.monotonic()
    port = open_port(port_url)
    dev = Device(port)
    meta: dict[int, dict] = {}
    done = 0
    error: TinyscopeError | OSError | None = None
    try:
        info = dev.hello()
        check_info(info, manifest, build_dir)
        mode, ops = parse_layers(layers, len(info.ops))
        run.update(
            board=info.board, cpu_hz=info.cpu_hz, tick_hz=info.tick_hz,
            firmware_version=info.firmware_version, protocol_version=info.protocol_version,
            model_sha256=info.model_sha256, model_bytes=info.model_bytes,
            arena_bytes=info.arena_bytes, arena_used=info.arena_used,
            operators=[{"index": i, "builtin_op": c, "output_tensor": t}
                       for i, (c, t) in enumerate(info.ops)],
        )
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(inputs), desc="capture", unit="img")
        try:
            for i, image in enumerate(inputs):
                image = np.asarray(image, np.int8)
                dev.set_input(image.tobytes())
                res = dev.run(mode, ops, timing=True, output=True)
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
                    timings.append(list(res.timing.op_ticks))
                    total_ticks.append(res.timing.total_ticks)
                done = i + 1
                if bar:
                    bar.update(1)
        finally:
            if bar:
                bar.close()
        run["complete"] = True
    except (TinyscopeError, OSError) as err:
        error = err
        run["error"] = str(err)
    except KeyboardInterrupt:
        run["error"] = "interrupted"
        raise
    finally:
        port.close()
        if done:
            arrays["labels"] = np.asarray(labels[:done], np.int64)
            run["tensors"] = [meta[t] for t in sorted(meta)]
        run.update(
            images=done,
            seconds=round(time.monotonic() - started, 3),
            bad_frames=dev.reader.bad_frames,
            device_bad_frames=dev.device_bad_frames,
            stale_frames=dev.stale_frames,
        )
        if timings:
            t = np.asarray(timings, np.int64)
            run["timing"] = {
                "tick_hz": run.get("tick_hz"),
                "tick_note": "QEMU -icount shift=0: 1 tick = 40 instructions"
                if str(run.get("board", "")).startswith("qemu") else "",
                "per_op_ticks_median": [int(v) for v in np.median(t, axis=0)],
                "per_op_ticks_min": [int(v) for v in t.min(axis=0)],
                "per_op_ticks_max": [int(v) for v in t.max(axis=0)],
                "total_ticks_median": int(np.median(total_ticks)),
            }
        if done:
            save_capture(out_dir, arrays, run)
    if error is not None:
        saved = f" ({done} complete images saved in {out_dir})" if done else ""
        if isinstance(error, TinyscopeError):
            raise type(error)(f"{error}{saved}") from error
        raise DeviceError(f"serial port {port_url}: {error}{saved}") from error
    return run


def _cmd_capture(args: argparse.Namespace) -> int:
    from tinyscope import convert
    from tinyscope import manifest as manifest_mod

    manifest = manifest_mod.load(args.build)
    _, q, labels = convert.quantized_test_inputs(manifest, args.n, args.data)
    url = resolve_port(args.port, args.state_dir)
    run = capture(url, args.build, args.out, q, labels, args.layers,
                  progress=not args.no_progress, data_source=args.data or manifest.get("data", ""))
    timing = run.get("timing", {})
    print(f"captured {run['images']} images from {run['board']} ({url}) in {run['seconds']} s "
          f"-> {args.out}/capture.npz, run.json")
    if timing:
        print(f"median ticks per inference: {timing['total_ticks_median']} "
              f"at {timing['tick_hz']} Hz")
    return 0


def add_cli(sub) -> None:
    c = sub.add_parser(
        "capture", help="run test images on the device and save the streamed int8 tensors",
        description="Handshake with the device (its model sha256 must match BUILD/manifest.json), "
        "send each test image, run it, and save RUN_DIR/capture.npz (input_<i>, "
        "t<tensor>_<i>, output_<i>, labels) and RUN_DIR/run.json; see docs/capture-format.md.",
    )
    c.add_argument("--port", default="auto",
                   help="serial port: /dev/ttyACM0, /dev/pts/N, socket://127.0.0.1:PORT or "
                   "auto (the running emulator, else the only USB serial port)")
    c.add_argument("--build", required=True, help="the model's build dir (tinyscope convert)")
    c.add_argument("--data", default=None, help="mnist or an image folder (default: the "
                   "build's dataset)")
    c.add_argument("--n", type=int, default=100, help="number of test images (default 100)")
    c.add_argument("--layers", default="first",
                   help="first (the first layer), all, or operator indices like 0,2,5")
    c.add_argument("--out", required=True, help="run directory to write")
    c.add_argument("--state-dir", default="build/qemu", help=argparse.SUPPRESS)
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_capture)
