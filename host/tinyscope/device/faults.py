"""Fault injection for the serial link: a corrupting TCP proxy, a QMP reset, a decoder fuzzer.

- :class:`FaultProxy` sits between the emulated board's serial socket (QEMU
  ``-serial tcp:...``) and ``tinyscope capture``: it forwards bytes both ways and, at given
  byte offsets of either direction, flips a bit, drops, duplicates or inserts bytes, stalls,
  disconnects the client, or resets the board through QMP (``system_reset``).
- :func:`qmp_execute` sends one QMP command to the QEMU started by
  :mod:`tinyscope.device.boards` (its ``qmp.sock``).
- :func:`mutate_stream` / :func:`check_stream` build a byte stream of good frames with
  faults between and inside them, and check the host decoder on it: no crash, no corrupt
  frame accepted, every intact frame recovered, every bad frame counted.
  ``python -m tinyscope.device.faults --streams 1000000`` (``make fuzz``) runs it on a
  seeded random stream generator and prints the counts.

This is test machinery: nothing in the capture path imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinyscope.device import protocol as proto

UP = "up"  # host -> device
DOWN = "down"  # device -> host
KINDS = ("flip", "drop", "dup", "insert", "stall", "disconnect", "reset")
QMP_TIMEOUT = 5.0  # s for QEMU's QMP socket to answer
CONNECT_TIMEOUT = 5.0  # s for the proxy to reach the board's serial socket
PUMP_CHUNK = 4096


# ---------------------------------------------------------------- QMP


def qmp_execute(sock_path: str | Path, command: str, arguments: dict | None = None,
                timeout: float = QMP_TIMEOUT) -> dict:
    """Run one QMP command (e.g. ``system_reset``) and return its ``return`` value."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        f = s.makefile("rwb")

        def reply() -> dict:
            while True:
                line = f.readline()
                if not line:
                    raise ConnectionError(f"QMP {sock_path} closed the connection")
                msg = json.loads(line)
                if "event" in msg:
                    continue
                if "error" in msg:
                    raise RuntimeError(f"QMP {command}: {msg['error']}")
                return msg

        if "QMP" not in reply():
            raise ConnectionError(f"{sock_path} is not a QMP socket")
        for cmd, args in (("qmp_capabilities", None), (command, arguments)):
            msg = {"execute": cmd} | ({"arguments": args} if args else {})
            f.write(json.dumps(msg).encode() + b"\n")
            f.flush()
            answer = reply()
        return answer.get("return", {})


# ---------------------------------------------------------------- proxy


@dataclass(frozen=True)
class Fault:
    """At byte ``at`` of one direction's stream (counted over the proxy's lifetime):

    flip: xor ``arg`` (default 0x01) into that byte; drop: drop ``arg`` bytes (default 1);
    dup: send that byte twice; insert: send ``arg`` bytes of garbage before it (default
    b"\\x5a\\x00\\x13"); stall: stop forwarding for ``arg`` seconds; disconnect: close the
    client's connection (and the board's), the byte is lost; reset: QMP ``system_reset``.
    """

    at: int
    kind: str
    direction: str = DOWN
    arg: object = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.direction not in (UP, DOWN):
            raise ValueError(f"bad fault {self}")


@dataclass
class FaultProxy:
    """A TCP proxy ``127.0.0.1:<port>`` -> ``upstream`` that injects :class:`Fault` s.

    Use as a context manager; ``url`` is the pyserial URL to give capture. ``applied``
    lists the faults done so far, ``forwarded`` counts bytes per direction.
    ``bytes_per_s`` limits each direction to a line rate, as a real UART would (11520 for
    115200 baud 8N1: 10 bits per byte), so benchmarks can show what a real board does.
    """

    upstream: tuple[str, int]
    faults: list[Fault] = field(default_factory=list)
    qmp: Path | None = None
    applied: list[Fault] = field(default_factory=list)
    forwarded: dict[str, int] = field(default_factory=lambda: {UP: 0, DOWN: 0})
    connections: int = 0
    bytes_per_s: float | None = None

    def __post_init__(self) -> None:
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(4)
        self.port = self._listen.getsockname()[1]
        self._pending = {d: sorted((f for f in self.faults if f.direction == d),
                                   key=lambda f: f.at) for d in (UP, DOWN)}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._line = threading.local()  # per pump thread (direction): when the line is free

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        # shutdown() wakes a thread blocked in accept(); close() alone leaves it accepting
        with contextlib.suppress(OSError):
            self._listen.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listen.close()
        self._close_all()
        for t in self._threads:
            t.join(timeout=2)

    def _close_all(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listen.accept()
            except OSError:
                return
            self._close_all()  # one client at a time, like a serial port
            try:
                board = socket.create_connection(self.upstream, CONNECT_TIMEOUT)
            except OSError:
                client.close()
                continue
            for s in (client, board):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks += [client, board]
                self.connections += 1
            for src, dst, d in ((client, board, UP), (board, client, DOWN)):
                t = threading.Thread(target=self._pump, args=(src, dst, d), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(PUMP_CHUNK)
                if not data:
                    break
                out, cut = self._apply(data, direction)
                if out:
                    self._send(dst, out)
                if cut:
                    break
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _send(self, dst: socket.socket, data: bytes) -> None:
        """Forward ``data``, no faster than ``bytes_per_s`` (in slices of ~10 ms of line)."""
        if not self.bytes_per_s:
            dst.sendall(data)
            return
        step = max(1, int(self.bytes_per_s / 100))
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            now = time.monotonic()
            due = getattr(self._line, "due", now)
            if due > now:
                time.sleep(due - now)
            self._line.due = max(due, now) + len(piece) / self.bytes_per_s
            dst.sendall(piece)

    def _apply(self, data: bytes, direction: str) -> tuple[bytes, bool]:
        """The bytes to forward for ``data``, and whether to disconnect after them."""
        with self._lock:
            start = self.forwarded[direction]
            self.forwarded[direction] += len(data)
            pending = self._pending[direction]
            due = []
            while pending and pending[0].at < start + len(data):
                due.append(pending.pop(0))
        if not due:
            return data, False
        out = bytearray()
        pos = 0
        for fault in due:
            i = max(fault.at - start, pos)
            out += data[pos:i]
            pos = i
            self.applied.append(fault)
            if fault.kind == "flip":
                if i < len(data):
                    out.append(data[i] ^ int(fault.arg or 1))
                    pos = i + 1
            elif fault.kind == "drop":
                pos = min(len(data), i + int(fault.arg or 1))
            elif fault.kind == "dup":
                if i < len(data):
                    out.append(data[i])
            elif fault.kind == "insert":
                out += bytes(fault.arg or b"\x5a\x00\x13")
            elif fault.kind == "stall":
                time.sleep(float(fault.arg or 1.0))
            elif fault.kind == "disconnect":
                return bytes(out), True
            elif fault.kind == "reset":
                if self.qmp is None:
                    raise ValueError("a reset fault needs the board's QMP socket")
                qmp_execute(self.qmp, "system_reset")
        out += data[pos:]
        return bytes(out), False


# ---------------------------------------------------------------- decoder fuzzing

_HALF_ZERO = bytes(0 if i < 128 else i for i in range(256))
MUTATIONS = ("flip", "drop", "dup", "insert", "truncate", "garbage")


@dataclass
class StreamCase:
    """A stream of frames with faults, and what a correct decoder must make of it."""

    stream: bytes
    expected: list[proto.Frame]  # intact frames a decoder must recover, in order
    chunks: int  # non-empty delimiter-separated pieces: each is one good or one bad frame
    faults: list[str]
    sent: int  # frames encoded into the stream


def random_frame(rng: random.Random) -> proto.Frame:
    r = rng.random()
    if r < 0.6:
        n = rng.randrange(0, 40)
    elif r < 0.95:
        n = rng.randrange(40, 600)
    else:
        n = rng.randrange(600, proto.MAX_PAYLOAD + 1)
    payload = rng.randbytes(n)
    if rng.random() < 0.3:  # half the bytes zero: short COBS blocks
        payload = payload.translate(_HALF_ZERO)
    return proto.Frame(rng.choice(list(proto.FrameType)), rng.randrange(0x10000), payload)


def mutate_stream(frames: list[proto.Frame], ops: list[tuple[str, int, int]]) -> StreamCase:
    """Encode ``frames`` back to back; ``ops[k] = (mutation, position, value)`` corrupts
    frame k (``mutation`` ``"none"`` keeps it; ``garbage`` puts ``value % 64 + 1`` random-ish
    bytes before it). A frame is expected back iff one delimited piece of the stream is
    exactly its encoding."""
    out = bytearray()
    faults: list[str] = []
    for k, frame in enumerate(frames):
        wire = bytearray(frame.encode())
        kind, pos, value = ops[k] if k < len(ops) else ("none", 0, 0)
        if kind == "garbage":
            n = value % 64 + 1
            out += bytes((value * 131 + i * 17) & 0xFF for i in range(n))
        elif kind != "none":
            i = pos % len(wire)
            if kind == "flip":
                wire[i] ^= 1 << (value % 8)
            elif kind == "drop":
                del wire[i]
            elif kind == "dup":
                wire.insert(i, wire[i])
            elif kind == "insert":
                wire.insert(i, value & 0xFF)
            elif kind == "truncate":
                del wire[i:]
        if kind != "none":
            faults.append(f"{k}:{kind}@{pos % max(len(wire), 1)}")
        out += wire
    # What a correct decoder must return: exactly the delimited pieces that are, byte for
    # byte, the encoding of a frame that was sent (faults can also leave or rebuild one:
    # a 0x00 inserted before a frame, a truncated frame followed by a dropped code byte).
    sent = {f.encode()[:-1]: f for f in frames}
    pieces = [c for c in bytes(out).split(b"\x00")[:-1] if c]  # terminated pieces
    expected = [sent[c] for c in pieces if c in sent]
    return StreamCase(bytes(out), expected, len(pieces), faults, len(frames))


def check_stream(case: StreamCase, feed_sizes: list[int] | None = None) -> proto.FrameReader:
    """Decode ``case.stream`` (fed in pieces of ``feed_sizes``) and check the properties;
    raise AssertionError with the faults on a violation."""
    reader = proto.FrameReader()
    got: list[proto.Frame] = []
    data = case.stream
    sizes = feed_sizes or [len(data)]
    pos = 0
    i = 0
    while pos < len(data):
        n = max(1, sizes[i % len(sizes)])
        got.extend(reader.feed(data[pos : pos + n]))
        pos += n
        i += 1
    # An unterminated tail is neither good nor bad yet: the decoder keeps it buffered.
    if got != case.expected:
        missing = [f for f in case.expected if f not in got]
        extra = [f for f in got if f not in case.expected]
        raise AssertionError(f"faults {case.faults}: {len(missing)} intact frames lost, "
                             f"{len(extra)} unexpected frames accepted")
    if reader.good_frames + reader.bad_frames != case.chunks:
        raise AssertionError(f"faults {case.faults}: {reader.good_frames} good + "
                             f"{reader.bad_frames} bad != {case.chunks} frames on the wire")
    return reader


def random_case(rng: random.Random) -> StreamCase:
    frames = [random_frame(rng) for _ in range(rng.randrange(1, 9))]
    ops = []
    for _ in frames:
        if rng.random() < 0.5:
            ops.append(("none", 0, 0))
        else:
            ops.append((rng.choice(MUTATIONS), rng.randrange(1 << 16), rng.randrange(256)))
    return mutate_stream(frames, ops)


def fuzz_decoder(streams: int, seed: int = 0, report_every: int = 0) -> dict:
    """Check :func:`check_stream` on ``streams`` random cases; returns the counts."""
    rng = random.Random(seed)
    counts = {"streams": 0, "frames_sent": 0, "intact_frames": 0, "recovered_frames": 0,
              "bad_frames_counted": 0, "corrupt_frames_accepted": 0, "crashes": 0,
              "bytes": 0}
    kinds: dict[str, int] = {}
    start = time.monotonic()
    for n in range(streams):
        case = random_case(rng)
        sizes = [rng.randrange(1, 300) for _ in range(3)] if rng.random() < 0.3 else None
        try:
            reader = check_stream(case, sizes)
        except AssertionError as err:
            counts["corrupt_frames_accepted"] += 1  # or lost: both are failures
            raise AssertionError(f"stream {n} (seed {seed}): {err}") from err
        except Exception as err:  # a crash of the decoder
            counts["crashes"] += 1
            raise AssertionError(f"stream {n} (seed {seed}) crashed the decoder: {err!r}") from err
        counts["streams"] += 1
        counts["frames_sent"] += case.sent
        counts["intact_frames"] += len(case.expected)
        counts["recovered_frames"] += reader.good_frames
        counts["bad_frames_counted"] += reader.bad_frames
        counts["bytes"] += len(case.stream)
        for k, v in reader.bad_by_kind.items():
            kinds[k] = kinds.get(k, 0) + v
        if report_every and (n + 1) % report_every == 0:
            rate = (n + 1) / (time.monotonic() - start)
            print(f"  {n + 1} streams, {rate:.0f} streams/s", flush=True)
    counts["seconds"] = round(time.monotonic() - start, 1)
    counts["bad_by_kind"] = kinds
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fuzz the host frame decoder (make fuzz), or "
                                 "with --proxy serve a line-rate limited proxy to a board")
    ap.add_argument("--streams", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--proxy", metavar="HOST:PORT", help="the board's serial socket to proxy")
    ap.add_argument("--bytes-per-s", type=float, default=None,
                    help="line rate of the proxy per direction (11520 = 115200 baud 8N1)")
    args = ap.parse_args(argv)
    if args.proxy:
        host, port = args.proxy.rsplit(":", 1)
        with FaultProxy((host, int(port)), bytes_per_s=args.bytes_per_s) as proxy:
            print(f"proxy {proxy.url} -> {args.proxy} at {args.bytes_per_s or 'full'} B/s "
                  "(Ctrl-C stops)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(1)
        return 0
    print(f"host decoder fuzz: {args.streams} mutated streams, seed {args.seed}")
    counts = fuzz_decoder(args.streams, args.seed, report_every=max(1, args.streams // 10))
    rate = counts["streams"] / max(counts["seconds"], 1e-9)
    for k, v in counts.items():
        print(f"{k:>24}: {v}")
    print(f"{'throughput':>24}: {rate:.0f} streams/s, "
          f"{counts['bytes'] / max(counts['seconds'], 1e-9) / 1e6:.2f} MB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
