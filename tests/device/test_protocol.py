"""Protocol unit tests without the emulator: framing, CRC, resync, payload codecs."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st
from tinyscope.device import protocol as proto

ROOT = Path(__file__).resolve().parents[2]


def iter_frames(chunks: Iterable[bytes],
                reader: proto.FrameReader | None = None) -> Iterator[proto.Frame]:
    """Frames from an iterable of byte chunks, through one FrameReader."""
    reader = reader or proto.FrameReader()
    for chunk in chunks:
        yield from reader.feed(chunk)


def naive_cobs_encode(data: bytes) -> bytes:
    """Textbook byte-at-a-time COBS (the firmware's streaming encoder does the same)."""
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(0xFF)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def test_generated_header_is_committed():
    committed = (ROOT / "firmware/app/protocol_defs.h").read_text()
    assert committed == proto.c_header(), (
        "firmware/app/protocol_defs.h is stale: run "
        "python -m tinyscope.device.protocol --header firmware/app/protocol_defs.h"
    )


def test_header_constants_match_struct_layouts():
    header = (ROOT / "firmware/app/protocol_defs.h").read_text()
    assert f"#define TSP_HEADER_SIZE {proto.HEADER.size} " in header
    assert f"#define TSP_MAX_RESPONSE_PAYLOAD {proto.MAX_RESPONSE_PAYLOAD} " in header
    sizes = ", ".join(str(n) for n in proto.DTYPE_SIZES)
    assert f"#define TSP_DTYPE_SIZES {{{sizes}}}" in header and proto.DTYPE_SIZES[9] == 1
    assert f"#define TSP_INFO_FIXED_SIZE {proto.INFO_FIXED.size} " in header
    assert f"#define TSP_RUN 0x{proto.FrameType.RUN:02X}" in header


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200))
def test_cobs_round_trip_and_no_zero(data):
    enc = proto.cobs_encode(data)
    assert 0 not in enc
    assert enc == naive_cobs_encode(data)
    assert proto.cobs_decode(enc) == data
    assert len(enc) <= len(data) + len(data) // 254 + 1


@pytest.mark.parametrize("n", [0, 1, 253, 254, 255, 508, 509, 1000])
def test_cobs_block_boundaries(n):
    for fill in (b"\x01", b"\x00"):
        data = fill * n
        assert proto.cobs_decode(proto.cobs_encode(data)) == data
        assert proto.cobs_encode(data) == naive_cobs_encode(data)


def test_crc_is_zlib_crc32_check_value():
    assert proto.crc32(b"123456789") == 0xCBF43926


@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=proto.MAX_PAYLOAD))
@settings(max_examples=100, deadline=None)
def test_frame_round_trip(ftype, seq, payload):
    wire = proto.Frame(ftype, seq, payload).encode()
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    frame = proto.decode_frame(wire[:-1])
    assert (frame.type, frame.seq, frame.payload) == (ftype, seq, payload)


def test_frame_layout_on_the_wire():
    wire = proto.Frame(proto.FrameType.PING, 0x1234, b"ab").encode()
    body = proto.cobs_decode(wire[:-1])
    assert body[:6] == bytes([proto.PROTOCOL_VERSION, 0x04, 0x34, 0x12, 0x02, 0x00])
    assert body[6:8] == b"ab"
    assert struct.unpack("<I", body[8:])[0] == proto.crc32(body[:8])


def test_payload_too_large_refused():
    with pytest.raises(ValueError):
        proto.Frame(proto.FrameType.SET_INPUT, 1, bytes(proto.MAX_PAYLOAD + 1)).encode()


def test_every_single_bit_flip_is_rejected():
    frame = proto.Frame(proto.FrameType.TENSOR, 7, bytes(range(256)) * 3)
    wire = frame.encode()
    for pos in range(len(wire) - 1):
        for bit in (0x01, 0x80):
            bad = bytearray(wire)
            bad[pos] ^= bit
            reader = proto.FrameReader()
            frames = list(reader.feed(bytes(bad)))
            assert frames == [] or frames == [frame], f"flip at {pos} accepted"
            assert frames == [] and reader.bad_frames >= 1, f"flip at {pos} not counted"


def test_wrong_version_counted():
    wire = proto.Frame(proto.FrameType.PING, 1, b"", version=proto.PROTOCOL_VERSION + 1).encode()
    reader = proto.FrameReader()
    assert list(reader.feed(wire)) == []
    assert reader.bad_frames == 1 and "version" in reader.last_error


def test_resync_after_garbage_via_loop_url():
    frames = [proto.Frame(proto.FrameType.TENSOR, i, bytes([i]) * (300 * i)) for i in range(1, 4)]
    port = serial.serial_for_url("loop://", timeout=0.05)
    try:
        port.write(b"\x13\x37garbage without delimiter")
        port.write(frames[0].encode())
        port.write(b"\xff\xfe\x00")  # garbage that ends in a delimiter
        port.write(frames[1].encode())
        port.write(frames[2].encode()[:40] + b"\x00")  # a truncated frame
        port.write(b"\x00\x00")  # empty frames are ignored, not bad
        port.write(frames[2].encode())
        reader = proto.FrameReader()
        got = list(iter_frames(iter(lambda: port.read(97), b""), reader))
    finally:
        port.close()
    # The first garbage sticks to frame 0, which is lost; the others resync.
    assert got == frames[1:]
    assert reader.bad_frames == 3
    assert reader.good_frames == 2


def test_oversized_frame_dropped_without_buffering():
    reader = proto.FrameReader(max_frame=100)
    assert list(reader.feed(b"\x01" * 10_000)) == []
    assert len(reader._buf) == 0
    ok = proto.Frame(proto.FrameType.DONE, 3, b"\x03\x00\x00\x00\x00")
    assert list(reader.feed(b"\x00" + ok.encode())) == [ok]
    assert reader.bad_frames == 1


def test_frames_split_across_reads_byte_by_byte():
    frames = [proto.Frame(proto.FrameType.INFO, i, bytes(range(i, i + 50))) for i in range(5)]
    wire = b"".join(f.encode() for f in frames)
    got = list(iter_frames(wire[i : i + 1] for i in range(len(wire))))
    assert got == frames


def _chunks(arr: np.ndarray, chunk: int, tensor_index: int = 5) -> list[proto.TensorChunk]:
    data = arr.tobytes()
    return [
        proto.TensorChunk(op_index=1, builtin_op=3, tensor_index=tensor_index, offset=o,
                      total=len(data), dtype=9, shape=arr.shape, scales=(0.5,),
                      zero_points=(-128,), quantized_dimension=0, data=data[o : o + chunk])
        for o in range(0, len(data), chunk)
    ]


def test_chunked_tensor_through_frames():
    rng = np.random.default_rng(0)
    arr = rng.integers(-128, 128, size=(1, 26, 26, 8), dtype=np.int8)
    wire = b"".join(proto.Frame(proto.FrameType.TENSOR, 9, c.encode()).encode()
                    for c in _chunks(arr, 4000))
    decoded = [proto.TensorChunk.decode(f.payload) for f in iter_frames([wire])]
    assert len(decoded) == 2
    asm = proto.TensorAssembler(decoded[0])
    asm.add(decoded[1])
    assert asm.complete
    np.testing.assert_array_equal(asm.array(), arr)
    assert decoded[1].scales == (0.5,) and decoded[1].zero_points == (-128,)


def test_lost_chunk_is_detected():
    arr = np.arange(-100, 100, dtype=np.int8).reshape(1, 200)
    chunks = _chunks(arr, 64)
    asm = proto.TensorAssembler(chunks[0])
    with pytest.raises(proto.ProtocolError, match="lost"):
        asm.add(chunks[2])


def test_chunk_past_total_is_rejected():
    c = _chunks(np.zeros((1, 10), np.int8), 10)[0]
    payload = bytearray(c.encode())
    assert payload[4:8] == bytes([9, 2, 1, 10])  # dtype, ndims, dims: the size is derived
    payload[7] = 5  # shape (1, 5): 5 bytes < len(data)
    with pytest.raises(proto.ProtocolError, match="exceeds"):
        proto.TensorChunk.decode(bytes(payload))
    payload[4] = 5  # a dtype (STRING) whose size does not follow from the shape
    with pytest.raises(proto.ProtocolError, match="dtype 5"):
        proto.TensorChunk.decode(bytes(payload))


def test_tensor_metadata_is_compact_and_exact():
    """Version 2 metadata: varints, zigzag zero points, no size field; every value survives."""
    c = proto.TensorChunk(op_index=0, builtin_op=3, tensor_index=8, offset=0, total=5408, dtype=9,
                      shape=(1, 26, 26, 8), scales=(0.0234375,), zero_points=(-128,),
                      quantized_dimension=0, data=bytes(5408))
    assert c.meta() == bytes([0, 3, 8, 0, 9, 4, 1, 26, 26, 8, 1]) + struct.pack(
        "<f", 0.0234375) + bytes([0xFF, 0x01])
    assert proto.TensorChunk.decode(c.encode()) == c
    big = proto.TensorChunk(op_index=0xFFFF, builtin_op=300, tensor_index=70000,
                        offset=4 * 3 * 0xFFFF * 5 - 4, total=4 * 3 * 0xFFFF * 5, dtype=0,
                        shape=(3, 0xFFFF, 5), scales=(1.5, -2.0, 0.25),
                        zero_points=(-(1 << 31), (1 << 31) - 1, 0), quantized_dimension=2,
                        data=b"abcd")
    assert proto.TensorChunk.decode(big.encode()) == big
    # the channel axis goes on the wire only with per-channel parameters
    assert len(replace(big, quantized_dimension=200).meta()) == len(big.meta()) + 1
    with pytest.raises(ValueError, match="quantized_dimension"):
        replace(c, quantized_dimension=3).meta()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_tensor_decode_of_garbage_raises_only_protocol_error(payload):
    try:
        c = proto.TensorChunk.decode(payload)
    except proto.ProtocolError:
        return
    assert proto.TensorChunk.decode(c.encode()) == c or any(np.isnan(c.scales))


@pytest.mark.parametrize("size", [1, 5408, proto.MAX_RESPONSE_PAYLOAD - 12, 200_000])
def test_tensor_chunks_fill_frames_and_reassemble(size):
    data = bytes(np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8))
    chunks = proto.tensor_chunks(2, 3, 9, 9, (1, size), (0.5,), (-1,), 0, data)
    frames = [proto.Frame(proto.FrameType.TENSOR, 1, c.encode()) for c in chunks]
    assert all(len(f.payload) == proto.MAX_RESPONSE_PAYLOAD for f in frames[:-1])
    assert len(chunks) == -(-size // (proto.MAX_RESPONSE_PAYLOAD - len(chunks[-1].meta()))) or \
        len(chunks) == -(-size // (proto.MAX_RESPONSE_PAYLOAD - len(chunks[0].meta())))
    decoded = [proto.TensorChunk.decode(f.payload)
               for f in iter_frames([b"".join(f.encode() for f in frames)])]
    asm = proto.TensorAssembler(decoded[0])
    for d in decoded[1:]:
        asm.add(d)
    assert asm.complete and bytes(asm.buffer) == data


def test_varint_limits():
    for v in (0, 1, 127, 128, 16383, 16384, 0xFFFFFFFF):
        enc = proto.uvarint(v)
        assert proto.read_uvarint(enc + b"x", 0) == (v, len(enc))
    assert len(proto.uvarint(0xFFFFFFFF)) == proto.VARINT_MAX
    for bad in (b"\x80" * 5 + b"\x01", b"\xff\xff\xff\xff\x7f", b"\x80\x80"):
        with pytest.raises(proto.ProtocolError):
            proto.read_uvarint(bad, 0)
    for v in (0, -1, 1, -128, 127, -(1 << 31), (1 << 31) - 1):
        assert proto.read_svarint(proto.svarint(v), 0)[0] == v
    with pytest.raises(ValueError):
        proto.uvarint(1 << 32)


def test_info_round_trip_and_truncation():
    info = proto.Info(1, 25_000_000, 25_000_000, 9736, 262144, 8000, "ab" * 32, 0, 784, 17, 10, 0,
                  "0.1.0+abc", "qemu-mps2-an386", "", ((3, 7), (17, 8), (9, 17)))
    payload = info.encode()
    assert proto.Info.decode(payload) == info
    for cut in range(len(payload)):
        with pytest.raises(proto.ProtocolError):
            proto.Info.decode(payload[:cut])


def test_set_input_chunks_and_run_payload():
    data = bytes(range(256)) * 40
    payloads = list(proto.set_input_payloads(data, chunk=4000))
    assert [struct.unpack_from("<II", p) for p in payloads] == [
        (0, len(data)), (4000, len(data)), (8000, len(data))]
    assert b"".join(p[8:] for p in payloads) == data
    assert max(len(p) for p in payloads) <= proto.MAX_PAYLOAD
    assert proto.run_payload(proto.RunMode.LIST, [2, 5], timing=True, output=False) == bytes(
        [2, 1, 2, 0, 2, 0, 5, 0])


def test_timing_round_trip():
    t = proto.Timing(25_000_000, 1234, (100, 200, 934))
    assert proto.Timing.decode(t.encode()) == t
    # varints: 4 bytes for 25 MHz, 2 for 1234, 1 for the count, 1 + 2 + 2 for the ticks
    assert len(t.encode()) == 4 + 2 + 1 + 5
    with pytest.raises(proto.ProtocolError):
        proto.Timing.decode(t.encode()[:-1])
    with pytest.raises(proto.ProtocolError, match="after"):
        proto.Timing.decode(t.encode() + b"\x00")
    big = proto.Timing(0xFFFFFFFF, 0, (0xFFFFFFFF,) * 3)
    assert proto.Timing.decode(big.encode()) == big


def test_done_payload():
    assert proto.done_payload(proto.FrameType.RUN, 8) == bytes([proto.FrameType.RUN, 8])
    assert proto.done_payload(proto.FrameType.RUN, 300) == bytes([proto.FrameType.RUN, 0xAC, 0x02])
    for frames in (0, 1, 127, 128, 0xFFFFFFFF):
        assert proto.decode_done(proto.done_payload(proto.FrameType.SET_INPUT, frames)) == (
            proto.FrameType.SET_INPUT, frames)
    for bad in (b"", bytes([3]), bytes([3, 0x80]), bytes([3, 1, 0])):
        with pytest.raises(proto.ProtocolError):
            proto.decode_done(bad)
