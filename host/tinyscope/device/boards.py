"""Build and flash the firmware: on an emulated board (QEMU, in the background) or a real one.

``tinyscope flash`` (what ``make flash`` runs) builds ``firmware/build/<board>/firmware.elf``
for a model directory and boots it in QEMU with the UART on a loopback TCP socket; the
pyserial URL (``socket://127.0.0.1:PORT``) goes to ``build/qemu/port`` and the QEMU pid to
``build/qemu/qemu.pid``. ``tinyscope stop`` (``make stop``) ends that QEMU.

QEMU runs with ``-icount shift=0``: virtual time advances 1 ns per instruction, so the
firmware's 25 MHz SysTick ticks once per 40 instructions and TIMING is a deterministic
instruction count, independent of the host machine's speed and load.

Other emulated boards (:data:`EMULATORS`) boot a real board's image: ``netduinoplus2``
(STM32F405) runs the very ELF built for ``nucleo-f446re``, its USART2 on the second
``-serial``. Real boards (:data:`REAL_BOARDS`) are programmed with openocd or st-flash,
whichever is installed, and reached over their USB serial port (``--port auto``).
"""

from __future__ import annotations

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

import numpy as np

from tinyscope.device import link
from tinyscope.device import protocol as proto
from tinyscope.errors import DeviceError, MismatchError, TinyscopeError

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
READY_TIMEOUT = 10.0  # s for a board with `handshake` to answer HELLO after it started
READY_RETRY = 0.3  # s before a HELLO that got no answer is sent again
POLL_INTERVAL = 0.02
BUILD_TIMEOUT = 600.0
# Board names accepted by `tinyscope flash --board` and the firmware Makefile's BOARD.
QEMU_BOARDS = ("qemu", "qemu-mps2-an386")
FLASH_TIMEOUT = 120.0  # s for openocd / st-flash


@dataclass(frozen=True)
class Emulator:
    """A QEMU machine that boots the image of a firmware board."""

    machine: str  # qemu-system-arm -M
    firmware_board: str  # BOARD= of firmware/Makefile whose ELF it runs
    serial_index: int  # the firmware's host UART is the (serial_index+1)-th -serial
    # QEMU's STM32 USART throws away bytes that arrive before the firmware enables it: such a
    # board counts as started once it has answered a HELLO (see _wait_ready).
    handshake: bool = False
    # Where QEMU's generic loader puts an input bank before boot (board_input_bank() in the
    # firmware's board.c); None: the board has no bank memory.
    input_bank_addr: int | None = None
    # Its size in bytes (board_input_bank()'s capacity): a bank holds as many inputs as fit.
    input_bank_bytes: int = 0


AN386_PSRAM = 16 << 20  # the 16 MB PSRAM of mps2-an386 at 0x21000000
EMULATORS = {
    "qemu": Emulator(QEMU_MACHINE, "qemu", 0, input_bank_addr=0x21000000,
                     input_bank_bytes=AN386_PSRAM),
    "qemu-mps2-an386": Emulator(QEMU_MACHINE, "qemu-mps2-an386", 0, input_bank_addr=0x21000000,
                                input_bank_bytes=AN386_PSRAM),
    # STM32F405: USART1 is the first -serial, USART2 (the Nucleo's ST-LINK port) the second.
    # RCC/GPIO/DWT are not emulated: the image keeps HSI and counts SysTick (board.c).
    "netduinoplus2": Emulator("netduinoplus2", "nucleo-f446re", 1, handshake=True),
}


@dataclass(frozen=True)
class RealBoard:
    """A board programmed over its debug probe."""

    firmware_board: str  # BOARD= of firmware/Makefile
    openocd_cfg: tuple[str, ...]  # openocd -f scripts (interface, target)
    flash_base: int  # where st-flash writes the raw image
    usb_vid: int  # vendor id of its USB serial port (resolve_port)


REAL_BOARDS = {
    "nucleo-f446re": RealBoard("nucleo-f446re", ("interface/stlink.cfg", "target/stm32f4x.cfg"),
                               0x08000000, 0x0483),
}
BOARD_ALIASES = {"nucleo": "nucleo-f446re"}


def canonical_board(board: str) -> str:
    """``nucleo`` -> ``nucleo-f446re``; other names unchanged."""
    return BOARD_ALIASES.get(board, board)


def firmware_board(board: str) -> str:
    """The firmware Makefile's BOARD whose image ``board`` runs (netduinoplus2: the Nucleo's)."""
    board = canonical_board(board)
    emu = EMULATORS.get(board)
    return emu.firmware_board if emu else board


def build_firmware(
    model_dir: str | Path, board: str = "qemu", arena_bytes: int | None = None,
    quiet: bool = False, out_dir: str | Path | None = None, input_bank: Path | None = None,
) -> Path:
    """``make -C firmware BOARD=... MODEL_DIR=...``; returns the ELF path.

    The image lands in ``firmware/build/<board>/`` unless ``out_dir`` is given (tests build
    their own images there, so they never race a user's ``make flash``).
    """
    board = firmware_board(board)
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
    if input_bank is not None:
        cmd.append(f"INPUT_BANK={Path(input_bank).resolve()}")
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

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the QEMU process has used so far; 0 once it has ended."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _emulator(machine: str) -> Emulator:
    emu = next((e for e in EMULATORS.values() if e.machine == machine), None)
    if emu is None:
        raise TinyscopeError(f"no emulator for QEMU machine {machine!r}; machines: "
                             f"{', '.join(sorted({e.machine for e in EMULATORS.values()}))}")
    return emu


def _bank_emulator(machine: str) -> Emulator:
    """The emulator of QEMU ``machine``, which must have input bank memory."""
    emu = _emulator(machine)
    if emu.input_bank_addr is None:
        raise TinyscopeError(f"QEMU {machine} has no input bank memory: send inputs with "
                             "SET_INPUT (no --input-bank)")
    return emu


def write_memory_bank(path: str | Path, inputs: np.ndarray, machine: str = QEMU_MACHINE) -> int:
    """Write to ``path`` the input bank that QEMU ``machine`` loads into its bank memory at
    boot: the first of ``inputs`` that fit there (all of them when they do; a MobileNet-class
    96x96x3 input is 27,648 B, so 16 MB hold 606). Returns how many: the device serves those
    by USE_INPUT, the others come by SET_INPUT."""
    emu = _bank_emulator(machine)
    count = proto.input_bank_fit(inputs, emu.input_bank_bytes)
    Path(path).write_bytes(proto.input_bank(np.asarray(inputs)[:count]))
    return count


def qemu_command(elf: Path, port: int, qmp: Path | None = None,
                 machine: str = QEMU_MACHINE, input_bank: Path | None = None) -> list[str]:
    emu = _emulator(machine)
    cmd = [
        QEMU, "-M", machine, "-display", "none", "-monitor", "none",
        "-icount", "shift=0", "-kernel", str(elf),
        *["-serial", "null"] * emu.serial_index,
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
    ]
    if qmp is not None:
        cmd += ["-qmp", f"unix:{qmp},server=on,wait=off"]
    if input_bank is not None:
        addr = _bank_emulator(machine).input_bank_addr
        cmd += ["-device", f"loader,file={input_bank},addr=0x{addr:x},"
                "force-raw=on"]
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


def start(elf: str | Path, state_dir: str | Path = DEFAULT_STATE_DIR,
          machine: str = QEMU_MACHINE, input_bank: Path | None = None) -> QemuBoard:
    """Boot ``elf`` in QEMU ``machine`` in the background; write the port and pid files."""
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
            qemu_command(elf, port, (state / QMP_FILE).resolve(), machine,
                         Path(input_bank).resolve() if input_bank else None),
            stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + QEMU_START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _listening(port):
                if _needs_handshake(machine):
                    try:
                        _wait_ready(f"socket://127.0.0.1:{port}")
                    except TinyscopeError:
                        _terminate(proc.pid)
                        raise
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


def _needs_handshake(machine: str) -> bool:
    return any(e.handshake for e in EMULATORS.values() if e.machine == machine)


def _wait_ready(url: str, timeout: float = READY_TIMEOUT) -> None:
    """HELLO until the firmware answers, then hang up.

    The guest starts with the first connection; a request sent before its UART is enabled is
    lost (no answer), so HELLO is repeated every READY_RETRY s. Answers to an earlier HELLO
    arrive before the DONE of the last one, so nothing is left for the next connection.
    """
    port = link.open_port(url)
    deadline = time.monotonic() + timeout
    try:
        dev = link.Device(port)
        while True:
            try:
                dev.hello(READY_RETRY)
                return
            except MismatchError:
                return  # it answered; capture reports the mismatch with its fix
            except DeviceError as err:
                if time.monotonic() > deadline:
                    raise DeviceError(f"the emulated board at {url} did not answer HELLO for "
                                      f"{timeout:.0f} s: {err}") from err
    finally:
        port.close()


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
def emulated_board(elf: str | Path, state_dir: str | Path, machine: str = QEMU_MACHINE,
                   input_bank: Path | None = None) -> Iterator[QemuBoard]:
    """QEMU running ``elf`` for the duration of a ``with`` block; always stopped after.
    ``input_bank`` (protocol.input_bank bytes in a file) is loaded into the board's bank
    memory before boot."""
    board = start(elf, state_dir, machine, input_bank)
    try:
        yield board
    finally:
        stop(state_dir)


def check_board(board: str) -> None:
    board = canonical_board(board)
    if board not in EMULATORS and board not in REAL_BOARDS:
        raise TinyscopeError(
            f"board {board!r} has no flash runner; boards: "
            f"{', '.join([*EMULATORS, *REAL_BOARDS, *BOARD_ALIASES])} (docs/boards.md says "
            "how to add one)"
        )


# ---------------------------------------------------------------- serial ports


def resolve_port(port: str, state_dir: str | Path = DEFAULT_STATE_DIR) -> str:
    """``auto``: the running emulator's URL, else the ST-LINK's port, else the only USB port.

    A real board's debug probe (ST-LINK: USB vendor id 0x0483) exposes the firmware's UART as
    a USB serial port (/dev/ttyACM0 on Linux); it is preferred over other USB serial ports.
    """
    if port != "auto":
        return port
    board = running(state_dir)
    if board is not None:
        return board.url
    from serial.tools import list_ports

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    seen = ", ".join(
        f"{p.device} ({p.description}{f', USB {p.vid:04x}:{p.pid or 0:04x}' if p.vid else ''})"
        for p in ports) or "none"
    probe_vids = {b.usb_vid for b in REAL_BOARDS.values()}
    for candidates in ([p for p in ports if p.vid in probe_vids],
                       [p for p in ports if p.vid is not None]):
        if len(candidates) == 1:
            return candidates[0].device
        if len(candidates) > 1:
            raise TinyscopeError(
                f"--port auto: several candidate serial ports "
                f"({', '.join(p.device for p in candidates)}); pick one with --port. "
                f"Ports seen: {seen}"
            )
    raise TinyscopeError(
        f"--port auto: no emulator running ({Path(state_dir) / 'port'}) and no USB serial port "
        f"of a board (ST-LINK vendor id 0483) found; ports seen: {seen}. Run 'make flash' "
        "first, plug the board in, or give --port /dev/ttyACM0"
    )


# ---------------------------------------------------------------- real boards


def flash_command(board: str, elf: str | Path) -> list[str]:
    """The command that programs ``elf`` into ``board``: openocd if installed, else st-flash.

    openocd writes the ELF's loadable sections, verifies them and resets the core. st-flash
    takes a raw image: ``firmware.bin`` is written next to the ELF (arm-none-eabi-objcopy).
    """
    spec = REAL_BOARDS[canonical_board(board)]
    elf = Path(elf).resolve()
    openocd = shutil.which("openocd")
    if openocd is not None:
        cmd = [openocd]
        for cfg in spec.openocd_cfg:
            cmd += ["-f", cfg]
        return [*cmd, "-c", f'program "{elf}" verify reset exit']
    st_flash = shutil.which("st-flash")
    if st_flash is not None:
        return [st_flash, "--reset", "write", str(elf.with_suffix(".bin")),
                f"0x{spec.flash_base:08x}"]
    raise TinyscopeError(
        f"cannot flash {board}: neither openocd nor st-flash is installed. Install one "
        "(Debian/Ubuntu: sudo apt-get install openocd, or sudo apt-get install stlink-tools) "
        f"and run make flash BOARD={board} again; or copy {elf.with_suffix('.bin')} to the "
        "board's NOD_F446RE USB drive (ST-LINK drag-and-drop)"
    )


def _elf_to_bin(elf: Path) -> Path:
    out = elf.with_suffix(".bin")
    objcopy = shutil.which("arm-none-eabi-objcopy")
    if objcopy is None:
        raise TinyscopeError("arm-none-eabi-objcopy not found: run 'make setup' (Debian "
                             "package binutils-arm-none-eabi)")
    subprocess.run([objcopy, "-O", "binary", str(elf), str(out)], check=True)
    return out


def flash_real(board: str, elf: str | Path) -> list[str]:
    """Program ``elf`` into the connected ``board``; returns the command that ran."""
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise TinyscopeError(f"{elf} not found: build it first (make firmware BOARD={board})")
    _elf_to_bin(elf)  # st-flash and the ST-LINK's USB drive take the raw image
    cmd = flash_command(board, elf)
    print("$ " + " ".join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, timeout=FLASH_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{Path(cmd[0]).name} did not finish in {FLASH_TIMEOUT:.0f} s: "
                          "unplug and replug the board, then make flash again") from None
    if proc.returncode != 0:
        raise DeviceError(
            f"{Path(cmd[0]).name} failed (exit code {proc.returncode}, output above): is the "
            f"{board} connected over USB (ST-LINK), and may you use it (udev rules from the "
            "openocd / stlink-tools package, or plugdev group)?"
        )
    return cmd
