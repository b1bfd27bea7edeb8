"""The real firmware as a native process behind a TCP port: a board for host tests without QEMU.

:func:`build_native_app` builds firmware/app (main loop, link layer: COBS, length, CRC-32,
every request handler, the runtime and the build's model) natively with
``tests/device/c/stdio_board.c``, whose UART is stdin/stdout, through fuzz/fuzz.mk's
``app-native`` recipe. :class:`NativeBoard` runs it and serves its UART on
``socket://127.0.0.1:PORT`` as QEMU's ``-serial tcp`` does: one client at a time; the board
keeps running when the client goes (what it sends meanwhile is lost); :meth:`reset` restarts
the firmware (a device reset) under the same connection; :meth:`power_off` stops it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOARD_SRC = Path(__file__).resolve().parent / "c" / "stdio_board.c"
BUILD_TIMEOUT_S = 600


def build_native_app(model_dir: Path, out: Path) -> Path:
    """``OUT/app_native``: the firmware for ``model_dir`` with the stdio board."""
    # fuzz.mk's own source list (expanded by make, so the list of app sources stays there)
    # with this board in place of the fuzz board, app_native.c and main.c (which the board
    # file includes, main() and all).
    srcs = (f"{BOARD_SRC} $(filter-out $(FUZZ_DIR)/fuzz_commands.c $(FUZZ_DIR)/fuzz_board.c "
            "$(FW_DIR)/app/main.c,$(APP_FUZZ_SRCS))")
    subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), "-f", "fuzz/fuzz.mk",
                    "app-native", f"MODEL_DIR={model_dir}", f"BUILD={out}",
                    f"APP_NATIVE_SRCS={srcs}"],
                   check=True, capture_output=True, timeout=BUILD_TIMEOUT_S)
    return out / "app_native"


class NativeBoard:
    """``exe`` running as a board whose serial port is :attr:`url`."""

    def __init__(self, exe: Path) -> None:
        self.exe = exe
        self._listen = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._listen.getsockname()[1]}"
        self._lock = threading.Lock()
        self._client: socket.socket | None = None
        self.proc: subprocess.Popen | None = None
        self.boots = 0
        self._boot()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def __enter__(self) -> NativeBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _boot(self) -> None:
        proc = subprocess.Popen([str(self.exe)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, bufsize=0)
        self.proc = proc
        self.boots += 1
        threading.Thread(target=self._to_client, args=(proc,), daemon=True).start()

    def reset(self) -> None:
        """The firmware starts again; a connected host stays connected."""
        self.power_off()
        self._boot()

    def power_off(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for f in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    f.close()

    def close(self) -> None:
        # shutdown first: a close() alone leaves the socket listening while the accept
        # thread is blocked in accept() on it (Linux), and a reconnect would still succeed
        with contextlib.suppress(OSError):
            self._listen.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listen.close()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(OSError):
                client.close()
        self.power_off()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listen.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                old, self._client = self._client, conn
            if old is not None:
                with contextlib.suppress(OSError):
                    old.close()
            threading.Thread(target=self._to_board, args=(conn,), daemon=True).start()

    def _to_board(self, conn: socket.socket) -> None:
        """The host's bytes to the firmware's UART (lost while the board is off)."""
        while True:
            try:
                data = conn.recv(1 << 16)
            except OSError:
                break
            if not data:
                break
            proc = self.proc
            if proc is not None and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.write(data)
        with self._lock:
            if self._client is conn:
                self._client = None
        with contextlib.suppress(OSError):
            conn.close()

    def _to_client(self, proc: subprocess.Popen) -> None:
        """The firmware's UART to the connected host (lost while none is connected)."""
        assert proc.stdout is not None
        while True:
            try:
                data = os.read(proc.stdout.fileno(), 1 << 16)
            except (OSError, ValueError):
                return
            if not data:
                return
            with self._lock:
                client = self._client
            if client is not None:
                with contextlib.suppress(OSError):
                    client.sendall(data)
