"""The nucleo-f446re image, unchanged, on QEMU netduinoplus2 (STM32F405, same USART block).

QEMU emulates the USARTs but not RCC, GPIO or DWT: the image must time out of its clock
set-up, keep HSI, fall back to SysTick and still stream bit-exact tensors over USART2 (the
second -serial). The capture runs through the same code a user runs against a real board.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from tinyscope import data
from tinyscope.convert import manifest as manifest_mod
from tinyscope.device import boards, capture, flash_bank, link

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]
N_IMAGES = 6


@pytest.fixture(scope="module")
def elf(build_dir, tmp_path_factory) -> Path:
    return boards.build_firmware(build_dir, "nucleo-f446re", quiet=True,
                                 out_dir=tmp_path_factory.mktemp("nucleo"))


def test_nucleo_image_captures_bit_exact_tensors_on_netduinoplus2(build_dir, elf, tmp_path):
    from tinyscope.analysis import reference

    manifest = manifest_mod.load(build_dir)
    model = manifest_mod.model_bytes(build_dir, manifest)
    _, q, labels = data.quantized_test_inputs(manifest, N_IMAGES)
    machine = boards.EMULATORS["netduinoplus2"].machine
    with boards.emulated_board(elf, tmp_path / "qemu", machine) as board:
        # --port auto finds this emulator through its state dir, as after `make flash`.
        url = boards.resolve_port("auto", tmp_path / "qemu")
        assert url == board.url
        start = time.monotonic()
        run = capture.capture(url, build_dir, tmp_path / "run", q, labels, "all",
                              progress=False)
        seconds = time.monotonic() - start
    assert run["complete"] and run["images"] == N_IMAGES, run.get("error")
    assert run["bad_frames"] == 0 and run["device_bad_frames"] == 0
    # No RCC: the PLL never locks, the image stays on the 16 MHz HSI and says so; no DWT:
    # the board name says the ticks are SysTick's.
    assert run["board"].startswith("nucleo-f446re") and "SysTick" in run["board"]
    assert run["cpu_hz"] == run["tick_hz"] == 16_000_000
    # The arena is the model's need planned on the host (8-byte pointers): the device's own
    # plan (4-byte pointers) fits it with at most a few hundred bytes to spare.
    assert 0 < run["arena_bytes"] - run["arena_used"] <= 1024
    assert run["model_sha256"] == manifest["model_sha256"]
    expected = reference.tflm_tensors(model, q)
    activations = [i for i in manifest["activations"] if i != manifest["input"]["index"]]
    with np.load(tmp_path / "run" / "capture.npz") as npz:
        for i in range(N_IMAGES):
            for t in activations:
                got = npz[f"t{t}_{i}"]
                assert got.dtype == expected[i][t].dtype and got.shape == expected[i][t].shape
                diff = np.flatnonzero(got != expected[i][t])
                assert diff.size == 0, (
                    f"image {i} tensor {t}: {diff.size} elements differ from TFLM, first at "
                    f"{diff[0]}: {got.flat[diff[0]]} vs {expected[i][t].flat[diff[0]]}")
            out_index = manifest["output"]["index"]
            np.testing.assert_array_equal(npz[f"output_{i}"], expected[i][out_index])
    timing = run["timing"]
    assert all(v > 0 for v in timing["per_op_ticks_min"])
    print(f"netduinoplus2: {N_IMAGES} images, all layers, in {seconds:.1f} s")


def test_flash_cli_boots_netduinoplus2_and_stop_ends_it(build_dir, elf, tmp_path):
    from tinyscope import cli

    state = tmp_path / "qemu"
    try:
        assert cli.main(["flash", "--board", "netduinoplus2", "--elf", str(elf),
                         "--state-dir", str(state)]) == 0
        board = boards.running(state)
        assert board is not None
        cmdline = Path(f"/proc/{board.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[cmdline.index(b"-M") + 1] == b"netduinoplus2"
        serials = [cmdline[i + 1] for i, a in enumerate(cmdline) if a == b"-serial"]
        assert serials[0] == b"null" and serials[1].startswith(b"tcp:127.0.0.1:")
        port = link.open_port(board.url)
        try:
            info = link.Device(port).hello()
        finally:
            port.close()
        assert info.model_sha256 == manifest_mod.load(build_dir)["model_sha256"]
    finally:
        pid = boards.stop(state)
    assert pid is not None and boards.running(state) is None


def test_a_host_that_pauses_reading_loses_nothing(build_dir, elf, tmp_path):
    """QEMU's STM32 USART blocks QEMU while the host does not read. The protocol is strictly
    request/response (the host writes only after DONE), so a pause only delays the stream:
    every frame arrives intact and the board keeps serving."""
    from tinyscope.device import protocol as proto

    manifest = manifest_mod.load(build_dir)
    _, q, _ = data.quantized_test_inputs(manifest, 1)
    machine = boards.EMULATORS["netduinoplus2"].machine
    with boards.emulated_board(elf, tmp_path / "qemu", machine) as board:
        port = link.open_port(board.url)
        try:
            dev = link.Device(port)
            dev.hello()
            dev.set_input(q[0].tobytes())
            reference = dev.run(proto.RunMode.ALL)
            dev.set_input(q[0].tobytes())
            seq = dev.send(proto.FrameType.RUN,
                           proto.run_payload(proto.RunMode.ALL, (), True, True))
            time.sleep(1.5)  # the firmware streams into a host that does not read
            frames = []
            for frame in dev.frames(10.0):
                assert frame.seq == seq
                frames.append(frame)
                if frame.type in (proto.FrameType.DONE, proto.FrameType.ERROR):
                    break
            assert frames[-1].type == proto.FrameType.DONE
            assert len(frames) - 1 == reference.frames
            tensors = [proto.TensorChunk.decode(f.payload) for f in frames
                       if f.type == proto.FrameType.TENSOR]
            assert {t.tensor_index for t in tensors} == set(reference.tensors)
            assert dev.reader.bad_frames == 0
            dev.ping()
        finally:
            port.close()


def test_pll_build_times_out_to_hsi_where_rcc_is_missing(build_dir, tmp_path):
    """CLOCK=pll waits for PLL lock; QEMU has no RCC, so every ready flag reads 0: the image
    must give up, stay on HSI, say 16 MHz, and serve as usual."""
    out = tmp_path / "pll"
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT / "firmware"), "BOARD=nucleo-f446re",
         "CLOCK=pll", f"MODEL_DIR={build_dir}", f"OUT={out}"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "-DTS_BOARD_CLOCK_PLL=1" in proc.stdout
    machine = boards.EMULATORS["netduinoplus2"].machine
    with boards.emulated_board(out / "firmware.elf", tmp_path / "qemu", machine) as board:
        port = link.open_port(board.url)
        try:
            info = link.Device(port).hello()
        finally:
            port.close()
    assert info.cpu_hz == info.tick_hz == 16_000_000
    assert info.model_sha256 == manifest_mod.load(build_dir)["model_sha256"]


def test_input_bank_in_flash_serves_what_fits_and_set_input_the_rest(build_dir, tmp_path):
    """A bank linked into the Nucleo image's flash (as many inputs as fit beside the model)
    on the emulated STM32F405: USE_INPUT serves the first `count` images, SET_INPUT the
    rest, every layer verified; fit.sh counted the bank in flash (it says so)."""
    from tinyscope.analysis.verify import verify_capture

    manifest = manifest_mod.load(build_dir)
    shape = manifest["input"]["shape"][1:]
    per = int(np.prod(shape))
    many = flash_bank.board_flash_bytes("nucleo-f446re") // per + 10  # more than can fit
    q = np.random.default_rng(0).integers(-128, 128, (many, *shape), dtype=np.int8)
    elf, count, bank = flash_bank.build_with_flash_bank(build_dir, "nucleo-f446re", q,
                                                    tmp_path / "fw")
    assert 0 < count < many
    free = (flash_bank.board_flash_bytes("nucleo-f446re")
            - flash_bank.image_flash_bytes(tmp_path / "fw" / "plain" / "firmware.elf"))
    assert count * per <= free < (count + 1) * per + 512  # as many as fit
    assert flash_bank.image_flash_bytes(elf) <= flash_bank.board_flash_bytes("nucleo-f446re")
    n = count + 3  # three beyond the bank
    machine = boards.EMULATORS["netduinoplus2"].machine
    with boards.emulated_board(elf, tmp_path / "qemu", machine) as board:
        run = verify_capture(board.url, build_dir, tmp_path / "run", q[:n], np.zeros(n),
                             progress=False, bank=bank)
    assert run["input_bank"] == count and run["images_from_bank"] == count
    assert run["inputs_from"].endswith("SET_INPUT for the rest")
    assert run["complete"] and run["images"] == n
    assert run["verify"]["mismatched_images"] == 0


def test_fit_check_counts_the_input_bank_in_flash(build_dir, tmp_path):
    """A bank larger than the Nucleo's flash is refused by fit.sh with the bank's bytes."""
    from tinyscope.device import protocol as proto
    from tinyscope.errors import TinyscopeError

    shape = manifest_mod.load(build_dir)["input"]["shape"][1:]
    per = int(np.prod(shape))
    q = np.zeros((flash_bank.board_flash_bytes("nucleo-f446re") // per + 1, *shape), np.int8)
    bank = tmp_path / "bank.bin"
    bank.write_bytes(proto.input_bank(q))
    with pytest.raises(TinyscopeError, match=r"(?s)input bank \d+.*fewer inputs into the bank"):
        boards.build_firmware(build_dir, "nucleo-f446re", quiet=True, out_dir=tmp_path / "fw",
                              input_bank=bank)
