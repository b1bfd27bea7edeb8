"""The tinyscope serial protocol: frame layout, CRC-32, COBS framing, payload codecs.

This module is the single definition of the wire format. ``firmware/app/protocol_defs.h`` is
generated from it (``python -m tinyscope.device.protocol --header firmware/app/protocol_defs.h``)
and a test checks that the committed header equals the generated one. ``docs/protocol.md``
describes the same layout for people writing their own firmware.

A frame on the wire::

    COBS( header | payload | crc32 ) 0x00

    header  = <BBHH  version, type, seq, payload length          (6 bytes, little-endian)
    crc32   = <I     CRC-32 (IEEE 802.3, as zlib.crc32) of header + payload

The host sends requests (HELLO, SET_INPUT, RUN, PING, RESET); the device answers each with
response frames carrying the request's sequence number and ends every answer with DONE or
ERROR. Nothing is sent unasked.
"""

from __future__ import annotations

import argparse
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path

import numpy as np

PROTOCOL_VERSION = 2
HEADER = struct.Struct("<BBHH")
CRC = struct.Struct("<I")
MAX_PAYLOAD = 4096  # requests (host -> device): the device's receive buffer holds one frame
MAX_FRAME = HEADER.size + MAX_PAYLOAD + CRC.size  # largest request before COBS
# Responses (device -> host) are streamed by the device through an incremental CRC and COBS
# encoder, never buffered whole, so they may use the full range of the u16 length field.
MAX_RESPONSE_PAYLOAD = 0xFFFF
MAX_RESPONSE_FRAME = HEADER.size + MAX_RESPONSE_PAYLOAD + CRC.size
SEQ_NONE = 0xFFFF  # seq of an ERROR answering a frame whose header could not be trusted
OP_NONE = 0xFFFF  # op index / op code of OUTPUT frames (not produced by an op callback)
DELIMITER = b"\x00"


class FrameType(IntEnum):
    # requests: host -> device
    HELLO = 0x01
    SET_INPUT = 0x02
    RUN = 0x03
    PING = 0x04
    RESET = 0x05
    # responses: device -> host
    INFO = 0x81
    TENSOR = 0x82
    OUTPUT = 0x83
    TIMING = 0x84
    ERROR = 0x85
    DONE = 0x86


class ErrorCode(IntEnum):
    BAD_FRAME = 1  # COBS, length or CRC check failed
    BAD_VERSION = 2  # header version is not PROTOCOL_VERSION
    UNKNOWN_TYPE = 3  # not a request type
    BAD_REQUEST = 4  # payload too short / malformed
    OUT_OF_RANGE = 5  # offset, length or op index outside the model
    TOO_LARGE = 6  # frame longer than MAX_PAYLOAD
    NO_INPUT = 7  # RUN before a complete SET_INPUT
    MODEL = 8  # the runtime refused the model at boot (e.g. arena too small)
    RUNTIME = 9  # the runtime failed while running


class RunMode(IntEnum):
    FIRST = 0  # stream the output of operator 0 (the first layer)
    ALL = 1  # stream every operator's output
    LIST = 2  # stream the operators listed in the request
    NONE = 3  # stream no intermediate tensor (OUTPUT/TIMING only)


class RunFlag(IntEnum):
    TIMING = 0x01  # send a TIMING frame after the run
    OUTPUT = 0x02  # send the model output as OUTPUT frames


# Payload layouts (all little-endian).
INFO_FIXED = struct.Struct("<HHIIIII32siIiIB")
# protocol_version, num_ops, cpu_hz, tick_hz, model_bytes, arena_bytes, arena_used,
# model_sha256, input_tensor, input_bytes, output_tensor, output_bytes, model_status
# then three length-prefixed strings (u8 length): firmware version, board, model error;
# then num_ops x OP_ENTRY.
OP_ENTRY = struct.Struct("<Hh")  # builtin op code, output tensor index
# TENSOR / OUTPUT (version 2): compact metadata, varints are unsigned LEB128 (7 bits per byte,
# least significant first, high bit = more bytes follow, at most 5 bytes for a u32), zero
# points are zigzag-encoded (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...) before LEB128:
#   uvarint op_index, uvarint builtin_op, uvarint tensor_index, uvarint offset,
#   u8 dtype, u8 ndims, uvarint dims[ndims], uvarint num_quant,
#   uvarint quantized_dimension (only if num_quant > 1: per-channel parameters),
#   f32 scales[num_quant], svarint zero_points[num_quant], then the data bytes of this chunk.
# The tensor's byte size is not sent: it is prod(dims) * DTYPE_SIZES[dtype].
TENSOR_MAX_DIMS = 6  # the runtime's TS_MAX_DIMS
VARINT_MAX = 5  # bytes of the longest uvarint (a u32)
SET_INPUT_FIXED = struct.Struct("<II")  # offset, total; then data
RUN_FIXED = struct.Struct("<BBH")  # mode, flags, count; then u16 op_index[count]
# TIMING (version 2): uvarint tick_hz, uvarint total ticks of the run, uvarint num_ops,
# uvarint ticks[num_ops].
ERROR_FIXED = struct.Struct("<H")  # code; then UTF-8 text
# DONE (version 2): u8 request type, uvarint number of frames sent before DONE.

# TFLite TensorType values (the runtime's ts_dtype_t) and their numpy types; a tensor of any
# other type cannot be streamed (its size would not follow from its shape).
DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    2: np.dtype("<i4"),
    3: np.dtype("u1"),
    4: np.dtype("<i8"),
    7: np.dtype("<i2"),
    9: np.dtype("i1"),
}
DTYPE_SIZES = [DTYPES[d].itemsize if d in DTYPES else 0 for d in range(max(DTYPES) + 1)]


class ProtocolError(Exception):
    """A frame that fails COBS, length, CRC or version checks (counted, then skipped)."""


class VersionError(ProtocolError):
    """A frame intact by its CRC, but of another protocol version (the device's firmware
    speaks another protocol: a clear mismatch, not line noise)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"protocol version {version}, expected {PROTOCOL_VERSION}")
        self.version = version


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


# ---------------------------------------------------------------- payloads


def _str(value: str) -> bytes:
    data = value.encode()[:255]
    return bytes([len(data)]) + data


def _read_str(payload: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(payload):
        raise ProtocolError("string length runs past the end of the payload")
    n = payload[pos]
    if pos + 1 + n > len(payload):
        raise ProtocolError("string runs past the end of the payload")
    return payload[pos + 1 : pos + 1 + n].decode(errors="replace"), pos + 1 + n


@dataclass(frozen=True)
class Info:
    protocol_version: int
    cpu_hz: int
    tick_hz: int
    model_bytes: int
    arena_bytes: int
    arena_used: int
    model_sha256: str
    input_tensor: int
    input_bytes: int
    output_tensor: int
    output_bytes: int
    model_status: int
    firmware_version: str
    board: str
    model_error: str
    ops: tuple[tuple[int, int], ...]  # (builtin op code, output tensor index)

    def encode(self) -> bytes:
        return (
            INFO_FIXED.pack(
                self.protocol_version,
                len(self.ops),
                self.cpu_hz,
                self.tick_hz,
                self.model_bytes,
                self.arena_bytes,
                self.arena_used,
                bytes.fromhex(self.model_sha256),
                self.input_tensor,
                self.input_bytes,
                self.output_tensor,
                self.output_bytes,
                self.model_status,
            )
            + _str(self.firmware_version)
            + _str(self.board)
            + _str(self.model_error)
            + b"".join(OP_ENTRY.pack(*op) for op in self.ops)
        )

    @classmethod
    def decode(cls, payload: bytes) -> Info:
        if len(payload) < INFO_FIXED.size:
            raise ProtocolError(f"INFO payload of {len(payload)} bytes is too short")
        f = INFO_FIXED.unpack_from(payload)
        pos = INFO_FIXED.size
        fw, pos = _read_str(payload, pos)
        board, pos = _read_str(payload, pos)
        err, pos = _read_str(payload, pos)
        num_ops = f[1]
        if pos + num_ops * OP_ENTRY.size != len(payload):
            raise ProtocolError(f"INFO lists {num_ops} ops but has {len(payload) - pos} bytes")
        ops = tuple(
            OP_ENTRY.unpack_from(payload, pos + i * OP_ENTRY.size) for i in range(num_ops)
        )
        return cls(
            protocol_version=f[0],
            cpu_hz=f[2],
            tick_hz=f[3],
            model_bytes=f[4],
            arena_bytes=f[5],
            arena_used=f[6],
            model_sha256=f[7].hex(),
            input_tensor=f[8],
            input_bytes=f[9],
            output_tensor=f[10],
            output_bytes=f[11],
            model_status=f[12],
            firmware_version=fw,
            board=board,
            model_error=err,
            ops=ops,
        )


def uvarint(value: int) -> bytes:
    """Unsigned LEB128 of ``0 <= value < 2**32``."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"uvarint {value} outside 0..2**32-1")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def svarint(value: int) -> bytes:
    """Zigzag + LEB128 of a signed 32-bit value."""
    if not -(1 << 31) <= value < 1 << 31:
        raise ValueError(f"svarint {value} outside the int32 range")
    return uvarint(((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def read_uvarint(payload: bytes, pos: int) -> tuple[int, int]:
    """The uvarint at ``pos`` and the position after it; ProtocolError if malformed."""
    value = 0
    for i in range(VARINT_MAX):
        if pos + i >= len(payload):
            raise ProtocolError("varint runs past the end of the payload")
        b = payload[pos + i]
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if value > 0xFFFFFFFF:
                raise ProtocolError(f"varint {value} does not fit 32 bits")
            return value, pos + i + 1
    raise ProtocolError(f"varint longer than {VARINT_MAX} bytes")


def read_svarint(payload: bytes, pos: int) -> tuple[int, int]:
    z, pos = read_uvarint(payload, pos)
    return (z >> 1) ^ -(z & 1), pos


@dataclass(frozen=True)
class TensorChunk:
    """One TENSOR or OUTPUT frame: a slice ``[offset, offset+len(data))`` of a tensor.

    ``total`` (the tensor's byte size) is not on the wire: it is ``prod(shape)`` times the
    size of ``dtype``; :meth:`encode` checks that it agrees. ``quantized_dimension`` is only
    sent with per-channel parameters (it is 0 otherwise).
    """

    op_index: int
    builtin_op: int
    tensor_index: int
    offset: int
    total: int
    dtype: int
    shape: tuple[int, ...]
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int
    data: bytes

    def meta(self) -> bytes:
        """The metadata that precedes the data bytes in the payload."""
        if tensor_bytes(self.dtype, self.shape) != self.total:
            raise ValueError(f"total {self.total} != {self.shape} x {self.dtype} element size")
        if len(self.scales) != len(self.zero_points):
            raise ValueError("scales and zero_points differ in length")
        if len(self.scales) <= 1 and self.quantized_dimension != 0:
            raise ValueError("quantized_dimension is 0 without per-channel parameters")
        return b"".join((
            uvarint(self.op_index), uvarint(self.builtin_op), uvarint(self.tensor_index),
            uvarint(self.offset), bytes([self.dtype, len(self.shape)]),
            *(uvarint(d) for d in self.shape), uvarint(len(self.scales)),
            uvarint(self.quantized_dimension) if len(self.scales) > 1 else b"",
            struct.pack(f"<{len(self.scales)}f", *self.scales),
            *(svarint(z) for z in self.zero_points),
        ))

    def encode(self) -> bytes:
        return self.meta() + self.data

    @classmethod
    def decode(cls, payload: bytes) -> TensorChunk:
        op, pos = read_uvarint(payload, 0)
        code, pos = read_uvarint(payload, pos)
        tidx, pos = read_uvarint(payload, pos)
        offset, pos = read_uvarint(payload, pos)
        if pos + 2 > len(payload):
            raise ProtocolError("TENSOR metadata runs past the end of the payload")
        dtype, ndims = payload[pos], payload[pos + 1]
        pos += 2
        if ndims > TENSOR_MAX_DIMS:
            raise ProtocolError(f"TENSOR with {ndims} dims (at most {TENSOR_MAX_DIMS})")
        shape = []
        for _ in range(ndims):
            d, pos = read_uvarint(payload, pos)
            shape.append(d)
        nq, pos = read_uvarint(payload, pos)
        qdim, pos = read_uvarint(payload, pos) if nq > 1 else (0, pos)
        if pos + 4 * nq > len(payload):
            raise ProtocolError("TENSOR scales run past the end of the payload")
        scales = struct.unpack_from(f"<{nq}f", payload, pos)
        pos += 4 * nq
        zps = []
        for _ in range(nq):
            z, pos = read_svarint(payload, pos)
            zps.append(z)
        if dtype >= len(DTYPE_SIZES) or not DTYPE_SIZES[dtype]:
            raise ProtocolError(f"tensor {tidx} has dtype {dtype}, which tinyscope cannot stream")
        total = tensor_bytes(dtype, shape)
        data = payload[pos:]
        if offset + len(data) > total:
            raise ProtocolError(f"TENSOR chunk [{offset}, +{len(data)}) exceeds the tensor's "
                                f"{total} bytes (shape {tuple(shape)})")
        return cls(
            op_index=op,
            builtin_op=code,
            tensor_index=tidx,
            offset=offset,
            total=total,
            dtype=dtype,
            shape=tuple(shape),
            scales=tuple(scales),
            zero_points=tuple(zps),
            quantized_dimension=qdim,
            data=bytes(data),
        )


def tensor_bytes(dtype: int, shape: Iterable[int]) -> int:
    """Byte size of a tensor of TFLite type ``dtype`` (0 if tinyscope does not know it)."""
    size = DTYPE_SIZES[dtype] if 0 <= dtype < len(DTYPE_SIZES) else 0
    return size * int(np.prod(list(shape), dtype=np.int64))


def tensor_chunks(op_index: int, builtin_op: int, tensor_index: int, dtype: int,
                  shape: tuple[int, ...], scales: tuple[float, ...],
                  zero_points: tuple[int, ...], quantized_dimension: int, data: bytes,
                  max_payload: int = MAX_RESPONSE_PAYLOAD) -> list[TensorChunk]:
    """``data`` split into TENSOR chunks exactly as the firmware does (main.c send_tensor):
    each chunk as long as fits ``max_payload`` with its own metadata."""
    chunks: list[TensorChunk] = []
    offset = 0
    while True:
        chunk = TensorChunk(op_index, builtin_op, tensor_index, offset, len(data), dtype,
                            tuple(shape), tuple(scales), tuple(zero_points),
                            quantized_dimension, b"")
        room = max_payload - len(chunk.meta())
        if room < 1:
            raise ValueError(f"tensor {tensor_index}: metadata does not fit {max_payload} bytes")
        n = min(len(data) - offset, room)
        chunks.append(replace(chunk, data=data[offset:offset + n]))
        offset += n
        if offset >= len(data):
            return chunks


@dataclass
class TensorAssembler:
    """Joins the chunks of one tensor; complains about gaps, overlaps and changed metadata."""

    first: TensorChunk
    buffer: bytearray = field(init=False)
    received: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.buffer = bytearray(self.first.total)
        self.received = 0
        self.add(self.first)

    def add(self, chunk: TensorChunk) -> None:
        f = self.first
        if (chunk.tensor_index, chunk.total, chunk.shape) != (f.tensor_index, f.total, f.shape):
            raise ProtocolError(f"chunk of tensor {chunk.tensor_index} mixed into {f.tensor_index}")
        if chunk.offset != self.received:
            raise ProtocolError(
                f"tensor {f.tensor_index}: chunk at offset {chunk.offset}, expected "
                f"{self.received} (a frame was lost)"
            )
        self.buffer[chunk.offset : chunk.offset + len(chunk.data)] = chunk.data
        self.received += len(chunk.data)

    @property
    def complete(self) -> bool:
        return self.received == self.first.total

    def array(self) -> np.ndarray:
        f = self.first
        if f.dtype not in DTYPES:
            raise ProtocolError(f"tensor {f.tensor_index} has unknown dtype {f.dtype}")
        arr = np.frombuffer(bytes(self.buffer), dtype=DTYPES[f.dtype])
        if arr.size != int(np.prod(f.shape)):
            raise ProtocolError(
                f"tensor {f.tensor_index}: {arr.size} elements do not fill shape {f.shape}"
            )
        return arr.reshape(f.shape)


def set_input_payloads(data: bytes, chunk: int = MAX_PAYLOAD - SET_INPUT_FIXED.size):
    """SET_INPUT payloads for ``data`` split into chunks of at most ``chunk`` bytes."""
    total = len(data)
    for offset in range(0, max(total, 1), chunk):
        yield SET_INPUT_FIXED.pack(offset, total) + data[offset : offset + chunk]


def run_payload(mode: RunMode, ops: Iterable[int] = (), timing: bool = True,
                output: bool = True) -> bytes:
    ops = list(ops)
    flags = (RunFlag.TIMING if timing else 0) | (RunFlag.OUTPUT if output else 0)
    return RUN_FIXED.pack(int(mode), flags, len(ops)) + struct.pack(f"<{len(ops)}H", *ops)


@dataclass(frozen=True)
class Timing:
    tick_hz: int
    total_ticks: int
    op_ticks: tuple[int, ...]

    def encode(self) -> bytes:
        return b"".join((uvarint(self.tick_hz), uvarint(self.total_ticks),
                         uvarint(len(self.op_ticks)), *(uvarint(t) for t in self.op_ticks)))

    @classmethod
    def decode(cls, payload: bytes) -> Timing:
        hz, pos = read_uvarint(payload, 0)
        total, pos = read_uvarint(payload, pos)
        n, pos = read_uvarint(payload, pos)
        if n > len(payload) - pos:
            raise ProtocolError(f"TIMING says {n} ops but has {len(payload) - pos} bytes left")
        ticks = []
        for _ in range(n):
            t, pos = read_uvarint(payload, pos)
            ticks.append(t)
        if pos != len(payload):
            raise ProtocolError(f"TIMING has {len(payload) - pos} bytes after its {n} ticks")
        return cls(hz, total, tuple(ticks))


def error_payload(code: ErrorCode, text: str) -> bytes:
    return ERROR_FIXED.pack(int(code)) + text.encode()


def decode_error(payload: bytes) -> tuple[int, str]:
    if len(payload) < ERROR_FIXED.size:
        raise ProtocolError("ERROR payload too short")
    (code,) = ERROR_FIXED.unpack_from(payload)
    return code, payload[ERROR_FIXED.size :].decode(errors="replace")


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"


def done_payload(request: int, frames: int) -> bytes:
    return bytes([request]) + uvarint(frames)


def decode_done(payload: bytes) -> tuple[int, int]:
    if not payload:
        raise ProtocolError("empty DONE payload")
    frames, pos = read_uvarint(payload, 1)
    if pos != len(payload):
        raise ProtocolError(f"DONE payload of {len(payload)} bytes, expected {pos}")
    return payload[0], frames


# ---------------------------------------------------------------- C header


def c_header() -> str:
    """The firmware's view of this module (firmware/app/protocol_defs.h)."""
    lines = [
        "/* Generated from host/tinyscope/device/protocol.py by",
        " *   python -m tinyscope.device.protocol --header firmware/app/protocol_defs.h",
        " * Do not edit; tests/device/test_protocol.py checks that it is up to date. */",
        "#ifndef TS_PROTOCOL_DEFS_H",
        "#define TS_PROTOCOL_DEFS_H",
        "",
        f"#define TSP_VERSION {PROTOCOL_VERSION}",
        f"#define TSP_HEADER_SIZE {HEADER.size} /* u8 version, u8 type, u16 seq, u16 length */",
        f"#define TSP_CRC_SIZE {CRC.size}",
        f"#define TSP_MAX_PAYLOAD {MAX_PAYLOAD} /* requests: the device's receive limit */",
        f"#define TSP_MAX_RESPONSE_PAYLOAD {MAX_RESPONSE_PAYLOAD} /* streamed, never buffered */",
        f"#define TSP_TENSOR_MAX_DIMS {TENSOR_MAX_DIMS}",
        f"#define TSP_VARINT_MAX {VARINT_MAX}",
        "/* element size by TFLite TensorType (0: cannot be streamed) */",
        f"#define TSP_DTYPE_SIZES {{{', '.join(map(str, DTYPE_SIZES))}}}",
        f"#define TSP_SEQ_NONE 0x{SEQ_NONE:04X}",
        f"#define TSP_OP_NONE 0x{OP_NONE:04X}",
        "",
    ]
    for enum, prefix in ((FrameType, "TSP_"), (ErrorCode, "TSP_ERR_"), (RunMode, "TSP_RUN_"),
                         (RunFlag, "TSP_FLAG_")):
        for member in enum:
            lines.append(f"#define {prefix}{member.name} 0x{member.value:02X}")
        lines.append("")
    for name, st in (("INFO_FIXED", INFO_FIXED), ("OP_ENTRY", OP_ENTRY),
                     ("SET_INPUT_FIXED", SET_INPUT_FIXED),
                     ("RUN_FIXED", RUN_FIXED),
                     ("ERROR_FIXED", ERROR_FIXED)):
        lines.append(f"#define TSP_{name}_SIZE {st.size} /* {st.format} */")
    lines += ["", "#endif /* TS_PROTOCOL_DEFS_H */", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--header", type=Path, required=True, help="write the C header here")
    args = parser.parse_args(argv)
    args.header.write_text(c_header())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
