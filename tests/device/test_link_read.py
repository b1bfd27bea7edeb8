"""How capture reads a port: from the descriptor of a socket or POSIX serial port, all that
arrived in one call; through pyserial for other URLs; a port that closes is a LinkError."""

from __future__ import annotations

import contextlib
import os
import pty
import socket
import time

import pytest
import serial
from tinyscope.device import link
from tinyscope.device import protocol as proto


def _socket_pair_port() -> tuple[socket.socket, object]:
    srv = socket.create_server(("127.0.0.1", 0))
    port = link.open_port(f"socket://127.0.0.1:{srv.getsockname()[1]}")
    conn, _ = srv.accept()
    srv.close()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn, port


def _wait_for(port, n: int) -> None:
    """Until n bytes wait in the port's socket (peeked, not read)."""
    with socket.socket(fileno=os.dup(port.fileno())) as peek:
        peek.setblocking(False)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError):
                if len(peek.recv(1 << 16, socket.MSG_PEEK)) >= n:
                    return
            time.sleep(0.01)
    raise AssertionError(f"{n} bytes did not arrive")


def test_a_socket_burst_is_read_in_one_call():
    conn, port = _socket_pair_port()
    try:
        frames = [proto.Frame(proto.FrameType.DONE, seq, bytes([seq])).encode()
                  for seq in range(50)]
        for f in frames:  # one byte per TCP segment, as QEMU's UART sends them
            for b in f:
                conn.send(bytes([b]))
        wire = b"".join(frames)
        _wait_for(port, len(wire))
        dev = link.Device(port)
        assert dev._fd() == port.fileno()
        data = dev._read()
        assert data == wire
        assert [f.seq for f in dev.reader.feed(data)] == list(range(50))
        assert dev.rx_bytes == len(wire)
        start = time.monotonic()
        assert dev._read() == b""  # nothing more: returns after READ_TIMEOUT
        assert time.monotonic() - start < 10 * link.READ_TIMEOUT
    finally:
        conn.close()
        port.close()


def test_a_closed_socket_is_a_link_error_naming_the_cause():
    conn, port = _socket_pair_port()
    conn.sendall(b"\x00abc")
    conn.close()
    dev = link.Device(port)
    try:
        assert dev._read() == b"\x00abc"
        with pytest.raises(link.LinkError, match="the serial port went away"):
            dev._read()
    finally:
        port.close()


def test_a_pty_is_read_from_its_descriptor():
    master, slave = pty.openpty()
    port = serial.Serial(os.ttyname(slave), timeout=link.READ_TIMEOUT)
    try:
        os.write(master, b"\x00" + b"x" * 3000)
        dev = link.Device(port)
        assert dev._fd() == port.fileno()
        got = b""
        while len(got) < 3001:
            got += dev._read()
        assert got == b"\x00" + b"x" * 3000
    finally:
        port.close()
        os.close(master)
        os.close(slave)


def test_other_urls_read_through_pyserial():
    port = serial.serial_for_url("loop://", timeout=link.READ_TIMEOUT)
    try:
        dev = link.Device(port)
        assert dev._fd() is None
        frame = proto.Frame(proto.FrameType.DONE, 7, b"ok").encode()
        port.write(frame)
        got = b""
        while len(got) < len(frame):
            got += dev._read()
        assert [f.seq for f in dev.reader.feed(got)] == [7]
    finally:
        port.close()
