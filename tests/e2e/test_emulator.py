"""End-to-end on the emulated board: QEMU boots the firmware, the host talks the proto.

Every QEMU started here is stopped by a fixture (``finally``), even when a test fails.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tinyscope import data
from tinyscope.convert import manifest as manifest_mod
from tinyscope.device import boards, capture, link
from tinyscope.device import protocol as proto
from tinyscope.errors import DeviceError, MismatchError

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]
N_IMAGES = 20


@pytest.fixture
def device(board):
    port = link.open_port(board.url)
    try:
        dev = link.Device(port)
        dev.hello()
        yield dev
    finally:
        port.close()


def _answer(dev: link.Device, timeout: float = 5.0) -> list[proto.Frame]:
    """Frames up to and including the next DONE or ERROR."""
    out = []
    for frame in dev.frames(timeout):
        out.append(frame)
        if frame.type in (proto.FrameType.DONE, proto.FrameType.ERROR):
            return out
    raise AssertionError("unreachable")


def _error_code(frame: proto.Frame) -> int:
    assert frame.type == proto.FrameType.ERROR, frame.name
    return proto.decode_error(frame.payload)[0]


def test_info_describes_the_flashed_model(device, build_dir):
    from tensorflow.lite.python import schema_py_generated as schema

    info = device.info
    manifest = manifest_mod.load(build_dir)
    model = (build_dir / manifest["model_file"]).read_bytes()
    # The device hashes the bytes it actually holds.
    assert info.model_sha256 == hashlib.sha256(model).hexdigest() == manifest["model_sha256"]
    assert info.model_bytes == len(model)
    assert info.model_status == 0 and info.model_error == ""
    assert info.board == "qemu-mps2-an386"
    assert info.cpu_hz == info.tick_hz == 25_000_000
    assert info.protocol_version == proto.PROTOCOL_VERSION
    assert info.firmware_version.startswith("0.")
    assert 0 < info.arena_used <= info.arena_bytes
    codes = {name: getattr(schema.BuiltinOperator, name) for name in
             {op["op"] for op in manifest["operators"]}}
    assert list(info.ops) == [(codes[op["op"]], op["outputs"][0]) for op in manifest["operators"]]
    assert info.input_tensor == manifest["input"]["index"]
    assert info.input_bytes == int(np.prod(manifest["input"]["shape"]))
    assert info.output_tensor == manifest["output"]["index"]


def test_bad_frames_get_error_and_the_device_keeps_serving(device):
    # garbage ending in a delimiter
    device.port.write(b"\x05hello\x00")
    (frame,) = _answer(device)
    assert (_error_code(frame), frame.seq) == (proto.ErrorCode.BAD_FRAME, proto.SEQ_NONE)
    device.ping()
    # a valid frame with one byte flipped
    wire = bytearray(proto.Frame(proto.FrameType.PING, 77, b"").encode())
    wire[3] ^= 0x40
    device.port.write(bytes(wire))
    assert _error_code(_answer(device)[0]) == proto.ErrorCode.BAD_FRAME
    # longer than the device's receive buffer
    device.port.write(b"\x01" * (proto.MAX_FRAME + 100) + b"\x00")
    assert _error_code(_answer(device)[0]) == proto.ErrorCode.TOO_LARGE
    # another protocol version, then an unknown request type
    device.port.write(proto.Frame(proto.FrameType.PING, 5, b"", version=9).encode())
    frame = _answer(device)[0]
    assert (_error_code(frame), frame.seq) == (proto.ErrorCode.BAD_VERSION, 5)
    device.port.write(proto.Frame(0x42, 6, b"").encode())
    assert _error_code(_answer(device)[0]) == proto.ErrorCode.UNKNOWN_TYPE
    # the host side never accepted a bad frame, and HELLO still works
    assert device.reader.bad_frames == 0
    assert device.hello().model_status == 0


def test_out_of_range_requests_are_refused(device):
    info = device.info
    with pytest.raises(DeviceError, match="NO_INPUT"):
        device.run(proto.RunMode.ALL)
    with pytest.raises(DeviceError, match="OUT_OF_RANGE"):
        device.request(proto.FrameType.SET_INPUT,
                       proto.SET_INPUT_FIXED.pack(0, info.input_bytes + 1))
    with pytest.raises(DeviceError, match="OUT_OF_RANGE"):
        device.request(proto.FrameType.SET_INPUT,
                       proto.SET_INPUT_FIXED.pack(info.input_bytes - 1, info.input_bytes) + b"ab")
    with pytest.raises(DeviceError, match="BAD_REQUEST"):
        device.request(proto.FrameType.SET_INPUT, b"\x00\x00")
    device.set_input(bytes(info.input_bytes))
    with pytest.raises(DeviceError, match="OUT_OF_RANGE"):
        device.run(proto.RunMode.LIST, [len(info.ops)])
    with pytest.raises(DeviceError, match="BAD_REQUEST"):
        device.request(proto.FrameType.RUN, proto.run_payload(proto.RunMode.LIST, [0])[:-1])
    with pytest.raises(DeviceError, match="BAD_REQUEST"):
        device.request(proto.FrameType.RUN, bytes([9, 0, 0, 0]))
    # RESET re-initialises the runtime and drops the pending input
    device.set_input(bytes(info.input_bytes))
    device.reset()
    with pytest.raises(DeviceError, match="NO_INPUT"):
        device.run(proto.RunMode.FIRST)
    assert device.hello() == info


def test_input_chunks_in_order(device):
    info = device.info
    data = bytes(range(256)) * (info.input_bytes // 256 + 1)
    data = data[: info.input_bytes]
    # small chunks, in order: accepted; then a RUN consumes the input
    for payload in proto.set_input_payloads(data, chunk=100):
        device.request(proto.FrameType.SET_INPUT, payload)
    # a chunk that skips ahead is refused
    first, _, third = list(proto.set_input_payloads(data, chunk=300))[:3]
    device.request(proto.FrameType.SET_INPUT, first)
    with pytest.raises(DeviceError, match="out of order"):
        device.request(proto.FrameType.SET_INPUT, third)


def test_capture_all_layers_equals_tflm_bit_for_bit(board, build_dir, tmp_path):
    from tinyscope.analysis import reference

    manifest = manifest_mod.load(build_dir)
    model = manifest_mod.model_bytes(build_dir, manifest)
    _, q, labels = data.quantized_test_inputs(manifest, N_IMAGES)
    start = time.monotonic()
    run = capture.capture(board.url, build_dir, tmp_path / "run", q, labels, "all",
                          progress=False)
    seconds = time.monotonic() - start
    assert run["complete"] and run["images"] == N_IMAGES
    assert run["bad_frames"] == 0 and run["device_bad_frames"] == 0
    expected = reference.tflm_tensors(model, q)
    activations = [i for i in manifest["activations"] if i != manifest["input"]["index"]]
    with np.load(tmp_path / "run" / "capture.npz") as npz:
        np.testing.assert_array_equal(npz["labels"], labels)
        for i in range(N_IMAGES):
            np.testing.assert_array_equal(npz[f"input_{i}"], q[i].reshape(
                manifest["input"]["shape"]))
            for t in activations:
                got = npz[f"t{t}_{i}"]
                assert got.dtype == expected[i][t].dtype and got.shape == expected[i][t].shape
                diff = np.flatnonzero(got != expected[i][t])
                assert diff.size == 0, (
                    f"image {i} tensor {t}: {diff.size} elements differ from TFLM, first at "
                    f"flat index {diff[0]}: device {got.ravel()[diff[0]]} tflm "
                    f"{expected[i][t].ravel()[diff[0]]}"
                )
            np.testing.assert_array_equal(npz[f"output_{i}"],
                                          expected[i][manifest["output"]["index"]])
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["model_sha256"] == manifest["model_sha256"]
    assert [t["tensor_index"] for t in saved["tensors"]] == sorted(activations)
    ticks = saved["timing"]["per_op_ticks_median"]
    assert len(ticks) == len(manifest["operators"]) and all(t > 0 for t in ticks)
    print(f"captured {N_IMAGES} images, all layers, in {seconds:.1f} s")


def test_timing_is_deterministic(device, build_dir):

    manifest = manifest_mod.load(build_dir)
    _, q, _ = data.quantized_test_inputs(manifest, 1)
    runs = []
    for _ in range(2):
        device.set_input(q[0].tobytes())
        runs.append(device.run(proto.RunMode.NONE, timing=True, output=True))
    assert runs[0].timing == runs[1].timing
    assert runs[0].timing.total_ticks == sum(runs[0].timing.op_ticks) > 0
    np.testing.assert_array_equal(runs[0].output, runs[1].output)
    assert runs[0].tensors == {}


def test_first_layer_is_the_default(board, build_dir, tmp_path):

    manifest = manifest_mod.load(build_dir)
    _, q, labels = data.quantized_test_inputs(manifest, 2)
    capture.capture(board.url, build_dir, tmp_path / "run", q, labels, progress=False)
    with np.load(tmp_path / "run" / "capture.npz") as npz:
        streamed = sorted(k for k in npz.files if k.startswith("t"))
    first = manifest["first_layer_output"]
    assert manifest["first_layer_op"] == 0
    assert streamed == [f"t{first}_0", f"t{first}_1"]


def test_capture_refuses_another_model(board, build_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(build_dir, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["model_sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    q = np.zeros((1, 28, 28, 1), np.int8)
    with pytest.raises(MismatchError) as err:
        capture.capture(board.url, other, tmp_path / "run", q, np.zeros(1), progress=False)
    real = manifest_mod.load(build_dir)["model_sha256"]
    assert real in str(err.value) and "0" * 64 in str(err.value)
    assert not (tmp_path / "run" / "capture.npz").exists()


def test_flash_and_stop_cli(elf, tmp_path):
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "tinyscope.cli"]
    try:
        out = subprocess.run([*cmd, "flash", "--elf", str(elf), "--state-dir", str(state)],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        url = (state / "port").read_text().strip()
        assert url in out and "make stop" in out
        pid = int((state / "qemu.pid").read_text())
        assert Path(f"/proc/{pid}").exists()
        port = link.open_port(url)
        try:
            assert link.Device(port).hello().board == "qemu-mps2-an386"
        finally:
            port.close()
        out = subprocess.run([*cmd, "stop", "--state-dir", str(state)], capture_output=True,
                             text=True, timeout=60, check=True).stdout
        assert f"pid {pid}" in out
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{pid}").exists()
        assert not (state / "port").exists()
    finally:
        boards.stop(state)


def test_partial_capture_keeps_complete_images(board, build_dir, tmp_path):

    manifest = manifest_mod.load(build_dir)
    _, q, labels = data.quantized_test_inputs(manifest, 3)
    images = [q[0], q[1], q[2].ravel()[:100]]  # the device refuses image 2 (wrong size)
    with pytest.raises(DeviceError, match="OUT_OF_RANGE.*2 complete images saved"):
        capture.capture(board.url, build_dir, tmp_path / "run", images, labels, "first",
                        progress=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["complete"] is False and run["images"] == 2 and "OUT_OF_RANGE" in run["error"]
    with np.load(tmp_path / "run" / "capture.npz") as npz:
        assert sorted(k for k in npz.files if k.startswith("input_")) == ["input_0", "input_1"]
        np.testing.assert_array_equal(npz["labels"], labels[:2])
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_port_auto_finds_the_running_emulator(board):
    assert boards.resolve_port("auto", board.state_dir) == board.url
    assert boards.resolve_port("/dev/ttyACM7", board.state_dir) == "/dev/ttyACM7"


def test_arena_too_small_is_reported(build_dir, tmp_path):
    elf = boards.build_firmware(build_dir, quiet=True, arena_bytes=1024,
                                out_dir=tmp_path / "fw")
    with boards.emulated_board(elf, tmp_path / "qemu") as b:
        port = link.open_port(b.url)
        try:
            dev = link.Device(port)
            info = dev.hello()
            assert info.model_status == 3 and info.arena_bytes == 1024
            assert info.arena_used > 1024 and f"needs {info.arena_used} bytes" in info.model_error
            assert "ARENA_BYTES" in info.model_error
            with pytest.raises(DeviceError, match="MODEL.*arena too small"):
                dev.set_input(bytes(784))
        finally:
            port.close()


def _runner_arena(flag: str, model: Path, tmp_path: Path) -> int:
    """The arena the native runner plans for ``model`` (``--plan`` or ``--tables``)."""
    from tinyscope.convert.check import ensure_runner

    args = [str(ensure_runner()), flag, str(model)]
    if flag == "--tables":
        args.append(str(tmp_path / "tables.bin"))
    return int(subprocess.run(args, capture_output=True, text=True, check=True).stdout)


def test_the_arena_is_planned_with_the_tables_in_flash(device, elf, build_dir, tmp_path):
    """The firmware's arena is the host plan with the per-channel tables outside it (they are
    linked into flash, OUT/model_tables.c): INFO's arena_bytes is model.mk's figure, exactly
    the plan with the tables inside minus the tables' bytes; the device's own plan (4-byte
    pointers) fits in it."""
    model = build_dir / "model_int8.tflite"
    planned = (elf.parent / "model.mk").read_text().splitlines()[0]
    outside = _runner_arena("--tables", model, tmp_path)
    tables = (tmp_path / "tables.bin").stat().st_size
    assert planned == f"MODEL_ARENA_BYTES := {outside}"
    assert device.info.arena_bytes == outside
    assert _runner_arena("--plan", model, tmp_path) - outside == (tables + 15) // 16 * 16 > 0
    assert 0 < device.info.arena_used <= outside


def _boot_info(elf: Path, qemu_dir: Path):
    with boards.emulated_board(elf, qemu_dir) as b:
        port = link.open_port(b.url)
        try:
            dev = link.Device(port)
            info = dev.hello()
            with pytest.raises(DeviceError, match="MODEL.*tables"):
                dev.set_input(bytes(784))
            return info
        finally:
            port.close()


def test_tables_of_another_model_are_refused_at_boot(build_dir, tmp_path):
    """The tables in flash are made with the model (one recipe, one MODEL_PLAN_ID); should a
    stale OUT/model_tables.c still be linked, the device refuses it with a clear error: tables
    made for another file (their sha256 differs from the flashed model's), or tables whose
    values differ from what init computes from the model."""
    out = tmp_path / "fw"
    elf = boards.build_firmware(build_dir, quiet=True, out_dir=out)
    source = (out / "model_tables.c").read_text()
    head, sep, body = source.partition("g_model_tables[")
    words = body.split("{", 1)[1].split(",")
    words[0] = str(int(words[0]) ^ 1)  # the first multiplier, one bit off
    (out / "model_tables.c").write_text(head + sep + body.split("{", 1)[0] + "{"
                                        + ",".join(words))
    info = _boot_info(boards.build_firmware(build_dir, quiet=True, out_dir=out), tmp_path / "q1")
    assert info.model_status == 4, info.model_error
    assert "per-channel tables do not match the model (rebuild the firmware" in info.model_error
    at = source.index("{0x") + 3  # the first byte of the model's sha256, changed
    (out / "model_tables.c").write_text(
        source[:at] + format(int(source[at:at + 2], 16) ^ 0xFF, "02x") + source[at + 2:])
    info = _boot_info(boards.build_firmware(build_dir, quiet=True, out_dir=out), tmp_path / "q2")
    assert info.model_status == 4
    assert "tables made for another model: rebuild the firmware" in info.model_error
    # Rebuilt from scratch (model.mk removed), the tables are the model's again.
    (out / "model.mk").unlink()
    assert elf == boards.build_firmware(build_dir, quiet=True, out_dir=out)
    assert (out / "model_tables.c").read_text() == source


def test_output_is_sent_once_and_frames_are_not_split(device, build_dir):
    """Protocol 2: with ALL the output arrives only as the last operator's TENSOR (no OUTPUT
    frame); with FIRST as an OUTPUT frame; both equal. conv1 (5408 bytes) is one frame."""

    manifest = manifest_mod.load(build_dir)
    _, q, _ = data.quantized_test_inputs(manifest, 1)
    answers = {}
    for mode in (proto.RunMode.ALL, proto.RunMode.FIRST):
        device.set_input(q[0].tobytes())
        seq = device.send(proto.FrameType.RUN, proto.run_payload(mode, (), True, True))
        answers[mode] = [f for f in _answer(device, 30.0) if f.seq == seq]
        device.set_input(q[0].tobytes())
        answers[(mode, "run")] = device.run(mode, timing=True, output=True)
    num_ops = len(manifest["operators"])
    out_index = device.info.output_tensor
    all_types = [f.type for f in answers[proto.RunMode.ALL]]
    assert all_types == ([proto.FrameType.TENSOR] * num_ops
                         + [proto.FrameType.TIMING, proto.FrameType.DONE])
    chunks = [proto.TensorChunk.decode(f.payload) for f in answers[proto.RunMode.ALL][:num_ops]]
    assert [c.tensor_index for c in chunks] == [op["outputs"][0] for op in manifest["operators"]]
    assert chunks[-1].tensor_index == out_index and all(c.offset == 0 for c in chunks)
    assert proto.decode_done(answers[proto.RunMode.ALL][-1].payload) == (proto.FrameType.RUN,
                                                                          num_ops + 1)
    first_types = [f.type for f in answers[proto.RunMode.FIRST]]
    assert first_types == [proto.FrameType.TENSOR, proto.FrameType.OUTPUT, proto.FrameType.TIMING,
                           proto.FrameType.DONE]
    run_all, run_first = answers[(proto.RunMode.ALL, "run")], answers[(proto.RunMode.FIRST, "run")]
    np.testing.assert_array_equal(run_all.output, run_all.tensors[out_index])
    np.testing.assert_array_equal(run_all.output, run_first.output)
    assert run_first.output.shape == tuple(manifest["output"]["shape"])
    np.testing.assert_array_equal(run_all.tensors[chunks[0].tensor_index],
                                  run_first.tensors[chunks[0].tensor_index])


def test_wire_bytes_per_image(device, build_dir):
    """Device -> host bytes per image (SET_INPUT's DONE + the RUN answer, as the host reads
    them): the figures of docs/protocol.md; with every layer streamed >= 97 % is tensor data.
    Print them with: pytest tests/e2e/test_emulator.py -k wire_bytes -s"""

    manifest = manifest_mod.load(build_dir)
    _, q, _ = data.quantized_test_inputs(manifest, 1)
    sizes = {}
    for mode in (proto.RunMode.NONE, proto.RunMode.FIRST, proto.RunMode.ALL):
        start = device.rx_bytes
        device.set_input(q[0].tobytes())
        res = device.run(mode, timing=True, output=True)
        wire = device.rx_bytes - start
        payload = sum(a.nbytes for a in res.tensors.values())
        if device.info.output_tensor not in res.tensors:
            payload += res.output.nbytes
        sizes[mode.name.lower()] = (payload, wire)
        print(f"--layers {mode.name.lower()}: {payload} tensor bytes in {wire} wire bytes "
              f"({payload / wire:.4f})")
    nbytes = {t["index"]: t["bytes"] for t in manifest["tensors"]}
    assert sizes["all"][0] == sum(nbytes[op["outputs"][0]] for op in manifest["operators"])
    assert sizes["first"][0] == nbytes[manifest["operators"][0]["outputs"][0]] + nbytes[
        manifest["output"]["index"]]
    assert sizes["all"][0] / sizes["all"][1] >= 0.97
    assert sizes["first"][0] / sizes["first"][1] >= 0.97
