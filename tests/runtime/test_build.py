"""The runtime builds for Cortex-M4 with the firmware flags (-Wall -Wextra -Werror), needs
no libm, and reports its .text size; the sanitizer build of the runner exists."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.runtime.native_runner import FIRMWARE_DIR

needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc not installed (make setup installs it)")


@needs_arm
def test_runtime_compiles_for_cortex_m4(capsys):
    proc = subprocess.run(["make", "-C", str(FIRMWARE_DIR), "-f", "host/host.mk", "cm4"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r"cm4 runtime \.text (\d+) bytes, \.data (\d+), \.bss (\d+)", proc.stdout)
    assert m, proc.stdout
    text, data, bss = (int(g) for g in m.groups())
    assert 4000 < text < 64 * 1024
    assert data == 0 and bss == 0  # no hidden static state
    linked = re.search(r"linked runtime \.text (\d+) bytes", proc.stdout)
    assert linked, proc.stdout
    with capsys.disabled():  # the figure `make bench` reports is the linked one
        print(f"\n[cm4] runtime .text at -Os: {int(linked.group(1))} bytes linked "
              f"(--gc-sections, the kernels the interpreter calls; {text} bytes in all "
              f"objects, both kernel sets)")
    lib = FIRMWARE_DIR / "build" / "cm4-runtime" / "libtsruntime.a"
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(lib)], capture_output=True,
                               text=True, check=True).stdout
    external = {ln.split()[-1] for ln in undefined.splitlines() if ln.strip().startswith("U")}
    external = {s for s in external if not s.startswith("ts_")}
    allowed_libc = {"memcpy", "memmove", "memset", "memcmp", "strcmp"}
    assert {s for s in external if not s.startswith("__aeabi_")} <= allowed_libc, external
