"""Build and "flash" the firmware: the emulated board runs in qemu-system-arm in the background.

``tinyscope flash`` (what ``make flash`` runs) builds ``firmware/build/<board>/firmware.elf``
for a model directory and boots it in QEMU with the UART on a loopback TCP socket; the
pyserial URL (``socket://127.0.0.1:PORT``) goes to ``build/qemu/port`` and the QEMU pid to
``build/qemu/qemu.pid``. ``tinyscope stop`` (``make stop``) ends that QEMU.

QEMU runs with ``-icount shift=0``: virtual time advances 1 ns per instruction, so the
firmware's 25 MHz SysTick ticks once per 40 instructions and TIMING is a deterministic
instruction count, independent of the host machine's speed and load.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tinyscope.errors import DeviceError, TinyscopeError

REPO_ROOT = Path(__file__).resolve().parents[3]
FIRMWARE_DIR = REPO_ROOT / "firmware"
DEFAULT_STATE_DIR = Path("build/qemu")
PORT_FILE = "port"
PID_FILE = "qemu.pid"
LOG_FILE = "qemu.log"
QMP_FILE = "qmp.sock"
QEMU = "qemu-system-arm"
QEMU_MACHINE = "mps2-an386"
QEMU_START_TIMEOUT = 10.0  # s until QEMU listens on its serial socket
QEMU_STOP_TIMEOUT = 5.0  # s between SIGTERM and SIGKILL
POLL_INTERVAL = 0.02
BUILD_TIMEOUT = 600.0
# Board names accepted by `tinyscope flash --board` and the firmware Makefile's BOARD.
QEMU_BOARDS = ("qemu", "qemu-mps2-an386")


def build_firmware(
    model_dir: str | Path, board: str = "qemu", arena_bytes: int | None = None,
    quiet: bool = False, out_dir: str | Path | None = None,
) -> Path:
    """``make -C firmware BOARD=... MODEL_DIR=...``; returns the ELF path.

    The image lands in ``firmware/build/<board>/`` unless ``out_dir`` is given (tests build
    their own images there, so they never race a user's ``make flash``).
    """
    model_dir = Path(model_dir).resolve()
    if not (model_dir / "model_data.cc").is_file():
        raise TinyscopeError(
            f"{model_dir}/model_data.cc not found: run 'tinyscope convert MODEL.keras --out "
            f"{model_dir}' (or make convert) first"
        )
    if shutil.which("arm-none-eabi-gcc") is None:
        raise TinyscopeError("arm-none-eabi-gcc not found: run 'make setup' (Debian package "
                             "gcc-arm-none-eabi + libnewlib-arm-none-eabi)")
    cmd = ["make", "--no-print-directory", "-C", str(FIRMWARE_DIR), f"BOARD={board}",
           f"MODEL_DIR={model_dir}"]
    if arena_bytes is not None:
        cmd.append(f"ARENA_BYTES={int(arena_bytes)}")
    out = FIRMWARE_DIR / "build" / board
    if out_dir is not None:
        out = Path(out_dir).resolve()
        cmd.append(f"OUT={out}")
    proc = subprocess.run(cmd, capture_output=quiet, text=True, timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        detail = f":\n{proc.stdout}{proc.stderr}" if quiet else " (see the output above)"
        raise TinyscopeError(f"firmware build failed{detail}")
    return out / "firmware.elf"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    """True once something accepts connections on 127.0.0.1:port.

    QEMU's serial socket runs with wait=on: this first connection lets the guest start; the
    firmware sends nothing unasked, so nothing is lost when the probe hangs up.
    """
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@dataclass
class QemuBoard:
    """A QEMU process running a firmware image, reachable at ``url``."""

    pid: int
    port: int
    state_dir: Path

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"


def qemu_command(elf: Path, port: int, qmp: Path | None = None) -> list[str]:
    cmd = [
        QEMU, "-M", QEMU_MACHINE, "-display", "none", "-monitor", "none",
        "-icount", "shift=0", "-kernel", str(elf),
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
    ]
    if qmp is not None:
        cmd += ["-qmp", f"unix:{qmp},server=on,wait=off"]
    return cmd


def running(state_dir: str | Path = DEFAULT_STATE_DIR) -> QemuBoard | None:
    """The QEMU started by :func:`start` for ``state_dir`` if it still runs."""
    state = Path(state_dir)
    try:
        pid = int((state / PID_FILE).read_text().strip())
        url = (state / PORT_FILE).read_text().strip()
        port = int(url.rsplit(":", 1)[1])
    except (OSError, ValueError, IndexError):
        return None
    if not _is_our_qemu(pid):
        return None
    return QemuBoard(pid, port, state)


def _is_our_qemu(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and Path(cmdline[0].decode(errors="replace")).name == QEMU


def start(elf: str | Path, state_dir: str | Path = DEFAULT_STATE_DIR) -> QemuBoard:
    """Boot ``elf`` in QEMU in the background; write the port and pid files."""
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise TinyscopeError(f"{elf} not found: build the firmware first (make firmware)")
    if shutil.which(QEMU) is None:
        raise TinyscopeError(f"{QEMU} not found: run 'make setup' (Debian package qemu-system-arm)")
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    old = running(state)
    if old is not None:
        raise TinyscopeError(
            f"QEMU already runs (pid {old.pid}, {old.url}); stop it first with 'make stop' "
            f"or 'tinyscope stop --state-dir {state}'"
        )
    for name in (PORT_FILE, PID_FILE, QMP_FILE):
        (state / name).unlink(missing_ok=True)
    last_log = ""
    for _attempt in range(3):  # another process may grab the free port before QEMU does
        port = _free_port()
        log = (state / LOG_FILE).open("w")
        proc = subprocess.Popen(
            qemu_command(elf, port, (state / QMP_FILE).resolve()), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + QEMU_START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _listening(port):
                (state / PID_FILE).write_text(f"{proc.pid}\n")
                (state / PORT_FILE).write_text(f"socket://127.0.0.1:{port}\n")
                return QemuBoard(proc.pid, port, state)
            time.sleep(POLL_INTERVAL)
        if proc.poll() is None:
            _terminate(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(QEMU_STOP_TIMEOUT)
        last_log = (state / LOG_FILE).read_text(errors="replace")
    raise DeviceError(f"QEMU did not start ({state / LOG_FILE}):\n{last_log.strip()}")


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + QEMU_STOP_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(POLL_INTERVAL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def stop(state_dir: str | Path = DEFAULT_STATE_DIR) -> int | None:
    """Stop the QEMU of ``state_dir``; returns its pid, or None if none was running."""
    state = Path(state_dir)
    board = running(state)
    if board is not None:
        _terminate(board.pid)
    for name in (PORT_FILE, PID_FILE, QMP_FILE):
        (state / name).unlink(missing_ok=True)
    return board.pid if board else None


@contextlib.contextmanager
def emulated_board(elf: str | Path, state_dir: str | Path) -> Iterator[QemuBoard]:
    """QEMU running ``elf`` for the duration of a ``with`` block; always stopped after."""
    board = start(elf, state_dir)
    try:
        yield board
    finally:
        stop(state_dir)


def _check_board(board: str) -> None:
    if board not in QEMU_BOARDS:
        raise TinyscopeError(
            f"board {board!r} has no flash runner yet; boards: {', '.join(QEMU_BOARDS)}. "
            "A real board is flashed with its own tool (openocd, pyocd) and reached with "
            "--port /dev/ttyACM0"
        )


def _cmd_flash(args: argparse.Namespace) -> int:
    _check_board(args.board)
    elf = Path(args.elf) if args.elf else build_firmware(args.model_dir, args.board,
                                                         args.arena_bytes)
    old = stop(args.state_dir)  # flashing replaces what the board ran before
    if old:
        print(f"stopped the previous QEMU (pid {old})")
    board = start(elf, args.state_dir)
    print(f"QEMU {QEMU_MACHINE} runs {elf} (pid {board.pid})")
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
        "flash", help="build the firmware and boot it on the emulated board (QEMU)",
        description="Build firmware/build/<board>/firmware.elf for MODEL_DIR and boot it in "
        "qemu-system-arm (mps2-an386, Cortex-M4) in the background. The serial port URL is "
        "written to STATE_DIR/port; stop with 'tinyscope stop'.",
    )
    f.add_argument("--board", default="qemu", help="board (default: qemu)")
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
