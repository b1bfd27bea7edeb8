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
from tinyscope.device import protocol as proto

ROOT = Path(__file__).resolve().parents[2]
NATIVE_BOARD = {"cpu_hz": 1_000_003, "tick_hz": 1_000_000,  # firmware/fuzz/fuzz_board.c
                "tick_unit": proto.TickUnit.INSTRUCTIONS, "instructions_per_tick": 7}
ARENA_BYTES = 262144  # fuzz.mk app-native: -DTS_ARENA_BYTES
DTYPE_CODES = {"int8": 9, "int32": 2, "float32": 0, "uint8": 3, "int16": 7, "int64": 4}

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a native C compiler")


def build_app_native(build_dir: Path, out: Path) -> Path:
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), "-f", "fuzz/fuzz.mk",
                    "app-native", f"MODEL_DIR={build_dir}", f"BUILD={out}"], check=True,
                   capture_output=True, timeout=600)
    return out / "app_native"


@pytest.fixture(scope="module")
def app_native(build_dir, tmp_path_factory) -> Path:
    return build_app_native(build_dir, tmp_path_factory.mktemp("app-native"))


@pytest.fixture(scope="module")
def float_io(tmp_path_factory) -> tuple[Path, Path]:
    """(build dir, native app) of a model with float32 input and output edges."""
    from tinyscope.convert import flow

    from tests.convert import float_io_model

    root = tmp_path_factory.mktemp("float-io")
    _, tflite = float_io_model.write(root / "model")
    flow.convert(tflite, root / "build", num_inputs=2)
    return root / "build", build_app_native(root / "build", root / "app")


def answers(exe: Path, requests: list[tuple[int, int, bytes]],
            bank: Path | None = None) -> list[proto.Frame]:
    data = b"".join(struct.pack("<BHH", t, seq, len(p)) + p for t, seq, p in requests)
    proc = subprocess.run([str(exe), *([str(bank)] if bank else [])], input=data,
                          capture_output=True, timeout=120, check=True)
    reader = proto.FrameReader()
    frames = list(reader.feed(proc.stdout))
    assert reader.bad_frames == 0, reader.errors
    return frames


def manifest(build_dir: Path) -> dict:
    import json

    return json.loads((build_dir / "manifest.json").read_text())


def test_info_is_byte_exact(app_native, build_dir):
    man = manifest(build_dir)
    info, done = answers(app_native, [(proto.FrameType.HELLO, 7, b"")])
    tensors = {t["index"]: t for t in man["tensors"]}
    ops = tuple((builtin_code(op["op"]), op["outputs"][0]) for op in man["operators"])
    model = (build_dir / man["model_file"]).read_bytes()
    got = proto.Info.decode(info.payload)
    want = proto.Info(
        protocol_version=proto.PROTOCOL_VERSION, model_bytes=len(model), arena_bytes=ARENA_BYTES,
        arena_used=got.arena_used,  # the runtime's plan: the one value the host cannot know
        model_sha256=hashlib.sha256(model).hexdigest(),
        input_tensor=man["input"]["index"], input_bytes=tensors[man["input"]["index"]]["bytes"],
        output_tensor=man["output"]["index"],
        output_bytes=tensors[man["output"]["index"]]["bytes"], model_status=0,
        firmware_version="native", board="fuzz", model_error="", ops=ops, **NATIVE_BOARD)
    assert 0 < got.arena_used <= ARENA_BYTES
    assert info.type == proto.FrameType.INFO and info.payload == want.encode()
    assert done.payload == proto.done_payload(proto.FrameType.HELLO, 1)


def builtin_code(name: str) -> int:
    from ai_edge_litert import schema_py_generated as schema

    return int(getattr(schema.BuiltinOperator, name))


@pytest.mark.parametrize("from_bank", [False, True], ids=["set_input", "input_bank"])
def test_run_answers_are_byte_exact(app_native, build_dir, tmp_path, from_bank):
    """TENSOR (every op), TIMING, DIGEST and DONE equal protocol.py's encoding of the TFLM
    reference's tensors; SET_INPUT's (or USE_INPUT's, from an input bank) DONE too."""
    shape = manifest(build_dir)["input"]["shape"]
    images = np.random.default_rng(3).integers(-128, 128, (3, *shape[1:]), dtype=np.int8)
    check_run(app_native, build_dir, tmp_path, from_bank, images)


@pytest.mark.parametrize("from_bank", [False, True], ids=["set_input", "input_bank"])
def test_float32_input_and_output_are_byte_exact(float_io, tmp_path, from_bank):
    """A model with float32 edges: SET_INPUT (or the input bank) carries float32 values,
    little-endian; the QUANTIZE/DEQUANTIZE outputs and the OUTPUT-bearing float32 tensor
    are byte for byte TFLM's, with dtype 0 and no quantization parameters."""
    from tests.convert import float_io_model

    build, app = float_io
    man = manifest(build)
    assert man["input"]["dtype"] == "float32" and man["output"]["dtype"] == "float32"
    info, _ = answers(app, [(proto.FrameType.HELLO, 7, b"")])
    assert proto.Info.decode(info.payload).input_bytes == 4 * int(np.prod(man["input"]["shape"]))
    check_run(app, build, tmp_path, from_bank, float_io_model.float_inputs(3, seed=2))
    # a float32 input's bytes: little-endian IEEE 754, whatever the host's byte order
    x = np.array([1.5, -2.0], ">f4")
    assert proto.input_data(x) == struct.pack("<2f", 1.5, -2.0)
    with pytest.raises(ValueError, match="int8 or float32"):
        proto.input_data(np.zeros(2, np.int16))


def check_run(app_native: Path, build_dir: Path, tmp_path: Path, from_bank: bool,
              images: np.ndarray) -> None:
    man = manifest(build_dir)
    tensors = {t["index"]: t for t in man["tensors"]}
    image = images[1]
    ref = tflm_tensors((build_dir / man["model_file"]).read_bytes(), image[None])[0]
    bank = None
    if from_bank:
        bank = tmp_path / "bank.bin"
        bank.write_bytes(proto.input_bank(images))
        reqs = [(proto.FrameType.HELLO, 7, b""),
                (proto.FrameType.USE_INPUT, 8, proto.use_input_payload(1))]
    else:
        reqs = [(proto.FrameType.SET_INPUT, 8, p)
                for p in proto.set_input_payloads(proto.input_data(image))]
    reqs.append((proto.FrameType.RUN, 9, proto.run_payload(proto.RunMode.ALL, (), timing=True,
                                                   output=True, digest=True)))
    frames = answers(app_native, reqs, bank)
    if from_bank:
        assert proto.Info.decode(frames[0].payload).input_bank == len(images)
    run = [f for f in frames if f.seq == 9]
    want: list[tuple[int, bytes]] = []
    digests = []
    for i, op in enumerate(man["operators"]):
        t = tensors[op["outputs"][0]]
        data = np.ascontiguousarray(ref[t["index"]]).tobytes()
        digests.append(proto.tensor_digest(data))
        qdim = t["quantized_dimension"] if len(t["scales"]) > 1 else 0
        for chunk in proto.tensor_chunks(i, builtin_code(op["op"]), t["index"],
                                         DTYPE_CODES[t["dtype"]], tuple(t["shape"]),
                                         tuple(t["scales"]), tuple(t["zero_points"]), qdim, data):
            want.append((proto.FrameType.TENSOR, chunk.encode()))
    n = len(man["operators"])
    timing = proto.Timing(NATIVE_BOARD["tick_hz"], n, (1,) * n)
    want.append((proto.FrameType.TIMING, timing.encode()))
    want.append((proto.FrameType.DIGEST, proto.Digest(n, tuple(digests)).encode()))
    want.append((proto.FrameType.DONE, proto.done_payload(proto.FrameType.RUN, len(want))))
    assert [(f.type, f.payload) for f in run] == want
    request = proto.FrameType.USE_INPUT if from_bank else proto.FrameType.SET_INPUT
    for f in frames:
        if f.seq == 8:
            assert (f.type, f.payload) == (proto.FrameType.DONE, proto.done_payload(request, 0))


def test_use_input_out_of_range_is_refused(app_native, tmp_path):
    frames = answers(app_native, [(proto.FrameType.USE_INPUT, 5, proto.use_input_payload(0))])
    assert [f.type for f in frames] == [proto.FrameType.ERROR]
    code, text = proto.decode_error(frames[0].payload)
    assert code == proto.ErrorCode.OUT_OF_RANGE and "bank" in text


def test_digest_finds_every_single_word_change():
    """The digest's defining property (odd multiplier): any one changed word changes it; the
    vectorised host digest equals the plain Horner loop of firmware/app/digest.c."""
    rng = np.random.default_rng(0)
    for n in (1, 3, 4, 5, 64, 1001):
        data = rng.integers(0, 256, n, dtype=np.uint8)
        h = n
        padded = data.tobytes() + bytes(-n % 4)
        for (w,) in struct.iter_unpack("<I", padded):
            h = (h * proto.DIGEST_MULTIPLIER + w) & 0xFFFFFFFF
        assert proto.tensor_digest(data) == h
        base = proto.tensor_digest(data)
        for i in range(n):
            bad = data.copy()
            bad[i] ^= 1 << int(rng.integers(0, 8))
            assert proto.tensor_digest(bad) != base
    batch = rng.integers(-128, 128, (5, 77), dtype=np.int8)
    assert list(proto.tensor_digests(batch)) == [proto.tensor_digest(r.tobytes()) for r in batch]


def test_protocol_doc_float32_examples_are_the_codecs_bytes():
    """docs/protocol.md's float32 examples are what protocol.py encodes."""
    doc = (ROOT / "docs" / "protocol.md").read_text()
    meta = proto.TensorChunk(proto.OP_NONE, proto.OP_NONE, 10, 0, 16, 0, (1, 4), (), (), 0,
                             b"").meta()
    assert f"`{meta.hex(' ')}`" in doc and f"metadata is {len(meta)} bytes" in doc
    assert f"`{proto.input_data(np.float32([0.5])).hex(' ')}`" in doc


def test_capture_refuses_inputs_of_the_wrong_kind():
    """Float values for an int8 input (they would be truncated) or int8 values for a float32
    input (they would be read as real values) are refused before anything is sent; a ragged
    list of int8 images for an int8 input is left to the device (it answers OUT_OF_RANGE)."""
    from tinyscope.device.capture import check_input_type
    from tinyscope.errors import TinyscopeError

    int8_in = {"input": {"dtype": "int8"}}
    float_in = {"input": {"dtype": "float32"}}
    with pytest.raises(TinyscopeError, match="input is int8 but the inputs are float32"):
        check_input_type(int8_in, np.zeros((2, 4), np.float32))
    with pytest.raises(TinyscopeError, match="input is float32 but the inputs are int8"):
        check_input_type(float_in, np.zeros((2, 4), np.int8))
    check_input_type(int8_in, [np.zeros(4, np.int8), np.zeros(3, np.int8)])
    check_input_type(float_in, np.zeros((2, 4), np.float32))
