"""An input bank in a real board's flash: as many inputs as fit beside the model are linked
into the firmware image (``make INPUT_BANK=bank.bin``); USE_INPUT serves them, SET_INPUT the
rest (docs/protocol.md, docs/boards.md).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tinyscope.device import boards
from tinyscope.device import protocol as proto
from tinyscope.errors import TinyscopeError

FLASH_BANK_MARGIN = 256  # bytes of flash left free beside a linked input bank


def board_flash_bytes(board: str) -> int:
    """BOARD_FLASH_BYTES of ``firmware/boards/<board>/board.mk``."""
    mk = boards.FIRMWARE_DIR / "boards" / boards.firmware_board(board) / "board.mk"
    for line in mk.read_text().splitlines():
        if line.startswith("BOARD_FLASH_BYTES"):
            return int(line.split("=", 1)[1].strip())
    raise TinyscopeError(f"{mk} sets no BOARD_FLASH_BYTES")


def image_flash_bytes(elf: Path) -> int:
    """Flash an image uses: .text + .ARM.exidx + .data (its load copy), as fit.sh counts."""
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    return sum(int(f[1]) for f in (line.split() for line in out.splitlines())
               if len(f) >= 2 and f[0] in (".text", ".ARM.exidx", ".data"))


def build_with_flash_bank(model_dir: str | Path, board: str, inputs, out_dir: str | Path,
                          quiet: bool = True) -> tuple[Path, int, Path]:
    """The firmware of a board without bank memory with as many of ``inputs`` (int8,
    ``(N, ...)``) linked into its flash as fit beside the model: ``(elf, count, bank file)``.
    The image is built once without a bank to measure the free flash, then with the bank
    (fit.sh checks the result). ``count`` may be 0 (no room) or less than N: USE_INPUT
    serves the first ``count`` inputs, SET_INPUT the rest."""
    out_dir = Path(out_dir)
    plain = boards.build_firmware(model_dir, board, quiet=quiet, out_dir=out_dir / "plain")
    free = board_flash_bytes(board) - image_flash_bytes(plain) - FLASH_BANK_MARGIN
    q = np.ascontiguousarray(inputs)  # int8, or float32 for a model with a float32 input
    if q.dtype != np.float32:
        q = q.astype(np.int8)
    count = proto.input_bank_fit(q, free)
    bank = out_dir / "input_bank.bin"
    if count == 0:
        return plain, 0, bank
    bank.parent.mkdir(parents=True, exist_ok=True)
    bank.write_bytes(proto.input_bank(q[:count]))
    elf = boards.build_firmware(model_dir, board, quiet=quiet, out_dir=out_dir / "bank",
                         input_bank=bank)
    return elf, count, bank
