"""Host frame decoder under faults (hypothesis): random garbage, bit flips, dropped,
duplicated and inserted bytes, truncated frames between good frames, any feed chunking.

Properties (tinyscope.device.faults.check_stream): the decoder never raises, never accepts a
frame that is not one of the intact frames sent, recovers every intact frame that follows a
delimiter, and counts every other delimited piece as a bad frame. ``make fuzz`` runs the
same oracle on 1,000,000 seeded random streams.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tinyscope.device import faults as F
from tinyscope.device import protocol as proto

frames_st = st.builds(
    proto.Frame,
    st.sampled_from(list(proto.FrameType)),
    st.integers(0, 0xFFFF),
    st.one_of(st.binary(max_size=64), st.binary(min_size=200, max_size=proto.MAX_PAYLOAD),
              st.binary(max_size=600).map(lambda b: b.replace(b"\x01", b"\x00"))),
)
op_st = st.one_of(
    st.just(("none", 0, 0)),
    st.tuples(st.sampled_from(F.MUTATIONS), st.integers(0, 1 << 16), st.integers(0, 255)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(frames_st, op_st), min_size=1, max_size=8),
       st.lists(st.integers(1, 400), min_size=1, max_size=4))
def test_decoder_recovers_intact_frames_and_counts_bad_ones(items, feed_sizes):
    frames = [f for f, _ in items]
    case = F.mutate_stream(frames, [op for _, op in items])
    reader = F.check_stream(case, feed_sizes)
    bad_pieces = case.chunks - len(case.expected)
    assert reader.bad_frames == bad_pieces
    assert sum(reader.bad_by_kind.values()) == reader.bad_frames


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_random_garbage_is_never_a_frame(garbage):
    reader = proto.FrameReader()
    good = proto.Frame(proto.FrameType.PING, 7, b"ok")
    got = list(reader.feed(garbage + b"\x00" + good.encode()))
    # CRC-32 lets random bytes pass with probability 2**-32 per piece
    assert got == [good]
    assert reader.bad_frames == sum(1 for c in garbage.split(b"\x00") if c)


def test_fault_after_every_byte():
    """nanopb style: one fault at every byte position of a frame between two good ones."""
    a, b, c = (proto.Frame(proto.FrameType.TENSOR, i, bytes((i + k) % 256 for k in range(300)))
               for i in (1, 2, 3))
    n = len(b.encode())
    cases = 0
    for pos in range(n):
        for kind, value in (("flip", 0), ("flip", 7), ("drop", 0), ("dup", 0),
                            ("insert", 0x5A), ("insert", 0), ("truncate", 0)):
            case = F.mutate_stream([a, b, c], [("none", 0, 0), (kind, pos, value)])
            reader = F.check_stream(case)
            assert a in case.expected
            cases += 1
            if kind in ("flip", "drop") or (kind == "truncate" and pos > 0):
                assert b not in case.expected and reader.bad_frames >= 1
    assert cases == 7 * n


def test_fuzz_decoder_short_run():
    counts = F.fuzz_decoder(3000, seed=1)
    assert counts["crashes"] == counts["corrupt_frames_accepted"] == 0
    assert counts["recovered_frames"] == counts["intact_frames"] > 0
    assert counts["bad_frames_counted"] > 0 and counts["streams"] == 3000


def test_version_mismatch_is_named():
    # a device with version-1 firmware (this host speaks 2)
    assert proto.PROTOCOL_VERSION == 2
    reader = proto.FrameReader()
    assert list(reader.feed(proto.Frame(proto.FrameType.INFO, 1, b"", version=1).encode())) == []
    assert reader.foreign_version == 1 and reader.bad_by_kind == {"version": 1}
    with pytest.raises(proto.VersionError, match="protocol version 1, expected 2"):
        proto.decode_frame(proto.Frame(proto.FrameType.INFO, 1, b"", version=1).encode()[:-1])
