"""Payload codecs for each frame type, built on the field lists of :mod:`layouts`, and the
tensor digest (re-exported by :mod:`protocol`).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace

import numpy as np

from tinyscope.device.layouts import (
    BANK_FIELDS,
    BANK_MAGIC,
    DIGEST_FIELDS,
    DIGEST_MULTIPLIER,
    DONE_FIELDS,
    DTYPE_SIZES,
    DTYPES,
    ERROR_FIXED,
    INFO_FIELDS,
    INFO_FIXED,
    INFO_STRINGS,
    MAX_PAYLOAD,
    MAX_RESPONSE_PAYLOAD,
    OP_ENTRY,
    RUN_FIELDS,
    SET_INPUT_FIXED,
    TENSOR_HEAD_FIELDS,
    TENSOR_MAX_DIMS,
    TIMING_FIELDS,
    USE_INPUT_FIELDS,
    ErrorCode,
    ProtocolError,
    RunFlag,
    RunMode,
    TickUnit,
    decode_fields,
    encode_fields,
    read_svarint,
    read_uvarint,
    svarint,
    uvarint,
)

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
    tick_unit: int = TickUnit.TIMER
    instructions_per_tick: int = 0  # only with TickUnit.INSTRUCTIONS
    input_bank: int = 0  # inputs in the device's input bank

    def encode(self) -> bytes:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(num_ops=len(self.ops), model_sha256=bytes.fromhex(self.model_sha256))
        return (encode_fields(INFO_FIELDS, values)
                + b"".join(_str(values[name]) for name in INFO_STRINGS)
                + b"".join(OP_ENTRY.pack(*op) for op in self.ops))

    @classmethod
    def decode(cls, payload: bytes) -> Info:
        if len(payload) < INFO_FIXED.size:
            raise ProtocolError(f"INFO payload of {len(payload)} bytes is too short")
        values, pos = decode_fields(INFO_FIELDS, payload, 0)
        for name in INFO_STRINGS:
            values[name], pos = _read_str(payload, pos)
        num_ops = values.pop("num_ops")
        if pos + num_ops * OP_ENTRY.size != len(payload):
            raise ProtocolError(f"INFO lists {num_ops} ops but has {len(payload) - pos} bytes")
        values["ops"] = tuple(
            OP_ENTRY.unpack_from(payload, pos + i * OP_ENTRY.size) for i in range(num_ops)
        )
        values["model_sha256"] = values["model_sha256"].hex()
        return cls(**values)

    def instructions_per_tick_or_none(self) -> int | None:
        """Instructions per tick if ticks count instructions, else None."""
        return self.instructions_per_tick if self.tick_unit == TickUnit.INSTRUCTIONS else None


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
        head = {f.name: getattr(self, f.name) for f in fields(self)}
        head["ndims"] = len(self.shape)
        return b"".join((
            encode_fields(TENSOR_HEAD_FIELDS, head),
            *(uvarint(d) for d in self.shape), uvarint(len(self.scales)),
            uvarint(self.quantized_dimension) if len(self.scales) > 1 else b"",
            struct.pack(f"<{len(self.scales)}f", *self.scales),
            *(svarint(z) for z in self.zero_points),
        ))

    def encode(self) -> bytes:
        return self.meta() + self.data

    @classmethod
    def decode(cls, payload: bytes) -> TensorChunk:
        head, pos = decode_fields(TENSOR_HEAD_FIELDS, payload, 0)
        op, code, tidx = head["op_index"], head["builtin_op"], head["tensor_index"]
        offset, dtype, ndims = head["offset"], head["dtype"], head["ndims"]
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


# The element types an input tensor may have on the wire (SET_INPUT data, the input bank):
# int8, or float32 (IEEE 754, little-endian) for a model whose input edge is a QUANTIZE.
INPUT_DTYPES = (np.dtype("i1"), np.dtype("<f4"))


def input_data(values: np.ndarray) -> bytes:
    """The bytes of an input tensor on the wire: its elements in order, little-endian."""
    values = np.asarray(values)
    dtype = values.dtype.newbyteorder("<") if values.dtype.itemsize > 1 else values.dtype
    if dtype not in INPUT_DTYPES:
        raise ValueError(f"an input tensor is int8 or float32, not {values.dtype}")
    return np.ascontiguousarray(values, dtype).tobytes()


def input_bank(inputs: np.ndarray) -> bytes:
    """The input bank image for the device memory: BANK head + the inputs (int8, or float32
    for a float32 model input; any other type is taken as int8)."""
    inputs = np.asarray(inputs)
    if inputs.dtype not in INPUT_DTYPES:
        inputs = inputs.astype(np.int8)
    n = len(inputs)
    per = inputs[0].nbytes if n else 0
    head = encode_fields(BANK_FIELDS, {"magic": BANK_MAGIC, "count": n, "input_bytes": per})
    return head + input_data(inputs)


def input_bank_fit(inputs: np.ndarray, room: int) -> int:
    """How many of ``inputs`` (the first ones) an input bank of at most ``room`` bytes holds
    (its BANK head included); the others go to the device by SET_INPUT."""
    inputs = np.asarray(inputs)
    if inputs.dtype not in INPUT_DTYPES:
        inputs = inputs.astype(np.int8)
    per = inputs[0].nbytes if len(inputs) else 1
    head = len(input_bank(inputs[:0]))
    return int(max(0, min(len(inputs), (room - head) // per)))


def use_input_payload(index: int) -> bytes:
    return encode_fields(USE_INPUT_FIELDS, {"index": index})


def run_payload(mode: RunMode, ops: Iterable[int] = (), timing: bool = True,
                output: bool = True, digest: bool = False) -> bytes:
    ops = list(ops)
    flags = ((RunFlag.TIMING if timing else 0) | (RunFlag.OUTPUT if output else 0)
             | (RunFlag.DIGEST if digest else 0))
    return (encode_fields(RUN_FIELDS, {"mode": int(mode), "flags": flags, "count": len(ops)})
            + struct.pack(f"<{len(ops)}H", *ops))


@dataclass(frozen=True)
class Timing:
    tick_hz: int
    total_ticks: int
    op_ticks: tuple[int, ...]

    def encode(self) -> bytes:
        head = encode_fields(TIMING_FIELDS, {"tick_hz": self.tick_hz, "num_ops": len(
            self.op_ticks), "total_ticks": self.total_ticks})
        return head + b"".join(uvarint(t) for t in self.op_ticks)

    @classmethod
    def decode(cls, payload: bytes) -> Timing:
        head, pos = decode_fields(TIMING_FIELDS, payload, 0)
        hz, total, n = head["tick_hz"], head["total_ticks"], head["num_ops"]
        if n > len(payload) - pos:
            raise ProtocolError(f"TIMING says {n} ops but has {len(payload) - pos} bytes left")
        ticks = []
        for _ in range(n):
            t, pos = read_uvarint(payload, pos)
            ticks.append(t)
        if pos != len(payload):
            raise ProtocolError(f"TIMING has {len(payload) - pos} bytes after its {n} ticks")
        return cls(hz, total, tuple(ticks))


@dataclass(frozen=True)
class Digest:
    """One DIGEST frame: the digest of every operator's output of one RUN (in op order) and
    the ticks the device spent computing them (outside every operator's timed region)."""

    digest_ticks: int
    digests: tuple[int, ...]

    def encode(self) -> bytes:
        head = encode_fields(DIGEST_FIELDS, {"num_ops": len(self.digests),
                                             "digest_ticks": self.digest_ticks})
        return head + struct.pack(f"<{len(self.digests)}I", *self.digests)

    @classmethod
    def decode(cls, payload: bytes) -> Digest:
        head, pos = decode_fields(DIGEST_FIELDS, payload, 0)
        n = head["num_ops"]
        if len(payload) - pos != 4 * n:
            raise ProtocolError(f"DIGEST says {n} ops but has {len(payload) - pos} bytes "
                                f"for them ({4 * n} expected)")
        return cls(head["digest_ticks"], struct.unpack_from(f"<{n}I", payload, pos))


def tensor_digest(data: bytes | np.ndarray) -> int:
    """The device's digest of a tensor's bytes (firmware/app/digest.c)."""
    return int(tensor_digests(np.frombuffer(bytes(data), np.uint8)[None, :])[0])


@functools.lru_cache(maxsize=64)
def _digest_powers(n: int) -> np.ndarray:
    """``powers[k] = DIGEST_MULTIPLIER**k mod 2**32`` for k = 0..n."""
    out, p = [1], 1
    for _ in range(n):
        p = p * DIGEST_MULTIPLIER & 0xFFFFFFFF
        out.append(p)
    return np.asarray(out, np.uint64)


def tensor_digests(rows: np.ndarray) -> np.ndarray:
    """The digests of each row of ``rows`` (``(N, nbytes)``, any dtype: its bytes count),
    vectorised: Horner's rule unrolled to a dot product with the multiplier's powers."""
    rows = np.ascontiguousarray(rows)
    raw = rows.reshape(rows.shape[0], -1).view(np.uint8)
    nbytes = raw.shape[1]
    pad = -nbytes % 4
    if pad:
        raw = np.concatenate([raw, np.zeros((raw.shape[0], pad), np.uint8)], axis=1)
    words = raw.view("<u4").astype(np.uint64)
    n = words.shape[1]
    powers = _digest_powers(n)
    mask = np.uint64(0xFFFFFFFF)
    # sum of w_i * M**(n-1-i), in 64-bit with a reduction per product (no overflow)
    acc = (np.uint64(nbytes) * powers[n]) & mask
    h = np.full(words.shape[0], acc, np.uint64)
    rev = powers[:n][::-1]
    prod = (words * rev) & mask  # < 2**32 each; a row sum of n of them fits 64 bits
    h = (h + prod.sum(axis=1, dtype=np.uint64)) & mask
    return h.astype(np.uint32)


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
    return encode_fields(DONE_FIELDS, {"request": request, "frames": frames})


def decode_done(payload: bytes) -> tuple[int, int]:
    if not payload:
        raise ProtocolError("empty DONE payload")
    values, pos = decode_fields(DONE_FIELDS, payload, 0)
    if pos != len(payload):
        raise ProtocolError(f"DONE payload of {len(payload)} bytes, expected {pos}")
    return values["request"], values["frames"]


