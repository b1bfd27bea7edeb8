"""Verified captures on the emulated board: every layer of every image checked by on-device
digests against TFLM; the fault proof (a firmware built with FAULT=op:3,index:17) shows the
whole chain: the digest differs, the tensor is fetched, compare names op 3, the image,
element 17 and its channel, and `compare --max-lsb 0` fails."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tinyscope import cli
from tinyscope.analysis import compare
from tinyscope.analysis.verify import verify_capture
from tinyscope.analysis.verify_boards import verify_on_boards
from tinyscope.convert import manifest as manifest_mod
from tinyscope.data import quantized_test_inputs
from tinyscope.device import boards

REPO = Path(__file__).resolve().parents[2]
N_IMAGES = 4
FAULT_OP, FAULT_INDEX = 3, 17

pytestmark = pytest.mark.emulator


def _inputs(build_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    _, q, labels = quantized_test_inputs(manifest_mod.load(build_dir), N_IMAGES, None)
    return q, labels


def test_verified_capture_is_first_class(build_dir, elf, tmp_path):
    q, labels = _inputs(build_dir)
    out, cache = tmp_path / "run", tmp_path / "cache"
    with boards.emulated_board(elf, tmp_path / "qemu") as board:
        run = verify_capture(board.url, build_dir, out, q, labels, progress=False,
                             digest_cache=cache)
        # the same inputs again (a firmware change, say): TFLM's digests from the cache
        again = verify_capture(board.url, build_dir, tmp_path / "again", q, labels,
                               progress=False, digest_cache=cache)
    assert run["verify"]["digests_from_cache"] == 0
    assert again["verify"]["digests_from_cache"] == N_IMAGES
    assert again["verify"]["digest_cache"] == run["verify"]["digest_cache"]
    with np.load(out / "capture.npz") as z, np.load(tmp_path / "again/capture.npz") as z2:
        assert np.array_equal(z["reference_digests"], z2["reference_digests"])
    man = manifest_mod.load(build_dir)
    assert run["layers"] == "verify" and run["images"] == N_IMAGES
    assert run["verify"]["mismatched_images"] == 0
    assert [r["mismatches"] for r in run["verify"]["per_op"]] == [0] * len(man["operators"])
    with np.load(out / "capture.npz") as z:
        assert np.array_equal(z["device_digests"], z["reference_digests"])
        assert z["device_digests"].shape == (N_IMAGES, len(man["operators"]))
    metrics, _ = compare.compare(out, build_dir, progress=False)
    assert metrics["device_equals_tflm"]
    by_tensor = {r["index"]: r for r in metrics["tensors"]}
    for op in man["operators"]:  # every layer, verified on every image
        assert by_tensor[op["outputs"][0]]["verified"] == {"images": N_IMAGES, "mismatches": 0}
    assert metrics["verify"]["elements"] == []


@pytest.fixture(scope="module")
def fault_elf(build_dir, tmp_path_factory) -> Path:
    """The firmware built with FAULT=op:3,index:17 (test builds only)."""
    fw = tmp_path_factory.mktemp("fault-fw")
    subprocess.run(["make", "-s", "-C", str(REPO / "firmware"), "BOARD=qemu",
                    f"MODEL_DIR={build_dir}", f"OUT={fw}",
                    f"FAULT=op:{FAULT_OP},index:{FAULT_INDEX}"],
                   check=True, capture_output=True, timeout=600)
    return fw / "firmware.elf"


def test_fault_is_found_and_named_to_the_element(build_dir, fault_elf, tmp_path):
    q, labels = _inputs(build_dir)
    out = tmp_path / "run"
    with boards.emulated_board(fault_elf, tmp_path / "qemu") as board:
        run = verify_capture(board.url, build_dir, out, q, labels, progress=False)
    per_op = run["verify"]["per_op"]
    assert [r["mismatches"] for r in per_op[:FAULT_OP]] == [0] * FAULT_OP
    assert per_op[FAULT_OP]["mismatches"] == N_IMAGES  # every image: the digest differs
    man = manifest_mod.load(build_dir)
    t = man["operators"][FAULT_OP]["outputs"][0]
    with np.load(out / "capture.npz") as z:  # ... and the tensor was fetched in full
        assert all(f"m{t}_{i}" in z.files for i in range(N_IMAGES))
    metrics, _ = compare.compare(out, build_dir, progress=False)
    first = metrics["verify"]["elements"][0]
    shape = next(x["shape"] for x in man["tensors"] if x["index"] == t)
    assert (first["op_index"], first["image"], first["element"]) == (FAULT_OP, 0, FAULT_INDEX)
    assert first["channel"] == FAULT_INDEX % shape[-1]
    assert abs(first["device"] - first["tflm"]) == 1  # the lowest bit flipped
    assert not metrics["device_equals_tflm"]
    code = cli.main(["compare", str(out), "--build", str(build_dir), "--max-lsb", "0",
                     "--panels", "0", "--no-progress"])
    assert code != 0
    saved = json.loads((out / "report" / "metrics.json").read_text())
    assert saved["verify"]["elements"][0]["element"] == FAULT_INDEX


def test_two_boards_shard_and_merge_into_one_capture(build_dir, fault_elf, tmp_path):
    """--jobs 2: two emulated boards (input banks), one merged capture with the images'
    global indices: the same mismatches, digests and fetched tensors as one board."""
    q, labels = _inputs(build_dir)
    out = tmp_path / "run"
    run = verify_on_boards(fault_elf, build_dir, out, q, labels, jobs=2,
                           state_dir=tmp_path / "jobs", progress=False)
    assert run["jobs"] == 2 and run["images"] == N_IMAGES
    assert run["inputs_from"] == "input bank (USE_INPUT)"
    _assert_fault_in_every_image(run, out, build_dir, q)
    assert not (out / "shard0").exists()
    metrics, _ = compare.compare(out, build_dir, progress=False)
    assert {e["image"] for e in metrics["verify"]["elements"]} == set(range(N_IMAGES))


def test_pipelined_bank_runs_survive_link_faults_without_losing_or_doubling_an_image(
        build_dir, elf, tmp_path):
    """Inputs from the input bank, the next images' USE_INPUT + RUN queued on the link while
    the device runs the current one (device/pipeline.py), through the fault proxy: bit
    flips and a dropped byte in both directions, a stall longer than the timeout and a
    device reset (QMP system_reset) hit requests in flight. Every image is verified once,
    its digests equal TFLM's."""
    from tinyscope.device import protocol as proto
    from tinyscope.device.faults import DOWN, UP, Fault, FaultProxy

    n = 16
    _, q, labels = quantized_test_inputs(manifest_mod.load(build_dir), n, None)
    bank = tmp_path / "bank.bin"
    bank.write_bytes(proto.input_bank(q))
    timeout = 2.0
    # a verified image of the default model: ~140 bytes down, 2 requests (~32 bytes) up;
    # the faults a few images apart (a retry's HELLO is ~110 bytes down, ~12 up)
    faults = [Fault(100, "flip", UP, 0x10), Fault(300, "flip", DOWN, 0x04),
              Fault(330, "drop", UP), Fault(900, "drop", DOWN),
              Fault(1_500, "stall", DOWN, timeout + 0.5), Fault(2_100, "reset", DOWN)]
    seen: list[int] = []
    with boards.emulated_board(elf, tmp_path / "qemu", input_bank=bank) as board, \
            FaultProxy(("127.0.0.1", board.port), faults,
                       qmp=board.state_dir / boards.QMP_FILE) as proxy:
        run = verify_capture(proxy.url, build_dir, tmp_path / "run", q, labels,
                             progress=False, bank=bank, timeout=timeout,
                             on_image=lambda: seen.append(1))
    assert sorted(f.kind for f in proxy.applied) == sorted(f.kind for f in faults)
    assert run["complete"] and run["images"] == n and len(seen) == n
    assert run["inputs_from"] == "input bank (USE_INPUT)"
    assert run["verify"]["mismatched_images"] == 0
    with np.load(tmp_path / "run" / "capture.npz") as z:
        assert np.array_equal(z["device_digests"], z["reference_digests"])
        assert z["device_digests"].shape[0] == len(z["op_ticks"]) == n
        for i in range(n):
            assert np.array_equal(z[f"input_{i}"].reshape(-1), q[i].reshape(-1))


def test_reference_digests_run_in_the_worker_process_and_equal_tflm(build_dir):
    """The TFLM digests come from the reference worker process, batch by batch, and equal
    the digests of the TFLM interpreter's tensors computed here."""
    from tinyscope.analysis import references, verify
    from tinyscope.analysis.reference import tflm_tensors
    from tinyscope.device import protocol as proto

    q, _ = _inputs(build_dir)
    man = manifest_mod.load(build_dir)
    model = manifest_mod.model_bytes(build_dir, man)
    outs = [int(op["outputs"][0]) for op in man["operators"]]
    refs = verify.ReferenceDigests(model, q, outs, batch=2)
    try:
        got = np.stack([refs.get(i) for i in range(len(q))])
    finally:
        refs.close()
    per_image = tflm_tensors(model, q)
    want = np.stack([proto.tensor_digests(np.stack([d[t].reshape(-1) for d in per_image]))
                     for t in outs], axis=1)
    assert np.array_equal(got, want)
    worker = references._WORKERS[verify.DIGEST_WORKER].proc
    assert worker is not None and worker.pid != __import__("os").getpid()


def test_a_reference_worker_that_aborts_fails_the_verify_cleanly(build_dir, elf, tmp_path,
                                                                 monkeypatch):
    """TFLM aborting in the digest worker (as it does on some models) is a ReferenceError
    naming TFLM, not the end of tinyscope (issue 19)."""
    from tinyscope.analysis import references

    monkeypatch.setenv(references.FAULT_ENV, "tflm_digests")
    q, labels = _inputs(build_dir)
    with boards.emulated_board(elf, tmp_path / "qemu") as board, \
            pytest.raises(references.ReferenceError, match="TFLM .digests.*aborted"):
        verify_capture(board.url, build_dir, tmp_path / "run", q, labels, progress=False)


def test_interrupted_verify_resumes_without_losing_or_doubling_an_image(build_dir, fault_elf,
                                                                        tmp_path):
    """Ctrl-C after 2 of 4 images: 2 complete images saved with the --resume command; the
    resumed capture verifies images 2 and 3 only. The fault firmware makes every image
    mismatch, so an image lost or done twice would show in the mismatch list and counts."""
    from tinyscope.device.capture import CaptureInterrupted

    q, labels = _inputs(build_dir)
    out = tmp_path / "run"
    seen: list[int] = []

    def ctrl_c() -> None:
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with boards.emulated_board(fault_elf, tmp_path / "qemu") as board:
        with pytest.raises(CaptureInterrupted, match=r"2 complete images saved in .*--resume"):
            verify_capture(board.url, build_dir, out, q, labels, progress=False,
                           on_image=ctrl_c)
        partial = json.loads((out / "run.json").read_text())
        assert (partial["complete"], partial["images"]) == (False, 2)
        run = verify_capture(board.url, build_dir, out, q, labels, progress=False,
                             resume=True, on_image=lambda: seen.append(1))
    assert len(seen) == 2 + 2  # the resumed run verified the two images left, no more
    assert run["complete"] and run["images"] == N_IMAGES
    _assert_fault_in_every_image(run, out, build_dir, q)


def test_sharded_verify_survives_a_killed_board_and_resumes_after_ctrl_c(
        build_dir, fault_elf, tmp_path):
    """--jobs 2 on 8 images: board 0 is killed (SIGKILL) after the 2nd image; its shard
    goes on, on a new board, from its last complete image. Then a Ctrl-C after 3 images of
    a second capture, and `tinyscope capture --resume` (2 boards again, from the ordinary
    firmware): the images verified before the Ctrl-C keep their fault mismatches (not done
    again), the others are verified once on the ordinary firmware."""
    import os
    import signal

    n = 8
    _, q, labels = quantized_test_inputs(manifest_mod.load(build_dir), n, None)
    state = tmp_path / "jobs"
    seen: list[int] = []

    def kill_board0() -> None:
        seen.append(1)
        if len(seen) == 2:
            os.kill(int((state / "job0-0" / "qemu.pid").read_text()), signal.SIGKILL)

    out = tmp_path / "run"
    run = verify_on_boards(fault_elf, build_dir, out, q, labels, jobs=2, state_dir=state,
                           progress=False, on_image=kill_board0)
    assert run["images"] == n and run["complete"]
    assert [m["image"] for m in run["verify"]["mismatches"]] == list(range(n))
    assert run["verify"]["per_op"][FAULT_OP]["mismatches"] == n
    assert len(seen) == n  # each image verified once, the killed board's ones included

    seen.clear()

    def ctrl_c() -> None:
        seen.append(1)
        if len(seen) == 3:  # a real SIGINT, as Ctrl-C sends: it wakes the waiting main thread
            os.kill(os.getpid(), signal.SIGINT)

    out2 = tmp_path / "run2"
    from tinyscope.device.capture import CaptureInterrupted

    # more images than the two boards can have in flight when Ctrl-C lands (the emulated
    # board's requests are pipelined, pipeline.DEPTH images each): with 8, all 8 could finish
    from tinyscope.device.pipeline import DEPTH

    n = 3 + 2 * DEPTH + 7
    _, q, labels = quantized_test_inputs(manifest_mod.load(build_dir), n, None)

    # Python's own Ctrl-C handler, as in a terminal: a process started in the background
    # by a non-interactive shell (a CI script's `cmd &`) inherits SIGINT ignored
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(CaptureInterrupted, match="--resume"):
            verify_on_boards(fault_elf, build_dir, out2, q, labels, jobs=2,
                             state_dir=tmp_path / "jobs2", progress=False, on_image=ctrl_c)
    finally:
        signal.signal(signal.SIGINT, before)
    partial = json.loads((out2 / "run.json").read_text())
    assert partial["complete"] is False and partial["jobs"] == 2
    done = partial["images"]
    assert 3 <= done < n
    code = cli.main(["capture", "--resume", str(out2), "--no-progress", "--state-dir",
                     str(tmp_path / "qemu-cli")])
    assert code == 0
    final = json.loads((out2 / "run.json").read_text())
    assert final["complete"] and final["images"] == n and final["jobs"] == 2
    assert final["verify"]["mismatched_images"] == done  # only those from the fault firmware
    with np.load(out2 / "capture.npz") as z:
        assert z["device_digests"].shape[0] == n
        for i in range(n):
            assert np.array_equal(z[f"input_{i}"].reshape(-1), q[i].reshape(-1))
    assert not (out2 / "shard0").exists()


def _assert_fault_in_every_image(run: dict, out, build_dir, q) -> None:
    """The fault firmware's op FAULT_OP differs in every image: each is a mismatch, its
    tensor fetched and stored, with the digests, ticks and the inputs as sent."""
    assert [m["image"] for m in run["verify"]["mismatches"]] == list(range(N_IMAGES))
    assert run["verify"]["per_op"][FAULT_OP]["mismatches"] == N_IMAGES
    man = manifest_mod.load(build_dir)
    t = man["operators"][FAULT_OP]["outputs"][0]
    with np.load(out / "capture.npz") as z:
        assert z["device_digests"].shape == (N_IMAGES, len(man["operators"]))
        assert len(z["digest_ticks"]) == len(z["op_ticks"]) == N_IMAGES
        for i in range(N_IMAGES):
            assert np.array_equal(z[f"input_{i}"].reshape(-1), q[i].reshape(-1))
            assert f"m{t}_{i}" in z.files


def test_inputs_beyond_the_bank_memory_come_by_set_input(build_dir, elf, tmp_path,
                                                         monkeypatch):
    """A test set larger than the emulated board's bank memory (here made room for one
    input per board) is verified whole: each board's bank holds its first input, the rest
    go by SET_INPUT."""
    import dataclasses

    small = {k: dataclasses.replace(e, input_bank_bytes=e.input_bank_bytes and 64 + 784)
             for k, e in boards.EMULATORS.items()}
    monkeypatch.setattr(boards, "EMULATORS", small)
    q, labels = _inputs(build_dir)
    out = tmp_path / "run"
    run = verify_on_boards(elf, build_dir, out, q, labels, jobs=2,
                           state_dir=tmp_path / "jobs", progress=False)
    assert run["images"] == N_IMAGES and run["verify"]["mismatched_images"] == 0
    assert "SET_INPUT for the rest" in run["inputs_from"]
    with np.load(out / "capture.npz") as z:
        assert np.array_equal(z["device_digests"], z["reference_digests"])
