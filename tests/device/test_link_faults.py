"""Serial faults end to end: a corrupting proxy between the emulated board and capture.

Bit flips, dropped / duplicated / inserted bytes in either direction, a stall longer than
the timeout, a disconnect, a device reset (QEMU system_reset over QMP) mid-capture: capture
retries the image and finishes with every tensor equal to TFLM bit for bit; when it has to
give up, the complete images stay on disk and ``--resume`` finishes the run. Also: a port
with no device, a device speaking another protocol version.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tinyscope import cli, data
from tinyscope.convert import manifest as manifest_mod
from tinyscope.device import boards, capture, link
from tinyscope.device import protocol as proto
from tinyscope.device.faults import DOWN, UP, Fault, FaultProxy, qmp_execute
from tinyscope.errors import DeviceError, MismatchError

ROOT = Path(__file__).resolve().parents[2]
N = 6
TIMEOUT = 2.0  # s: short, so the tests that wait for a timeout stay quick


# ---------------------------------------------------------------- without the emulator


def _silent_listener():
    """A TCP port that accepts and never answers: a port with no device behind it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    conns = []
    t = threading.Thread(target=lambda: conns.append(srv.accept()[0]), daemon=True)
    t.start()
    return srv, conns


def test_port_without_device_fails_within_the_timeout(tmp_path, capsys):
    srv, conns = _silent_listener()
    url = f"socket://127.0.0.1:{srv.getsockname()[1]}"
    try:
        dev = link.Device(link.open_port(url), timeout=1.0)
        start = time.monotonic()
        with pytest.raises(DeviceError, match=r"no answer from the device for 1 s .*timeout"):
            dev.hello()
        assert 0.9 < time.monotonic() - start < 3.0
        dev.port.close()
    finally:
        srv.close()
        for c in conns:
            c.close()
    # and a port that does not exist at all: a clear error, no traceback, exit code 3
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    build = tmp_path / "b"
    build.mkdir()
    code = cli.main(["capture", "--port", f"socket://127.0.0.1:{port}", "--build",
                     str(_tiny_build(build)), "--out", str(tmp_path / "run"), "--n", "1",
                     "--timeout", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3 and "cannot open serial port" in err and "Traceback" not in err


def _tiny_build(path: Path) -> Path:
    from tinyscope.convert import flow

    flow.convert(ROOT / "models/default.keras", path, num_inputs=2)
    return path


def test_protocol_version_mismatch_is_a_clear_error():
    """A device that answers in protocol version 1 (firmware older than this host's
    protocol 2): MismatchError naming both versions."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def device() -> None:
        conn, _ = srv.accept()
        reader = proto.FrameReader()
        with conn:
            while data := conn.recv(4096):
                for f in reader.feed(data):
                    conn.sendall(proto.Frame(proto.FrameType.INFO, f.seq, b"x" * 60,
                                             version=1).encode())

    threading.Thread(target=device, daemon=True).start()
    try:
        dev = link.Device(link.open_port(f"socket://127.0.0.1:{srv.getsockname()[1]}"),
                             timeout=5.0)
        start = time.monotonic()
        with pytest.raises(MismatchError, match="protocol version 1, this tinyscope speaks "
                           "version 2"):
            dev.hello()
        assert time.monotonic() - start < 2.0  # named at once, not after a timeout
        dev.port.close()
    finally:
        srv.close()


# ---------------------------------------------------------------- on the emulated board


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    return _tiny_build(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def expected(build_dir):
    """Inputs, labels and TFLM's first-layer and output tensors for N test images."""
    from tinyscope.analysis import reference

    manifest = manifest_mod.load(build_dir)
    _, q, labels = data.quantized_test_inputs(manifest, N)
    ref = reference.tflm_tensors(manifest_mod.model_bytes(build_dir, manifest), q)
    first, out = manifest["first_layer_output"], manifest["output"]["index"]
    return q, labels, [(r[first], r[out]) for r in ref], first


def _proxy(board, faults: list[Fault]) -> FaultProxy:
    return FaultProxy(("127.0.0.1", board.port), faults,
                      qmp=board.state_dir / boards.QMP_FILE)


def _assert_equals_tflm(run_dir: Path, expected, n: int = N) -> None:
    q, labels, ref, first = expected
    with np.load(run_dir / "capture.npz") as npz:
        np.testing.assert_array_equal(npz["labels"], labels[:n])
        for i in range(n):
            np.testing.assert_array_equal(npz[f"input_{i}"].ravel(), q[i].ravel())
            np.testing.assert_array_equal(npz[f"t{first}_{i}"], ref[i][0])
            np.testing.assert_array_equal(npz[f"output_{i}"], ref[i][1])


@pytest.mark.emulator
def test_bit_flips_drops_dups_and_garbage_are_retried(board, build_dir, expected, tmp_path):
    q, labels, _, _ = expected
    # A clean run moves ~5.7 kB down and ~0.8 kB up per image: one fault every few images.
    faults = [Fault(2_000, "flip", DOWN, 0x10), Fault(15_000, "drop", DOWN, 3),
              Fault(30_000, "insert", DOWN, b"\x33\x00garbage\x00"),
              Fault(45_000, "dup", DOWN), Fault(1_500, "flip", UP, 0x01),
              Fault(3_500, "drop", UP), Fault(5_200, "insert", UP, b"\x00\x07junk")]
    with _proxy(board, faults) as proxy:
        run = capture.capture(proxy.url, build_dir, tmp_path / "run", q, labels, "first",
                              progress=False, timeout=TIMEOUT)
    assert len(proxy.applied) == len(faults)
    assert run["complete"] and run["images"] == N
    assert run["retries"] >= 4 and run["bad_frames"] >= 2 and run["device_bad_frames"] >= 1
    assert run["recoveries"] and all("image" in r for r in run["recoveries"])
    _assert_equals_tflm(tmp_path / "run", expected)
    print(f"faults {len(faults)}: retries {run['retries']}, bad frames {run['bad_frames']}, "
          f"device bad frames {run['device_bad_frames']}, {run['seconds']} s")


@pytest.mark.emulator
def test_stall_disconnect_and_device_reset_are_retried(board, build_dir, expected, tmp_path):
    q, labels, _, _ = expected
    faults = [Fault(3_000, "stall", DOWN, TIMEOUT + 1.0), Fault(12_000, "disconnect", DOWN),
              Fault(25_000, "reset", DOWN)]
    with _proxy(board, faults) as proxy:
        run = capture.capture(proxy.url, build_dir, tmp_path / "run", q, labels, "first",
                              progress=False, timeout=TIMEOUT)
    assert [f.kind for f in proxy.applied] == ["stall", "disconnect", "reset"]
    assert run["complete"] and run["images"] == N
    # The stall and the disconnect always cost a retry. The reset costs one unless the
    # board's whole answer was already in the chunk the proxy held when it reset the board.
    assert run["retries"] >= 2 and run["reconnects"] >= 1 and proxy.connections >= 2
    errors = " | ".join(r["error"] for r in run["recoveries"])
    assert "timeout" in errors and "went away" in errors
    _assert_equals_tflm(tmp_path / "run", expected)


@pytest.mark.emulator
def test_gives_up_keeps_images_and_resume_finishes(board, build_dir, expected, tmp_path,
                                                   capsys):
    q, labels, _, _ = expected
    # image 2 onwards: a bit flip every 300 bytes; with --retries 1 capture gives up
    faults = [Fault(at, "flip", DOWN, 0x04) for at in range(12_500, 60_000, 300)]
    with _proxy(board, faults) as proxy, pytest.raises(
            DeviceError, match=r"gave up after 1 retries.*2 complete images saved.*--resume"):
        capture.capture(proxy.url, build_dir, tmp_path / "run", q, labels, "first",
                        progress=False, timeout=TIMEOUT, retries=1,
                        data_source=manifest_mod.load(build_dir).get("data", ""))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["complete"] is False and run["images"] == 2 and "gave up" in run["error"]
    _assert_equals_tflm(tmp_path / "run", expected, n=2)
    # resuming against another build is refused, naming both hashes
    other = tmp_path / "other"
    shutil.copytree(build_dir, other)
    m = json.loads((other / "manifest.json").read_text())
    m["model_sha256"] = "f" * 64
    (other / "manifest.json").write_text(json.dumps(m))
    code = cli.main(["capture", "--resume", str(tmp_path / "run"), "--build", str(other),
                     "--port", board.url, "--n", str(N), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 4 and "f" * 64 in err and run["model_sha256"] in err
    # the real resume, straight to the board: finishes the remaining images
    code = cli.main(["capture", "--resume", str(tmp_path / "run"), "--port", board.url,
                     "--n", str(N), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["complete"] is True and run["images"] == N and "error" not in run
    _assert_equals_tflm(tmp_path / "run", expected)
    with np.load(tmp_path / "run" / "capture.npz") as npz:
        assert npz["op_ticks"].shape == (N, len(run["operators"]))


@pytest.mark.emulator
def test_device_survives_garbage_then_serves(board, build_dir, expected):
    """Random bytes (with zeros) on the UART: ERROR answers, then valid requests work."""
    q, _, ref, first = expected
    rng = np.random.default_rng(6)
    port = link.open_port(board.url)
    try:
        # The host-to-device direction runs at ~25 kB/s on QEMU: allow for a loaded machine.
        dev = link.Device(port, timeout=20.0)
        garbage = rng.integers(0, 256, 8_000, dtype=np.uint8)
        garbage[rng.random(garbage.size) < 0.01] = 0
        port.write(garbage.tobytes() + b"\x00")
        info = dev.hello()
        assert info.model_status == 0
        assert dev.device_bad_frames >= 1  # the device reported the garbage, then answered
        assert dev.reader.bad_frames == 0  # and never sent a bad frame itself
        # oversized requests: too many layers, input too large, a frame beyond MAX_PAYLOAD
        with pytest.raises(DeviceError, match="OUT_OF_RANGE"):
            dev.request(proto.FrameType.RUN, proto.run_payload(proto.RunMode.LIST, range(2000)))
        with pytest.raises(DeviceError, match="OUT_OF_RANGE"):
            dev.request(proto.FrameType.SET_INPUT,
                        proto.SET_INPUT_FIXED.pack(0, 1 << 20) + bytes(4000))
        port.write(b"\x01" * (proto.MAX_FRAME + 1000) + b"\x00")
        dev.ping()
        assert dev.device_bad_frames >= 2
        dev.set_input(q[0].tobytes())
        res = dev.run(proto.RunMode.FIRST)
        np.testing.assert_array_equal(res.tensors[first], ref[0][0])
        np.testing.assert_array_equal(res.output, ref[0][1])
    finally:
        port.close()


@pytest.mark.emulator
def test_qmp_reset_reboots_the_board(board):
    port = link.open_port(board.url)
    try:
        dev = link.Device(port, timeout=5.0)
        dev.set_input(bytes(dev.hello().input_bytes))
        qmp_execute(board.state_dir / boards.QMP_FILE, "system_reset")
        time.sleep(0.2)
        with pytest.raises(DeviceError, match="NO_INPUT"):  # the reboot lost the input
            dev.run(proto.RunMode.NONE)
    finally:
        port.close()
