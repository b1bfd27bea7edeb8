"""The tinyscope serial protocol: frame layout, CRC-32, COBS framing, payload codecs.

This module is the single definition of the wire format. ``firmware/app/protocol_defs.h`` is
generated from it (``python -m tinyscope.device.protocol --header firmware/app/protocol_defs.h``)
and a test checks that the committed header equals the generated one. ``docs/protocol.md``
describes the same layout for people writing their own firmware. The definitions live in
three modules, all re-exported here (``from tinyscope.device import protocol as proto``):
:mod:`~tinyscope.device.layouts` (constants, types, payload field lists, varints),
:mod:`~tinyscope.device.framing` (COBS, CRC, frames, the reader) and
:mod:`~tinyscope.device.payloads` (one codec per payload, the tensor digest).

A frame on the wire::

    COBS( header | payload | crc32 ) 0x00

    header  = <BBHH  version, type, seq, payload length          (6 bytes, little-endian)
    crc32   = <I     CRC-32 (IEEE 802.3, as zlib.crc32) of header + payload

The host sends requests (HELLO, SET_INPUT, USE_INPUT, RUN, PING, RESET); the device answers
each with response frames carrying the request's sequence number and ends every answer with
DONE or ERROR. Nothing is sent unasked.
"""

# ruff: noqa: F405  (this module re-exports layouts, framing and payloads: one import for users)
from __future__ import annotations

import argparse
from pathlib import Path

from tinyscope.device.framing import *  # noqa: F403
from tinyscope.device.layouts import *  # noqa: F403
from tinyscope.device.payloads import *  # noqa: F403
from tinyscope.device.payloads import _read_str, _str  # noqa: F401

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
        f"#define TSP_DIGEST_MULTIPLIER 0x{DIGEST_MULTIPLIER:08X}u",
        f"#define TSP_BANK_MAGIC 0x{BANK_MAGIC:08X}u",
        "",
    ]
    for enum, prefix in ((FrameType, "TSP_"), (ErrorCode, "TSP_ERR_"), (RunMode, "TSP_RUN_"),
                         (RunFlag, "TSP_FLAG_"), (TickUnit, "TSP_TICK_")):
        for member in enum:
            lines.append(f"#define {prefix}{member.name} 0x{member.value:02X}")
        lines.append("")
    for name, st in (("INFO_FIXED", INFO_FIXED), ("OP_ENTRY", OP_ENTRY),
                     ("SET_INPUT_FIXED", SET_INPUT_FIXED),
                     ("RUN_FIXED", RUN_FIXED),
                     ("ERROR_FIXED", ERROR_FIXED), ("BANK_FIXED", BANK_FIXED)):
        lines.append(f"#define TSP_{name}_SIZE {st.size} /* {st.format} */")
    lines += ["", "/* Payload layouts in wire order: X(field, wire type); firmware/app/wire.c",
              " * expands them into the encoders and decoders. */"]
    for name, layout in LAYOUTS.items():
        lines.append(f"#define TSP_{name}_FIELDS(X) \\")
        lines += [f"  X({field_name}, {kind}) \\" for field_name, kind in layout]
        lines.append("")
    lines += ["#endif /* TS_PROTOCOL_DEFS_H */", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--header", type=Path, required=True, help="write the C header here")
    args = parser.parse_args(argv)
    args.header.write_text(c_header())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
