"""``tinyscope flash`` and ``tinyscope stop``: put the firmware on a board, stop an emulator."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyscope.device.boards import (
    DEFAULT_STATE_DIR,
    EMULATORS,
    PORT_FILE,
    REAL_BOARDS,
    build_firmware,
    canonical_board,
    check_board,
    flash_real,
    start,
    stop,
)


def _cmd_flash(args: argparse.Namespace) -> int:
    check_board(args.board)
    board_name = canonical_board(args.board)
    elf = Path(args.elf) if args.elf else build_firmware(args.model_dir, board_name,
                                                         args.arena_bytes)
    if board_name in REAL_BOARDS:
        flash_real(board_name, elf)
        print(f"{board_name} runs {elf}")
        print(f"capture with: tinyscope capture --port auto --build {args.model_dir} "
              "--out RUN_DIR")
        return 0
    machine = EMULATORS[board_name].machine
    old = stop(args.state_dir)  # flashing replaces what the board ran before
    if old:
        print(f"stopped the previous QEMU (pid {old})")
    board = start(elf, args.state_dir, machine)
    print(f"QEMU {machine} runs {elf} (pid {board.pid})")
    print(f"serial port: {board.url}  (written to {Path(args.state_dir) / PORT_FILE})")
    print("capture with: tinyscope capture --port auto --build BUILD_DIR --out RUN_DIR")
    print("stop with `make stop` (or tinyscope stop)")
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    pid = stop(args.state_dir)
    print(f"stopped QEMU (pid {pid})" if pid else "no QEMU was running")
    return 0


def add_cli(sub) -> None:
    f = sub.add_parser(
        "flash", help="build the firmware and put it on the board (QEMU or a real board)",
        description="Build firmware/build/<board>/firmware.elf for MODEL_DIR. Emulated boards "
        "(qemu = mps2-an386; netduinoplus2 runs the nucleo-f446re image) boot in "
        "qemu-system-arm in the background: the serial port URL is written to STATE_DIR/port; "
        "stop with 'tinyscope stop'. Real boards (nucleo-f446re) are programmed with openocd "
        "or st-flash. See docs/boards.md.",
    )
    f.add_argument("--board", default="qemu",
                   help="qemu (default), netduinoplus2 (emulated) or nucleo-f446re")
    f.add_argument("--model-dir", default="build/default",
                   help="directory with model_data.cc (from tinyscope convert)")
    f.add_argument("--elf", help="boot this ELF instead of building one")
    f.add_argument("--arena-bytes", type=int, help="size of the firmware's tensor arena")
    f.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR),
                   help="where the port, pid and log files go (default: build/qemu)")
    f.set_defaults(func=_cmd_flash)
    s = sub.add_parser("stop", help="stop the emulated board started by 'tinyscope flash'")
    s.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR))
    s.set_defaults(func=_cmd_stop)
