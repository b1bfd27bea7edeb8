"""The pieces of capture, each alone, against the real firmware without an emulator.

The device is firmware/app (link layer, request handlers, runtime, the default model) built
natively and served on a TCP port (tests/device/native_board.py); a FaultProxy between it and
the host damages the line where a test needs it. Covered: :class:`~tinyscope.device.link.Device`
(handshake, runs, stale and device-reported bad frames), :class:`~tinyscope.device.capture.Link`
(counters, reconnect), :class:`~tinyscope.device.capture.CaptureWriter` (what it saves, resume,
checkpoints) and :func:`~tinyscope.device.capture.run_image` (retry, resync, reconnect, give up).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from tinyscope.analysis import reference
from tinyscope.analysis.compare import load_capture
from tinyscope.convert import manifest as manifest_mod
from tinyscope.data import quantized_test_inputs
from tinyscope.device import capture, link
from tinyscope.device import protocol as proto
from tinyscope.device.faults import DOWN, Fault, FaultProxy
from tinyscope.errors import DeviceError, MismatchError

from tests.device.native_board import NativeBoard, build_native_app

pytestmark = pytest.mark.skipif(shutil.which("cc") is None or shutil.which("make") is None,
                                reason="needs make and a native C compiler")
N = 3
TIMEOUT = 3.0  # s: the tests' links (the native board answers in ms, unless it is off)
OFF_TIMEOUT = 0.5  # s: the links of tests where the board is off (every wait times out)
IN_RUN = 2000  # a byte offset (device -> host) inside the first RUN ALL answer


@pytest.fixture(scope="module")
def app(build_dir, tmp_path_factory) -> Path:
    return build_native_app(build_dir, tmp_path_factory.mktemp("native-board"))


@pytest.fixture
def board(app):
    with NativeBoard(app) as b:
        yield b


@pytest.fixture(scope="module")
def model(build_dir):
    """The manifest, N int8 test images, their labels and TFLM's tensors for each."""
    manifest = manifest_mod.load(build_dir)
    _, q, labels = quantized_test_inputs(manifest, N)
    want = reference.tflm_tensors(manifest_mod.model_bytes(build_dir, manifest), q)
    return manifest, q, labels, want


def _link(url: str, prev: dict | None = None, timeout: float = TIMEOUT) -> capture.Link:
    return capture.Link(url, link.BAUDRATE, timeout, prev or {})


def _writer(out: Path, manifest: dict, labels: np.ndarray, prev: dict | None = None,
            arrays: dict | None = None) -> capture.CaptureWriter:
    run = {"capture_format": capture.CAPTURE_FORMAT, "layers": "all", "complete": False,
           "build": "b", "model_sha256": manifest["model_sha256"]}
    return capture.CaptureWriter(out, run, prev or {}, arrays or {}, labels,
                                 manifest["input"]["shape"])


def _assert_tflm(res: link.RunResult, want: dict, manifest: dict) -> None:
    assert sorted(res.tensors) == sorted(op["outputs"][0] for op in manifest["operators"])
    for t, arr in res.tensors.items():
        np.testing.assert_array_equal(arr, want[t], err_msg=f"tensor {t}")
    np.testing.assert_array_equal(res.output, want[manifest["output"]["index"]])


def _run(lnk: capture.Link, manifest: dict, build_dir: Path, image: np.ndarray,
         writer: capture.CaptureWriter, i: int = 0, retries: int = 2,
         check=None) -> link.RunResult:
    check = check or (lambda info: capture.check_info(info, manifest, build_dir))
    return capture.run_image(lnk, i, np.asarray(image, np.int8), check, proto.RunMode.ALL, [],
                             retries, writer)


# ---------------------------------------------------------------- Device


def test_device_handshake_and_runs_match_tflm(board, model, build_dir):
    manifest, q, _, want = model
    dev = link.Device(link.open_port(board.url), timeout=TIMEOUT)
    try:
        info = dev.hello()
        capture.check_info(info, manifest, build_dir)
        assert info.board == "native-stdio" and info.instructions_per_tick_or_none() is None
        assert [t for _, t in info.ops] == [op["outputs"][0] for op in manifest["operators"]]
        dev.set_input(q[1].tobytes())
        first = dev.run(proto.RunMode.FIRST)
        assert list(first.tensors) == [manifest["first_layer_output"]]
        np.testing.assert_array_equal(first.tensors[manifest["first_layer_output"]],
                                      want[1][manifest["first_layer_output"]])
        last = len(info.ops) - 1
        dev.set_input(q[1].tobytes())  # each RUN takes a fresh input (the arena reuses it)
        listed = dev.run(proto.RunMode.LIST, [0, last], timing=False)
        assert sorted(listed.tensors) == sorted([info.ops[0][1], info.ops[last][1]])
        assert listed.timing is None and len(first.timing.op_ticks) == len(info.ops)
        np.testing.assert_array_equal(listed.output, want[1][manifest["output"]["index"]])
    finally:
        dev.port.close()
        link.release_port(board.url)


def test_device_skips_stale_answers_and_counts_the_devices_bad_frames(board):
    dev = link.Device(link.open_port(board.url), timeout=TIMEOUT)
    try:
        dev.hello()
        dev.send(proto.FrameType.PING)  # its answer is never read: stale for the next request
        dev.ping()
        assert dev.stale_frames == 1
        dev.port.write(b"\x07\x01\x02\x03\x00")  # garbage: the firmware answers BAD_FRAME
        dev.ping()
        assert dev.device_bad_frames == 1 and dev.reader.bad_frames == 0
    finally:
        dev.port.close()
        link.release_port(board.url)


# ---------------------------------------------------------------- Link


def test_link_starts_from_saved_counters_and_totals_add_the_devices(board):
    prev = {"retries": 2, "reconnects": 1, "bad_frames": 3, "device_bad_frames": 5,
            "stale_frames": 4}
    # garbage before the first answer: one bad frame on the host side
    with FaultProxy(("127.0.0.1", int(board.url.rsplit(":", 1)[1])),
                    [Fault(0, "insert", DOWN, b"\x5a\x00")]) as proxy:
        lnk = _link(proxy.url, prev)
        try:
            lnk.dev.hello()
            totals = lnk.totals()
        finally:
            lnk.close()
    assert totals["retries"] == 2 and totals["reconnects"] == 1
    assert totals["bad_frames"] == 4 and sum(totals["bad_frames_by_kind"].values()) == 1
    assert totals["device_bad_frames"] == 5 and totals["stale_frames"] == 4
    assert totals["wire_bytes_received"] == lnk.dev.rx_bytes > 0


def test_link_bounds_every_wait_by_a_given_timeout(board):
    default, short = _link(board.url, timeout=link.REQUEST_TIMEOUT), None
    default.close()
    short = _link(board.url, timeout=1.5)
    short.close()
    assert (default.dev.run_timeout, default.dev.hello_timeout) == (link.RUN_TIMEOUT,
                                                                     link.HELLO_TIMEOUT)
    assert (short.dev.timeout, short.dev.run_timeout, short.dev.hello_timeout) == (1.5,) * 3


def test_reconnect_moves_the_counters_and_the_new_device_answers(board):
    with FaultProxy(("127.0.0.1", int(board.url.rsplit(":", 1)[1])),
                    [Fault(0, "insert", DOWN, b"\x5a\x00")]) as proxy:
        lnk = _link(proxy.url)
        try:
            lnk.dev.hello()
            old = lnk.dev
            lnk.reconnect()
            assert lnk.dev is not old and lnk.dev.timeout == TIMEOUT
            assert lnk.counters["reconnects"] == 1 and lnk.counters["bad_frames"] == 1
            assert lnk.totals()["bad_frames"] == 1  # moved from the old Device, not twice
            lnk.dev.hello()  # the new port answers
            assert proxy.connections == 2
        finally:
            lnk.close()


def test_reconnect_gives_up_when_the_port_stays_away(board, monkeypatch):
    monkeypatch.setattr(capture, "RECONNECT_TIMEOUT", OFF_TIMEOUT)
    lnk = _link(board.url, timeout=OFF_TIMEOUT)
    try:
        board.close()  # the port is gone: nothing listens there any more
        start = time.monotonic()
        with pytest.raises(DeviceError, match="cannot open serial port"):
            lnk.reconnect()
        assert time.monotonic() - start < 3.0 and lnk.counters["reconnects"] == 0
    finally:
        lnk.close()


# ---------------------------------------------------------------- CaptureWriter


def test_writer_saves_what_compare_loads(board, model, build_dir, tmp_path):
    manifest, q, labels, want = model
    writer = _writer(tmp_path / "run", manifest, labels)
    lnk = _link(board.url)
    try:
        capture.check_info(lnk.dev.hello(), manifest, build_dir)
        for i in range(2):
            writer.add(i, q[i], _run(lnk, manifest, build_dir, q[i], writer, i))
        writer.save(lnk)
    finally:
        lnk.close()
    loaded = load_capture(tmp_path / "run")
    assert loaded.run["images"] == writer.done == 2
    np.testing.assert_array_equal(loaded.inputs, q[:2].reshape(2, *q.shape[1:]))
    np.testing.assert_array_equal(loaded.labels, labels[:2])
    for op in manifest["operators"]:
        t = op["outputs"][0]
        np.testing.assert_array_equal(loaded.tensors[t], np.stack([w[t][0] for w in want[:2]]))
    out = manifest["output"]["index"]
    np.testing.assert_array_equal(loaded.outputs, np.stack([w[out][0] for w in want[:2]]))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    tensors = {t["index"]: t for t in manifest["tensors"]}
    assert [m["tensor_index"] for m in run["tensors"]] == sorted(loaded.tensors)
    for m in run["tensors"]:
        assert m["scales"] == pytest.approx(tensors[m["tensor_index"]]["scales"])
    assert len(run["timing"]["per_op_ticks_median"]) == len(manifest["operators"])
    assert run["wire_bytes_received"] > 0 and run["retries"] == 0


def test_writer_saves_nothing_before_the_first_image(board, model, tmp_path):
    manifest, _, labels, _ = model
    writer = _writer(tmp_path / "run", manifest, labels)
    lnk = _link(board.url)
    try:
        writer.save(lnk)
    finally:
        lnk.close()
    assert not (tmp_path / "run").exists()
    assert writer.run["images"] == 0 and "timing" not in writer.run


def test_writer_continues_a_saved_run(board, model, build_dir, tmp_path):
    manifest, q, labels, want = model
    out = tmp_path / "run"
    first = _writer(out, manifest, labels)
    first.recoveries.append({"image": 0, "attempt": 1, "error": "a flipped bit"})
    lnk = _link(board.url)
    try:
        first.add(0, q[0], _run(lnk, manifest, build_dir, q[0], first))
        first.save(lnk)
        saved_seconds = first.run["seconds"]
        arrays, prev = capture._load_previous(out, manifest, "all", q)
        again = _writer(out, manifest, labels, prev, arrays)
        assert again.done == 1 and len(again.ticks) == 1 and again.recoveries
        again.add(1, q[1], _run(lnk, manifest, build_dir, q[1], again, 1))
        again.save(lnk)
    finally:
        lnk.close()
    loaded = load_capture(out)
    assert loaded.run["images"] == 2 and loaded.run["seconds"] >= saved_seconds
    assert loaded.run["recoveries"] == first.recoveries
    t = manifest["first_layer_output"]
    np.testing.assert_array_equal(loaded.tensors[t], np.stack([want[0][t][0], want[1][t][0]]))
    with np.load(out / "capture.npz") as npz:
        assert npz["op_ticks"].shape == (2, len(manifest["operators"]))


def test_checkpoint_saves_only_when_the_last_save_is_old(board, model, build_dir, tmp_path,
                                                         monkeypatch):
    manifest, q, labels, _ = model
    writer = _writer(tmp_path / "run", manifest, labels)
    lnk = _link(board.url)
    try:
        writer.add(0, q[0], _run(lnk, manifest, build_dir, q[0], writer))
        monkeypatch.setattr(capture, "CHECKPOINT_SECONDS", 3600.0)
        writer.checkpoint(lnk)
        assert not (tmp_path / "run" / "capture.npz").exists()
        monkeypatch.setattr(capture, "CHECKPOINT_SECONDS", 0.0)
        writer.checkpoint(lnk)
        assert json.loads((tmp_path / "run" / "run.json").read_text())["images"] == 1
    finally:
        lnk.close()


# ---------------------------------------------------------------- run_image


def _proxy(board: NativeBoard, faults: list[Fault]) -> FaultProxy:
    return FaultProxy(("127.0.0.1", int(board.url.rsplit(":", 1)[1])), faults)


def test_run_image_returns_the_devices_tensors(board, model, build_dir, tmp_path):
    manifest, q, labels, want = model
    writer = _writer(tmp_path / "run", manifest, labels)
    lnk = _link(board.url)
    try:
        _assert_tflm(_run(lnk, manifest, build_dir, q[2], writer, 2), want[2], manifest)
    finally:
        lnk.close()
    assert writer.recoveries == [] and lnk.counters["retries"] == 0


def test_run_image_retries_a_damaged_answer_after_a_new_handshake(board, model, build_dir,
                                                                   tmp_path):
    manifest, q, labels, want = model
    writer = _writer(tmp_path / "run", manifest, labels)
    checked: list[proto.Info] = []

    def check(info: proto.Info) -> None:
        checked.append(info)
        capture.check_info(info, manifest, build_dir)

    with _proxy(board, [Fault(IN_RUN, "flip", DOWN, 0x40)]) as proxy:
        lnk = _link(proxy.url)
        try:
            res = _run(lnk, manifest, build_dir, q[0], writer, check=check)
        finally:
            lnk.close()
        assert proxy.applied  # the flip happened, inside the RUN answer
    _assert_tflm(res, want[0], manifest)
    assert len(checked) == 1  # the retry's HELLO, checked again
    assert [(r["image"], r["attempt"]) for r in writer.recoveries] == [(0, 1)]
    assert lnk.counters["retries"] == 1 and lnk.counters["reconnects"] == 0


def test_run_image_reconnects_when_the_port_went_away(board, model, build_dir, tmp_path):
    manifest, q, labels, want = model
    writer = _writer(tmp_path / "run", manifest, labels)
    with _proxy(board, [Fault(IN_RUN, "disconnect", DOWN)]) as proxy:
        lnk = _link(proxy.url)
        try:
            res = _run(lnk, manifest, build_dir, q[1], writer, 1)
        finally:
            lnk.close()
        assert proxy.connections == 2
    _assert_tflm(res, want[1], manifest)
    assert lnk.counters["reconnects"] == 1 and lnk.counters["retries"] == 1
    assert "went away" in writer.recoveries[0]["error"]


def test_run_image_gives_up_after_its_retries(board, model, build_dir, tmp_path):
    manifest, q, labels, _ = model
    writer = _writer(tmp_path / "run", manifest, labels)
    lnk = _link(board.url, timeout=OFF_TIMEOUT)
    try:
        board.power_off()  # the port stays open; nothing answers any more
        with pytest.raises(link.LinkError, match=r"image 0: .*gave up after 2 retries"):
            _run(lnk, manifest, build_dir, q[0], writer, retries=2)
    finally:
        lnk.close()
    assert [r["attempt"] for r in writer.recoveries] == [1, 2, 3]
    assert lnk.counters["retries"] == 2


def test_run_image_does_not_retry_a_model_mismatch(board, model, build_dir, tmp_path):
    manifest, q, labels, _ = model
    writer = _writer(tmp_path / "run", manifest, labels)

    def other_model(info: proto.Info) -> None:
        raise MismatchError(f"the device runs model sha256 {info.model_sha256}")

    with _proxy(board, [Fault(IN_RUN, "flip", DOWN, 0x40)]) as proxy:
        lnk = _link(proxy.url)
        try:
            with pytest.raises(MismatchError, match="the device runs model"):
                _run(lnk, manifest, build_dir, q[0], writer, check=other_model)
        finally:
            lnk.close()
    assert len(writer.recoveries) == 1 and lnk.counters["retries"] == 1
