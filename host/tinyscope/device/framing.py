"""Frames on the wire: COBS, CRC-32, one frame's codec and the resynchronising reader
(re-exported by :mod:`protocol`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from tinyscope.device.layouts import (
    CRC,
    DELIMITER,
    HEADER,
    MAX_PAYLOAD,
    MAX_RESPONSE_FRAME,
    MAX_RESPONSE_PAYLOAD,
    PROTOCOL_VERSION,
    FrameType,
    ProtocolError,
    VersionError,
)

# ---------------------------------------------------------------- COBS and frames


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result holds no 0x00 byte.

    Each zero-free run is sent as blocks of at most 254 bytes, each preceded by a code
    byte: ``len + 1`` for a block followed by an (implied) zero, ``0xFF`` for a full block
    without one. This is the same algorithm as the firmware's streaming encoder.
    """
    out = bytearray()
    for seg in bytes(data).split(b"\x00"):
        pos = 0
        while len(seg) - pos >= 254:
            out.append(0xFF)
            out += seg[pos : pos + 254]
            pos += 254
        out.append(len(seg) - pos + 1)
        out += seg[pos:]
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ProtocolError("COBS: zero byte inside a frame")
        end = i + code
        if end > n:
            raise ProtocolError("COBS: block runs past the end of the frame")
        out += data[i + 1 : end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes = b""
    version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        """The bytes on the wire, including the trailing delimiter."""
        limit = MAX_RESPONSE_PAYLOAD if self.type & 0x80 else MAX_PAYLOAD
        if len(self.payload) > limit:
            raise ValueError(f"payload of {len(self.payload)} bytes > {limit}, the limit of "
                             f"{'responses' if self.type & 0x80 else 'requests (MAX_PAYLOAD)'}")
        body = HEADER.pack(self.version, self.type, self.seq, len(self.payload)) + self.payload
        return cobs_encode(body + CRC.pack(crc32(body))) + DELIMITER

    @property
    def name(self) -> str:
        try:
            return FrameType(self.type).name
        except ValueError:
            return f"0x{self.type:02x}"


def decode_frame(raw: bytes) -> Frame:
    """Decode one COBS-encoded frame (without its delimiter); raise ProtocolError if bad."""
    body = cobs_decode(raw)
    if len(body) < HEADER.size + CRC.size:
        raise ProtocolError(f"frame of {len(body)} bytes is shorter than header + CRC")
    (crc,) = CRC.unpack_from(body, len(body) - CRC.size)
    body = body[: -CRC.size]
    if crc32(body) != crc:
        raise ProtocolError(f"CRC mismatch (got 0x{crc:08x}, computed 0x{crc32(body):08x})")
    version, ftype, seq, length = HEADER.unpack_from(body)
    if length != len(body) - HEADER.size:
        raise ProtocolError(f"length field {length} != payload size {len(body) - HEADER.size}")
    if version != PROTOCOL_VERSION:
        raise VersionError(version)
    return Frame(ftype, seq, bytes(body[HEADER.size :]), version)


@dataclass
class FrameReader:
    """Splits a byte stream into frames; bad frames are counted and skipped (resync at 0x00).

    Feed bytes with :meth:`feed`; it yields every good frame completed by them. Frames
    longer than ``max_frame`` encoded bytes are dropped as bad without being buffered.
    ``bad_by_kind`` counts the bad frames by what failed (``cobs``, ``short``, ``crc``,
    ``length``, ``version``, ``too_long``); ``foreign_version`` is the version of the last
    CRC-intact frame of another protocol version (0 if none).
    """

    max_frame: int = MAX_RESPONSE_FRAME + MAX_RESPONSE_FRAME // 254 + 2
    bad_frames: int = 0
    good_frames: int = 0
    last_error: str = ""
    errors: list[str] = field(default_factory=list)
    bad_by_kind: dict[str, int] = field(default_factory=dict)
    foreign_version: int = 0
    _buf: bytearray = field(default_factory=bytearray)
    _overflow: bool = False

    def feed(self, data: bytes) -> Iterator[Frame]:
        start = 0
        while start < len(data):
            end = data.find(0, start)
            if end < 0:
                self._append(data[start:])
                return
            self._append(data[start:end])
            frame = self._finish()
            if frame is not None:
                yield frame
            start = end + 1

    def _append(self, chunk: bytes) -> None:
        if self._overflow:
            return
        if len(self._buf) + len(chunk) > self.max_frame:
            self._overflow = True
            self._buf.clear()
            return
        self._buf += chunk

    def _finish(self) -> Frame | None:
        raw, overflow = bytes(self._buf), self._overflow
        self._buf.clear()
        self._overflow = False
        if overflow:
            return self._bad(f"frame longer than {self.max_frame} bytes", "too_long")
        if not raw:
            return None  # empty frame: two delimiters in a row (used to flush)
        try:
            frame = decode_frame(raw)
        except VersionError as err:
            self.foreign_version = err.version
            return self._bad(str(err), "version")
        except ProtocolError as err:
            return self._bad(str(err), _error_kind(str(err)))
        self.good_frames += 1
        return frame

    def _bad(self, why: str, kind: str) -> None:
        self.bad_frames += 1
        self.bad_by_kind[kind] = self.bad_by_kind.get(kind, 0) + 1
        self.last_error = why
        if len(self.errors) < 100:
            self.errors.append(why)
        return None


def _error_kind(message: str) -> str:
    for prefix, kind in (("COBS", "cobs"), ("CRC", "crc"), ("length", "length")):
        if message.startswith(prefix):
            return kind
    return "short"
