"""A session with a tinyscope device over one serial port.

:class:`Device` speaks the protocol of :mod:`tinyscope.device.protocol` over any pyserial port
(a device path, a pty, ``socket://127.0.0.1:PORT`` of the emulated board, ``loop://``);
:func:`open_port` opens one. :mod:`tinyscope.device.capture` runs images through a Device.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import select
import socket
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyscope.device import protocol as proto
from tinyscope.errors import DeviceError, MismatchError

BAUDRATE = 115200  # ignored by QEMU and USB CDC ports
HELLO_TIMEOUT = 5.0  # s for the answer to HELLO
REQUEST_TIMEOUT = 10.0  # s without a good frame while waiting for an answer
RUN_TIMEOUT = 120.0  # s without a good frame during RUN (the model computes)
AFTER_BAD_FRAME_TIMEOUT = 2.0  # s to wait for our answer once the device reported a bad frame
READ_TIMEOUT = 0.05  # s per serial read call
_OP_CODE = re.compile(r"\bop code (\d+)\b")
_OP_LINE = re.compile(r"operator (\d+): (.*)")  # the runtime's "operator N: reason"
# What a runtime built without its message texts (-DTS_STRIP_MESSAGES, the firmware's default)
# puts after "operator N " / "tensor N " in its error: TS_STRIPPED_MARK of
# firmware/runtime/include/ts_runtime.h (tests/runtime/test_errors.py checks they agree).
STRIPPED_MARK = "(TS_STRIP_MESSAGES)"


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


def explain_stripped(text: str, model: Path | None = None) -> str:
    """``text``, a device error, with the runtime's own message where the firmware keeps none.

    A firmware built without message texts says only the status and where, e.g.
    "TS_ERR_UNSUPPORTED: operator 1 (TS_STRIP_MESSAGES)". The native runner runs the same C
    runtime with its messages: its init of the device's ``model`` (``tinyscope-run --plan``)
    gives the text ("unsupported op GELU at operator 1"), which replaces the place holder.
    Without a model or a runner, say where the text is."""
    if STRIPPED_MARK not in text:
        return text
    status = text.partition(": ")[0] if ": " in text else ""
    bare = text.replace(STRIPPED_MARK, "").rstrip()
    if model is None or not model.is_file():
        return (f"{bare} (the firmware carries no message texts: tinyscope run/capture name "
                "the reason from the model's build directory, or build the firmware with "
                "make MESSAGES=1)")
    from tinyscope.convert import check
    from tinyscope.errors import TinyscopeError

    try:
        code, msg = check.run_runner(check.ensure_runner(), ["--plan", str(model)],
                                     "naming the device's error")
    except TinyscopeError as err:
        return (f"{bare} (the firmware carries no message texts and the native runner that "
                f"has them is unavailable: {err}; build the firmware with make MESSAGES=1)")
    if code == 0:
        return (f"{bare} (the firmware carries no message texts; the native runtime accepts "
                f"{model}: is the device flashed with it?)")
    m = _OP_LINE.match(msg)
    if code == 1 and m:  # the operator's name and the numbers behind it, from the graph
        try:
            msg = check.explain(model.read_bytes(), int(m.group(1)), m.group(2)).describe()
        except TinyscopeError:
            pass
    return f"{status}: {msg}" if status else msg


class LinkError(DeviceError):
    """A transient link failure: a timeout, lost or corrupted frames, the port went away.
    capture retries the image (up to ``capture.MAX_IMAGE_RETRIES`` times) after one of these."""


@dataclass
class RunResult:
    """What one RUN returned."""

    tensors: dict[int, np.ndarray]  # tensor index -> array in the model's shape
    tensor_meta: dict[int, proto.TensorChunk]  # first chunk (op, shape, scales, zero points)
    output: np.ndarray | None
    output_meta: proto.TensorChunk | None
    timing: proto.Timing | None
    frames: int
    digest: proto.Digest | None = None  # with digest=True: every operator's output digest


@dataclass
class Device:
    """One session with a tinyscope device on an open pyserial port."""

    port: object  # serial.Serial-like: read(n), write(b), in_waiting, timeout
    reader: proto.FrameReader = field(default_factory=proto.FrameReader)
    seq: int = field(default_factory=lambda: random.randrange(0, 0xFF00))
    stale_frames: int = 0  # good frames of an earlier request (skipped)
    device_bad_frames: int = 0  # ERROR BAD_FRAME/TOO_LARGE answers: the device saw garbage
    rx_bytes: int = 0  # bytes received from the device (wire bytes, delimiters included)
    timeout: float = REQUEST_TIMEOUT  # s without a good frame before a request fails
    run_timeout: float = RUN_TIMEOUT
    hello_timeout: float = HELLO_TIMEOUT
    info: proto.Info | None = None
    _pending: list[proto.Frame] = field(default_factory=list)
    _deadline: float | None = None  # early end of the current wait (after a device BAD_FRAME)
    _fileno: int | None = None  # the port's descriptor for _read, -1: read through pyserial
    # s to sleep once bytes are there, before reading them: the device sends its answer ~1
    # byte per TCP segment (QEMU), and waking up for each costs more host CPU than the rest
    # of the image's work; set while the device has the next request queued
    # (device/pipeline.py), so no one waits for it
    read_pause: float = 0.0

    # -- low level

    def send(self, ftype: proto.FrameType, payload: bytes = b"") -> int:
        seq = self._next_seq()
        self.port.write(proto.Frame(int(ftype), seq, payload).encode())
        return seq

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        if self.seq == proto.SEQ_NONE:
            self.seq = 0
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
                if self.read_pause:  # the answer has begun: let more of it arrive
                    time.sleep(self.read_pause)
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

    def frames(self, timeout: float) -> Iterable[proto.Frame]:
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
                        f", this tinyscope speaks version {proto.PROTOCOL_VERSION}: flash firmware "
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

    def request(self, ftype: proto.FrameType, payload: bytes = b"",
                timeout: float | None = None) -> list[proto.Frame]:
        """Send one request; return its answer frames (DONE excluded). ERROR raises."""
        timeout = self.timeout if timeout is None else timeout
        try:
            seq = self.send(ftype, payload)
        except OSError as err:
            raise LinkError(f"the serial port went away: {err}") from err
        answer: list[proto.Frame] = []
        self._deadline = None
        try:
            return self._answer(ftype, seq, timeout, answer)
        finally:
            self._deadline = None

    def _answer(self, ftype: proto.FrameType, seq: int, timeout: float,
                answer: list[proto.Frame]) -> list[proto.Frame]:
        for frame in self.frames(timeout):
            if frame.seq != seq:
                if frame.type == proto.FrameType.ERROR and frame.seq == proto.SEQ_NONE:
                    self.device_bad_frames += 1
                    # Ours, or junk that preceded it: our answer, if any, comes right after.
                    if not answer:
                        self._deadline = time.monotonic() + min(timeout,
                                                                AFTER_BAD_FRAME_TIMEOUT)
                else:
                    self.stale_frames += 1
                continue
            self._deadline = None
            if frame.type == proto.FrameType.ERROR:
                code, text = proto.decode_error(frame.payload)
                raise DeviceError(f"device answered {ftype.name} with {proto.error_name(code)}: "
                                  f"{name_op_codes(explain_stripped(text))}")
            if frame.type == proto.FrameType.DONE:
                request, count = proto.decode_done(frame.payload)
                if request != ftype or count != len(answer):
                    raise LinkError(
                        f"DONE for {ftype.name} says {count} frames of request 0x{request:02x}; "
                        f"received {len(answer)} (bad frames: {self.reader.bad_frames})"
                    )
                return answer
            answer.append(frame)
        raise AssertionError("unreachable")

    # -- requests

    def hello(self, timeout: float | None = None) -> proto.Info:
        try:
            self.port.write(proto.DELIMITER)  # ends any partial frame the device holds
        except OSError as err:
            raise LinkError(f"the serial port went away: {err}") from err
        if timeout is None:
            timeout = min(self.hello_timeout, self.timeout)
        frames = self.request(proto.FrameType.HELLO, b"", timeout)
        infos = [f for f in frames if f.type == proto.FrameType.INFO]
        if len(infos) != 1:
            raise DeviceError(f"HELLO answered with {[f.name for f in frames]}, expected INFO")
        self.info = proto.Info.decode(infos[0].payload)
        if self.info.protocol_version != proto.PROTOCOL_VERSION:
            raise MismatchError(
                f"device speaks protocol {self.info.protocol_version}, host "
                f"{proto.PROTOCOL_VERSION}: rebuild and flash the firmware (make flash)"
            )
        return self.info

    def ping(self) -> None:
        self.request(proto.FrameType.PING)

    def reset(self) -> None:
        self.request(proto.FrameType.RESET)

    def use_input(self, index: int) -> None:
        """Input ``index`` of the device's input bank becomes the input (no upload)."""
        self.request(proto.FrameType.USE_INPUT, proto.use_input_payload(index))

    def set_input(self, data: bytes) -> None:
        for payload in proto.set_input_payloads(bytes(data)):
            self.request(proto.FrameType.SET_INPUT, payload)

    def run(self, mode: proto.RunMode = proto.RunMode.FIRST, ops: Sequence[int] = (),
            timing: bool = True, output: bool = True, digest: bool = False) -> RunResult:
        frames = self.request(proto.FrameType.RUN,
                              proto.run_payload(mode, ops, timing, output, digest),
                              self.run_timeout)
        try:
            return self._assemble(frames, output)
        except proto.ProtocolError as err:  # gaps, overlaps: frames were lost on the line
            raise LinkError(f"RUN answer damaged: {err}") from err

    def run_from_bank(self, index: int, mode: proto.RunMode = proto.RunMode.NONE,
                      ops: Sequence[int] = (), timing: bool = True, output: bool = True,
                      digest: bool = False) -> RunResult:
        """USE_INPUT ``index`` and RUN sent back to back, then both answers read: one round
        trip per image instead of two (the device serves requests in order)."""
        seqs = self.send_from_bank(index, mode, ops, timing, output, digest)
        return self.finish_from_bank(seqs, output)

    def send_from_bank(self, index: int, mode: proto.RunMode = proto.RunMode.NONE,
                       ops: Sequence[int] = (), timing: bool = True, output: bool = True,
                       digest: bool = False) -> tuple[int, int]:
        """Send USE_INPUT ``index`` and RUN without reading their answers; returns their
        ``seq`` s for :meth:`finish_from_bank`. The device serves requests one after the
        other and reads the next only after it has sent the whole answer of the previous one,
        so the requests of the next image may be queued on the link while this one runs
        (device/pipeline.py); the answers must then be read in the order sent."""
        seqs = (self._next_seq(), self._next_seq())
        try:  # one write: one wake-up of the device's side of the link, not two
            self.port.write(
                proto.Frame(int(proto.FrameType.USE_INPUT), seqs[0],
                            proto.use_input_payload(index)).encode()
                + proto.Frame(int(proto.FrameType.RUN), seqs[1],
                              proto.run_payload(mode, ops, timing, output, digest)).encode())
            return seqs
        except OSError as err:
            raise LinkError(f"the serial port went away: {err}") from err

    def finish_from_bank(self, seqs: tuple[int, int], output: bool = True) -> RunResult:
        """Read the answers of :meth:`send_from_bank`'s requests ``seqs``."""
        use, run = seqs
        self._deadline = None
        try:
            self._answer(proto.FrameType.USE_INPUT, use, self.timeout, [])
            frames = self._answer(proto.FrameType.RUN, run, self.run_timeout, [])
        finally:
            self._deadline = None
        try:
            return self._assemble(frames, output)
        except proto.ProtocolError as err:
            raise LinkError(f"RUN answer damaged: {err}") from err

    def _assemble(self, frames: list[proto.Frame], output: bool = True) -> RunResult:
        parts: dict[int, proto.TensorAssembler] = {}
        out: proto.TensorAssembler | None = None
        timing_frame: proto.Timing | None = None
        digest: proto.Digest | None = None
        for frame in frames:
            if frame.type == proto.FrameType.TENSOR:
                chunk = proto.TensorChunk.decode(frame.payload)
                if chunk.tensor_index in parts:
                    parts[chunk.tensor_index].add(chunk)
                else:
                    parts[chunk.tensor_index] = proto.TensorAssembler(chunk)
            elif frame.type == proto.FrameType.OUTPUT:
                chunk = proto.TensorChunk.decode(frame.payload)
                if out is None:
                    out = proto.TensorAssembler(chunk)
                else:
                    out.add(chunk)
            elif frame.type == proto.FrameType.TIMING:
                timing_frame = proto.Timing.decode(frame.payload)
            elif frame.type == proto.FrameType.DIGEST:
                digest = proto.Digest.decode(frame.payload)
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
            digest=digest,
        )


LOCK_DIR = Path(tempfile.gettempdir()) / "tinyscope-port-locks"
_LOCKS: dict[str, object] = {}  # url -> the open lock file this process holds


def lock_port(url: str) -> None:
    """Take the per-port lock of ``url`` for this process (a device path or socket:// URL):
    a second tinyscope on a port in use fails at once and names the process holding it,
    instead of waiting for answers the other one reads. Released by :func:`release_port`
    or when this process ends."""
    if url in _LOCKS or not (url.startswith(("socket://", "/dev/"))):
        return
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    path = LOCK_DIR / (re.sub(r"[^A-Za-z0-9_.-]+", "_", url) + ".lock")
    fh = path.open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise DeviceError(f"serial port {url} is in use by {holder} (lock {path}): wait for "
                          "that capture to finish or stop it; one port, one capture") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"tinyscope pid {os.getpid()}")
    fh.flush()
    _LOCKS[url] = fh


def release_port(url: str) -> None:
    fh = _LOCKS.pop(url, None)
    if fh is not None:
        fh.close()  # type: ignore[attr-defined]


def session(port, timeout: float = REQUEST_TIMEOUT) -> Device:
    """A :class:`Device` on ``port``: the default timeouts (a RUN and the boot's HELLO may
    take longer than a request), or ``timeout`` bounding every wait when one is given."""
    default = timeout == REQUEST_TIMEOUT
    return Device(port, timeout=timeout, run_timeout=RUN_TIMEOUT if default else timeout,
                  hello_timeout=HELLO_TIMEOUT if default else timeout)


def open_port(url: str, baudrate: int = BAUDRATE):
    import serial

    lock_port(url)
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=READ_TIMEOUT)
    except (serial.SerialException, ValueError) as err:
        raise DeviceError(
            f"cannot open serial port {url}: {err}; is the board connected / the emulator "
            "running ('make flash')?"
        ) from err


def close_port(port) -> None:
    """Close ``port``. A ``socket://`` port is closed without pyserial's 0.3 s sleep after
    closing ("give the server some time" for a quick reconnect, which QEMU's listening
    socket does not need): every verified capture paid it, ~4 % of a 300-image run."""
    sock = getattr(port, "_socket", None)
    if type(port).__module__ != "serial.urlhandler.protocol_socket" or sock is None:
        port.close()
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    port._socket = None
    port.is_open = False


def _descriptor_port(port: object) -> bool:
    """A pyserial port that reads straight from one descriptor: a POSIX serial device (or
    pty) or a socket:// URL. Others (loop://, rfc2217://, spy://) keep pyserial's read."""
    module = type(port).__module__
    return module in ("serial.serialposix", "serial.urlhandler.protocol_socket")

