"""The emulated board's input bank memory (device/boards.write_memory_bank): a bank holds
the first inputs that fit in it and no more, whatever the test set's size."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tinyscope.device import boards
from tinyscope.device import protocol as proto

REPO = Path(__file__).resolve().parents[2]


def test_the_bank_size_is_the_one_the_firmware_serves():
    board_c = (REPO / "firmware/boards/qemu-mps2-an386/board.c").read_text()
    m = re.search(r"\*capacity = (\d+)u << (\d+);", board_c)
    assert m, "board_input_bank() of qemu-mps2-an386 no longer sets its capacity as N << S"
    assert int(m.group(1)) << int(m.group(2)) == boards.AN386_PSRAM
    for name in ("qemu", "qemu-mps2-an386"):
        assert boards.EMULATORS[name].input_bank_bytes == boards.AN386_PSRAM


def test_a_test_set_larger_than_the_bank_memory_fills_it_and_no_more(tmp_path):
    """1000 MobileNet-class inputs (96x96x3 int8, 27.6 MB) made QEMU refuse the bank and the
    capture fail with "connection refused": the bank now holds the first 606."""
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, (1000, 96, 96, 3), dtype=np.int8)
    bank = tmp_path / "bank.bin"
    count = boards.write_memory_bank(bank, q)
    head = len(proto.input_bank(q[:0]))
    assert count == (boards.AN386_PSRAM - head) // q[0].nbytes == 606
    assert bank.stat().st_size <= boards.AN386_PSRAM
    assert bank.read_bytes() == proto.input_bank(q[:count])
    assert boards.write_memory_bank(bank, q[:10]) == 10
    assert bank.read_bytes() == proto.input_bank(q[:10])
