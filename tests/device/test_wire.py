"""The firmware's encoders agree with protocol.py byte for byte, without an emulator.

The firmware's request handler (firmware/app/main.c + wire.c, built natively with the board
of firmware/fuzz/fuzz_board.c) answers HELLO, SET_INPUT and RUN for the default model; every
answer frame is compared with the bytes protocol.py encodes from values the test knows
independently: the manifest (model hash, sizes, tensor indices, quantization), the TFLM
reference interpreter (every tensor, hence TENSOR data and DIGEST values) and the native
board's fixed clocks. A field swapped or resized on one side fails here.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tinyscope.analysis.reference import tflm_tensors
from tinyscope.device import protocol as P

ROOT = Path(__file__).resolve().parents[2]
NATIVE_BOARD = {"cpu_hz": 1_000_003, "tick_hz": 1_000_000,  # firmware/fuzz/fuzz_board.c
                "tick_unit": P.TickUnit.INSTRUCTIONS, "instructions_per_tick": 7}
ARENA_BYTES = 262144  # fuzz.mk app-native: -DTS_ARENA_BYTES
DTYPE_CODES = {"int8": 9, "int32": 2, "float32": 0, "uint8": 3, "int16": 7, "int64": 4}

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a native C compiler")


@pytest.fixture(scope="module")
def app_native(build_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("app-native")
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), "-f", "fuzz/fuzz.mk",
                    "app-native", f"MODEL_DIR={build_dir}", f"BUILD={out}"], check=True,
                   capture_output=True, timeout=600)
    return out / "app_native"


def answers(exe: Path, requests: list[tuple[int, int, bytes]],
            bank: Path | None = None) -> list[P.Frame]:
    data = b"".join(struct.pack("<BHH", t, seq, len(p)) + p for t, seq, p in requests)
    proc = subprocess.run([str(exe), *([str(bank)] if bank else [])], input=data,
                          capture_output=True, timeout=120, check=True)
    reader = P.FrameReader()
    frames = list(reader.feed(proc.stdout))
    assert reader.bad_frames == 0, reader.errors
    return frames


def manifest(build_dir: Path) -> dict:
    import json

    return json.loads((build_dir / "manifest.json").read_text())


def test_info_is_byte_exact(app_native, build_dir):
    man = manifest(build_dir)
    info, done = answers(app_native, [(P.FrameType.HELLO, 7, b"")])
    tensors = {t["index"]: t for t in man["tensors"]}
    ops = tuple((builtin_code(op["op"]), op["outputs"][0]) for op in man["operators"])
    model = (build_dir / man["model_file"]).read_bytes()
    got = P.Info.decode(info.payload)
    want = P.Info(
        protocol_version=P.PROTOCOL_VERSION, model_bytes=len(model), arena_bytes=ARENA_BYTES,
        arena_used=got.arena_used,  # the runtime's plan: the one value the host cannot know
        model_sha256=hashlib.sha256(model).hexdigest(),
        input_tensor=man["input"]["index"], input_bytes=tensors[man["input"]["index"]]["bytes"],
        output_tensor=man["output"]["index"],
        output_bytes=tensors[man["output"]["index"]]["bytes"], model_status=0,
        firmware_version="native", board="fuzz", model_error="", ops=ops, **NATIVE_BOARD)
    assert 0 < got.arena_used <= ARENA_BYTES
    assert info.type == P.FrameType.INFO and info.payload == want.encode()
    assert done.payload == P.done_payload(P.FrameType.HELLO, 1)


def builtin_code(name: str) -> int:
    from ai_edge_litert import schema_py_generated as schema

    return int(getattr(schema.BuiltinOperator, name))


@pytest.mark.parametrize("from_bank", [False, True], ids=["set_input", "input_bank"])
def test_run_answers_are_byte_exact(app_native, build_dir, tmp_path, from_bank):
    """TENSOR (every op), TIMING, DIGEST and DONE equal protocol.py's encoding of the TFLM
    reference's tensors; SET_INPUT's (or USE_INPUT's, from an input bank) DONE too."""
    man = manifest(build_dir)
    tensors = {t["index"]: t for t in man["tensors"]}
    shape = man["input"]["shape"]
    images = np.random.default_rng(3).integers(-128, 128, (3, *shape[1:]), dtype=np.int8)
    image = images[1]
    ref = tflm_tensors((build_dir / man["model_file"]).read_bytes(), image[None])[0]
    bank = None
    if from_bank:
        bank = tmp_path / "bank.bin"
        bank.write_bytes(P.input_bank(images))
        reqs = [(P.FrameType.HELLO, 7, b""), (P.FrameType.USE_INPUT, 8, P.use_input_payload(1))]
    else:
        reqs = [(P.FrameType.SET_INPUT, 8, p) for p in P.set_input_payloads(image.tobytes())]
    reqs.append((P.FrameType.RUN, 9, P.run_payload(P.RunMode.ALL, (), timing=True,
                                                   output=True, digest=True)))
    frames = answers(app_native, reqs, bank)
    if from_bank:
        assert P.Info.decode(frames[0].payload).input_bank == len(images)
    run = [f for f in frames if f.seq == 9]
    want: list[tuple[int, bytes]] = []
    digests = []
    for i, op in enumerate(man["operators"]):
        t = tensors[op["outputs"][0]]
        data = np.ascontiguousarray(ref[t["index"]]).tobytes()
        digests.append(P.tensor_digest(data))
        for chunk in P.tensor_chunks(i, builtin_code(op["op"]), t["index"], DTYPE_CODES[t["dtype"]],
                                     tuple(t["shape"]), tuple(t["scales"]),
                                     tuple(t["zero_points"]),
                                     t["quantized_dimension"] if len(t["scales"]) > 1 else 0,
                                     data):
            want.append((P.FrameType.TENSOR, chunk.encode()))
    n = len(man["operators"])
    want.append((P.FrameType.TIMING, P.Timing(NATIVE_BOARD["tick_hz"], n, (1,) * n).encode()))
    want.append((P.FrameType.DIGEST, P.Digest(n, tuple(digests)).encode()))
    want.append((P.FrameType.DONE, P.done_payload(P.FrameType.RUN, len(want))))
    assert [(f.type, f.payload) for f in run] == want
    request = P.FrameType.USE_INPUT if from_bank else P.FrameType.SET_INPUT
    for f in frames:
        if f.seq == 8:
            assert (f.type, f.payload) == (P.FrameType.DONE, P.done_payload(request, 0))


def test_use_input_out_of_range_is_refused(app_native, tmp_path):
    frames = answers(app_native, [(P.FrameType.USE_INPUT, 5, P.use_input_payload(0))])
    assert [f.type for f in frames] == [P.FrameType.ERROR]
    code, text = P.decode_error(frames[0].payload)
    assert code == P.ErrorCode.OUT_OF_RANGE and "bank" in text


def test_digest_finds_every_single_word_change():
    """The digest's defining property (odd multiplier): any one changed word changes it; the
    vectorised host digest equals the plain Horner loop of firmware/app/digest.c."""
    rng = np.random.default_rng(0)
    for n in (1, 3, 4, 5, 64, 1001):
        data = rng.integers(0, 256, n, dtype=np.uint8)
        h = n
        padded = data.tobytes() + bytes(-n % 4)
        for (w,) in struct.iter_unpack("<I", padded):
            h = (h * P.DIGEST_MULTIPLIER + w) & 0xFFFFFFFF
        assert P.tensor_digest(data) == h
        base = P.tensor_digest(data)
        for i in range(n):
            bad = data.copy()
            bad[i] ^= 1 << int(rng.integers(0, 8))
            assert P.tensor_digest(bad) != base
    batch = rng.integers(-128, 128, (5, 77), dtype=np.int8)
    assert list(P.tensor_digests(batch)) == [P.tensor_digest(r.tobytes()) for r in batch]
