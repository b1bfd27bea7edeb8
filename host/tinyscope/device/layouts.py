"""The wire protocol's constants, frame and error types, and payload layouts as field lists,
with the varint and field codecs that follow them (re-exported by :mod:`protocol`).
"""

from __future__ import annotations

import struct
from enum import IntEnum

import numpy as np

PROTOCOL_VERSION = 3  # 3: DIGEST frames, RUN flag DIGEST, INFO tick_unit
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
    USE_INPUT = 0x06  # take input number `index` from the device's input bank
    # responses: device -> host
    INFO = 0x81
    TENSOR = 0x82
    OUTPUT = 0x83
    TIMING = 0x84
    ERROR = 0x85
    DONE = 0x86
    DIGEST = 0x87


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
    DIGEST = 0x04  # send a DIGEST frame: the digest of every operator's output


# Payload layouts (all little-endian): each one is defined here once, as a list of
# (field name, wire type). The Python codecs below follow these lists, and the firmware's
# encoders and decoders are X-macros generated from them (TSP_<LAYOUT>_FIELDS in
# protocol_defs.h, expanded in firmware/app/wire.c), so a field cannot be reordered on one
# side only; tests/device/test_wire.py runs the native firmware and compares its bytes with
# these codecs. Wire types: u8 u16 u32 i16 i32 (fixed size), sha256 (32 bytes), uvarint
# (unsigned LEB128: 7 bits per byte, least significant first, high bit = more bytes follow,
# at most 5 bytes for a u32) and svarint (zigzag 0, -1, 1, -2 ... -> 0, 1, 2, 3 ..., then
# LEB128).
FIXED_TYPES = {"u8": "B", "u16": "H", "u32": "I", "i16": "h", "i32": "i", "sha256": "32s"}
VARINT_TYPES = ("uvarint", "svarint")

INFO_FIELDS: tuple[tuple[str, str], ...] = (
    ("protocol_version", "u16"), ("num_ops", "u16"), ("cpu_hz", "u32"), ("tick_hz", "u32"),
    ("tick_unit", "u8"), ("instructions_per_tick", "u32"),
    ("model_bytes", "u32"), ("arena_bytes", "u32"), ("arena_used", "u32"),
    ("model_sha256", "sha256"), ("input_tensor", "i32"), ("input_bytes", "u32"),
    ("output_tensor", "i32"), ("output_bytes", "u32"), ("model_status", "u8"),
    ("input_bank", "u32"),  # inputs in the device's input bank (0: none loaded)
)
# INFO then has three length-prefixed strings (u8 length + UTF-8), then num_ops x OP_ENTRY.
INFO_STRINGS = ("firmware_version", "board", "model_error")
OP_ENTRY_FIELDS = (("builtin_op", "u16"), ("output_tensor", "i16"))
# TENSOR / OUTPUT: this head, then uvarint dims[ndims], uvarint num_quant, uvarint
# quantized_dimension (only if num_quant > 1: per-channel parameters), f32 scales[num_quant],
# svarint zero_points[num_quant], then the data bytes of this chunk. The tensor's byte size
# is not sent: it is prod(dims) * DTYPE_SIZES[dtype].
TENSOR_HEAD_FIELDS = (("op_index", "uvarint"), ("builtin_op", "uvarint"),
                      ("tensor_index", "uvarint"), ("offset", "uvarint"), ("dtype", "u8"),
                      ("ndims", "u8"))
# SET_INPUT: this head, then bytes [offset, offset + n) of the input tensor, whose elements
# are in the model input's type, little-endian: int8, or float32 (IEEE 754) when the model's
# input is float32 (a QUANTIZE to int8 is its first operator). total = the tensor's bytes
# (INFO input_bytes: elements x 1 or x 4). OUTPUT frames carry the output in its own type
# (TENSOR_HEAD dtype 9 int8, 0 float32; a float32 tensor usually has num_quant 0).
SET_INPUT_FIELDS = (("offset", "u32"), ("total", "u32"))
RUN_FIELDS = (("mode", "u8"), ("flags", "u8"), ("count", "u16"))  # then u16 op_index[count]
USE_INPUT_FIELDS = (("index", "u32"),)
# The input bank in device memory (QEMU: loaded into PSRAM at boot): this head, then
# count x input_bytes inputs back to back (each as SET_INPUT's data: int8 or float32).
BANK_FIELDS = (("magic", "u32"), ("count", "u32"), ("input_bytes", "u32"))
BANK_MAGIC = 0x42495354  # "TSIB" little-endian
TIMING_FIELDS = (("tick_hz", "uvarint"), ("total_ticks", "uvarint"), ("num_ops", "uvarint"))
# ... then uvarint ticks[num_ops]
DIGEST_FIELDS = (("num_ops", "uvarint"), ("digest_ticks", "uvarint"))
# ... then u32 digests[num_ops] (TSP_DIGEST: see tensor_digest)
ERROR_FIELDS = (("code", "u16"),)  # then UTF-8 text
DONE_FIELDS = (("request", "u8"), ("frames", "uvarint"))
LAYOUTS = {"INFO": INFO_FIELDS, "OP_ENTRY": OP_ENTRY_FIELDS, "TENSOR_HEAD": TENSOR_HEAD_FIELDS,
           "SET_INPUT": SET_INPUT_FIELDS, "RUN": RUN_FIELDS, "USE_INPUT": USE_INPUT_FIELDS,
           "BANK": BANK_FIELDS, "TIMING": TIMING_FIELDS,
           "DIGEST": DIGEST_FIELDS, "ERROR": ERROR_FIELDS, "DONE": DONE_FIELDS}


def _fixed(fields: tuple[tuple[str, str], ...]) -> struct.Struct:
    return struct.Struct("<" + "".join(FIXED_TYPES[t] for _, t in fields))


INFO_FIXED = _fixed(INFO_FIELDS)
OP_ENTRY = _fixed(OP_ENTRY_FIELDS)
SET_INPUT_FIXED = _fixed(SET_INPUT_FIELDS)
RUN_FIXED = _fixed(RUN_FIELDS)
ERROR_FIXED = _fixed(ERROR_FIELDS)
BANK_FIXED = _fixed(BANK_FIELDS)
TENSOR_MAX_DIMS = 6  # the runtime's TS_MAX_DIMS
VARINT_MAX = 5  # bytes of the longest uvarint (a u32)


class TickUnit(IntEnum):
    """What one TIMING tick is (INFO ``tick_unit``): the single statement of the unit."""

    TIMER = 0  # a timer at tick_hz: wall time only (e.g. SysTick when CYCCNT does not run)
    CYCLES = 1  # CPU cycles (a cycle counter such as DWT CYCCNT; tick_hz = cpu_hz)
    INSTRUCTIONS = 2  # executed instructions: one tick = instructions_per_tick (an emulator
    # with a deterministic instruction clock, QEMU -icount shift=0)


# The digest of a tensor (DIGEST frames): h = byte_length; for each little-endian u32 word
# w (the last zero-padded): h = h * DIGEST_MULTIPLIER + w, modulo 2**32.
DIGEST_MULTIPLIER = 0x01000193

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


def encode_fields(layout: tuple[tuple[str, str], ...], values: dict) -> bytes:
    """The bytes of ``values`` laid out as ``layout`` (one of the *_FIELDS lists)."""
    out = bytearray()
    for name, kind in layout:
        v = values[name]
        if kind == "uvarint":
            out += uvarint(int(v))
        elif kind == "svarint":
            out += svarint(int(v))
        else:
            out += struct.pack("<" + FIXED_TYPES[kind], v)
    return bytes(out)


def decode_fields(layout: tuple[tuple[str, str], ...], payload: bytes,
                  pos: int) -> tuple[dict, int]:
    """The fields of ``layout`` read from ``payload`` at ``pos``, and the position after."""
    values: dict = {}
    for name, kind in layout:
        if kind == "uvarint":
            values[name], pos = read_uvarint(payload, pos)
        elif kind == "svarint":
            values[name], pos = read_svarint(payload, pos)
        else:
            st = struct.Struct("<" + FIXED_TYPES[kind])
            if pos + st.size > len(payload):
                raise ProtocolError(f"{name} runs past the end of the payload")
            (values[name],) = st.unpack_from(payload, pos)
            pos += st.size
    return values, pos


