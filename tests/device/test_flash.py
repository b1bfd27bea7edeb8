"""make flash BOARD=nucleo-f446re: the build (fits the F446RE, use printed, overflow refused)
and the flash runner (openocd or st-flash, whichever is on PATH; a clear error with neither).

No board and no flash tool are needed: PATH is rebuilt without openocd/st-flash, or with a
recording stand-in that writes its argv, so the exact command line is checked.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tinyscope.device import boards
from tinyscope.errors import TinyscopeError

ROOT = Path(__file__).resolve().parents[2]
FLASH_TOOLS = ("openocd", "st-flash")
F446RE_FLASH = 512 * 1024
F446RE_RAM = 128 * 1024
USE_LINE = re.compile(
    r"nucleo-f446re: flash (\d+) of (\d+) bytes \([\d.]+%: model (\d+), tables (\d+)\), "
    r"RAM (\d+) of (\d+) bytes "
    r"\([\d.]+%: arena (\d+), stack (\d+), other (\d+)\), (-?\d+) bytes RAM free")

if shutil.which("arm-none-eabi-gcc") is None:
    pytest.skip("needs arm-none-eabi-gcc (make setup)", allow_module_level=True)


def _path_without_flash_tools(tmp: Path, stubs: dict[str, str] | None = None) -> str:
    """A PATH with every program of the current PATH except openocd and st-flash, plus
    ``stubs`` (name -> shell script body)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, body in (stubs or {}).items():
        script = bin_dir / name
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(0o755)
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or not Path(d).is_dir():
            continue
        for entry in Path(d).iterdir():
            link = bin_dir / entry.name
            if entry.name in FLASH_TOOLS or link.exists() or link.is_symlink():
                continue
            link.symlink_to(entry)
    return str(bin_dir)


def _recorder(log: Path) -> str:
    """A stand-in flash tool: appends its argv (one argument per line) to ``log``."""
    return f'for a in "$@"; do printf "%s\\n" "$a"; done >> "{log}"\nexit 0\n'


def _flash(build_dir: Path, tmp: Path, path: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path}
    env.pop("MAKEFLAGS", None)
    return subprocess.run(
        [sys.executable, "-m", "tinyscope.cli", "flash", "--board", "nucleo-f446re",
         "--model-dir", str(build_dir), "--elf", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp, timeout=300)


@pytest.fixture(scope="module")
def built(build_dir, tmp_path_factory):
    """The nucleo-f446re image of the default model and the build's output."""
    out = tmp_path_factory.mktemp("nucleo")
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT / "firmware"), "BOARD=nucleo-f446re",
         f"MODEL_DIR={build_dir}", f"OUT={out}"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "firmware.elf", proc.stdout


def test_build_prints_flash_and_ram_use_and_fits_with_margin(built, build_dir):
    from tinyscope.convert import manifest as manifest_mod

    elf, output = built
    m = USE_LINE.search(output)
    assert m, output
    (flash, flash_total, model, tables, ram, ram_total, arena, stack, other,
     free) = map(int, m.groups())
    assert (flash_total, ram_total) == (F446RE_FLASH, F446RE_RAM)
    # The printed figures are the ELF's sections (arm-none-eabi-size -A).
    sections = {}
    size = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                          text=True, check=True).stdout
    for line in size.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    assert flash == sections[".text"] + sections.get(".ARM.exidx", 0) + sections[".data"]
    assert ram == sections[".data"] + sections[".bss"] + sections[".stack"]
    assert ram == arena + stack + other and free == ram_total - ram
    # Margin: >= 8 KB of RAM and >= 256 KB of flash left. The arena is the model's need as
    # the runtime plans it on the host (OUT/model.mk), below TFLM's (sizes.tflm_arena.total).
    manifest = manifest_mod.load(build_dir)
    assert free >= 8 * 1024 and flash_total - flash >= 256 * 1024
    assert flash > manifest["model_bytes"] == model
    # The per-channel tables are in flash (OUT/model_tables.c), one int32 per output channel
    # of each layer for its multiplier and one for its shift, beside the model.
    symbols = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True,
                             text=True, check=True).stdout
    sizes = {f[3]: int(f[1], 16) for f in (ln.split() for ln in symbols.splitlines())
             if len(f) == 4}
    shapes = {t["index"]: t["shape"] for t in manifest["tensors"]}
    channels = sum(shapes[op["outputs"][0]][-1] for op in manifest["operators"] if op["op"] in
                   ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"))
    assert tables == sizes["g_model_tables"] == 8 * channels, (tables, channels)
    planned = (elf.parent / "model.mk").read_text()
    model_sha = hashlib.sha256((build_dir / "model_int8.tflite").read_bytes()).hexdigest()
    assert planned == f"MODEL_ARENA_BYTES := {arena}\nMODEL_PLAN_ID := {model_sha}\n"
    assert manifest["sizes"]["largest_activation_bytes"] < arena
    assert arena < manifest["sizes"]["tflm_arena"]["total"]
    # The linker placed the image where the F446RE (and netduinoplus2) have memory.
    headers = subprocess.run(["arm-none-eabi-objdump", "-h", str(elf)], capture_output=True,
                             text=True, check=True).stdout
    vma = {p[1]: int(p[3], 16) for p in (ln.split() for ln in headers.splitlines())
           if len(p) > 3 and p[0].isdigit()}
    assert vma[".text"] == 0x08000000
    assert 0x20000000 <= vma[".stack"] and vma[".bss"] + sections[".bss"] <= 0x20000000 + ram_total


def test_a_model_that_does_not_fit_is_a_clear_build_error(build_dir, tmp_path):
    with pytest.raises(TinyscopeError) as err:
        boards.build_firmware(build_dir, "nucleo-f446re", arena_bytes=120 * 1024, quiet=True,
                              out_dir=tmp_path / "fw")
    text = str(err.value)
    # Needed vs available bytes, per region, with the parts of each.
    m = re.search(r"RAM +(\d+) of 131072 bytes: over by (\d+) \(arena 122880 from ARENA_BYTES, "
                  r"stack 16384, firmware buffers (\d+)\)", text)
    assert m, text
    ram, over, other = map(int, m.groups())
    assert ram == 122880 + 16384 + other and over == ram - 131072
    assert re.search(r"flash +\d+ of 524288 bytes: fits \(model \d+, tables \d+, firmware code",
                     text), text
    assert "lower ARENA_BYTES" in text
    assert not (tmp_path / "fw" / "firmware.elf").exists()


def test_flash_without_openocd_or_st_flash_says_what_to_install(built, build_dir, tmp_path):
    elf, _ = built
    proc = _flash(build_dir, tmp_path, _path_without_flash_tools(tmp_path), elf)
    assert proc.returncode != 0
    assert "neither openocd nor st-flash is installed" in proc.stderr
    assert "apt-get install openocd" in proc.stderr and "stlink-tools" in proc.stderr
    assert "Traceback" not in proc.stderr
    # The raw image for the ST-LINK USB drive was still written.
    assert elf.with_suffix(".bin").stat().st_size > 0


def test_flash_runs_openocd_program_verify_reset_exit(built, build_dir, tmp_path):
    elf, _ = built
    log = tmp_path / "argv.txt"
    path = _path_without_flash_tools(tmp_path, {"openocd": _recorder(log),
                                                "st-flash": "exit 3\n"})
    proc = _flash(build_dir, tmp_path, path, elf)
    assert proc.returncode == 0, proc.stderr
    argv = log.read_text().splitlines()
    assert argv == ["-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg",
                    "-c", f'program "{elf.resolve()}" verify reset exit']
    assert "capture with: tinyscope capture --port auto" in proc.stdout


def test_flash_falls_back_to_st_flash_with_the_raw_image(built, build_dir, tmp_path):
    elf, _ = built
    log = tmp_path / "argv.txt"
    proc = _flash(build_dir, tmp_path, _path_without_flash_tools(
        tmp_path, {"st-flash": _recorder(log)}), elf)
    assert proc.returncode == 0, proc.stderr
    argv = log.read_text().splitlines()
    image = elf.resolve().with_suffix(".bin")
    assert argv == ["--reset", "write", str(image), "0x08000000"]
    # The raw image is the ELF's flash contents: vectors first (initial SP in RAM, reset
    # handler in flash, Thumb bit set), and as long as the flash use the build printed.
    data = image.read_bytes()
    sp, pc = int.from_bytes(data[0:4], "little"), int.from_bytes(data[4:8], "little")
    assert 0x20000000 < sp <= 0x20000000 + F446RE_RAM
    assert 0x08000000 < pc < 0x08000000 + len(data) and pc & 1
    assert len(data) == int(USE_LINE.search(built[1]).group(1))


def test_unknown_board_lists_the_boards():
    with pytest.raises(TinyscopeError) as err:
        boards.check_board("nrf52840")
    for name in ("qemu", "netduinoplus2", "nucleo-f446re"):
        assert name in str(err.value)


@pytest.mark.skipif(shutil.which("openocd") is None, reason="openocd not installed")
def test_real_openocd_accepts_the_scripts_and_reports_a_missing_board(built, build_dir,
                                                                     tmp_path):
    """With openocd installed (and no board here): the interface/target scripts and the
    program command parse; openocd fails to open the ST-LINK and tinyscope says what to check."""
    elf, _ = built
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    proc = subprocess.run(
        [sys.executable, "-m", "tinyscope.cli", "flash", "--board", "nucleo-f446re",
         "--model-dir", str(build_dir), "--elf", str(elf)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    if proc.returncode == 0:
        pytest.skip("a board is connected: it was flashed")
    text = proc.stdout + proc.stderr
    assert "open failed" in text or "unable to find" in text.lower(), text
    assert "Can't find" not in text and "invalid command" not in text, text
    assert "openocd failed" in text and "connected over USB (ST-LINK)" in text


def test_another_model_in_the_same_out_is_planned_again(build_dir, tmp_path):
    """The arena comes from OUT/model.mk, which records the model it was planned for: a
    different model built into the same OUT is planned again even when its file is older
    than model.mk (a build that reused the previous model's arena failed at capture with
    "arena too small")."""
    def plan_id(model: Path) -> str:
        return f"MODEL_PLAN_ID := {hashlib.sha256(model.read_bytes()).hexdigest()}\n"

    out = tmp_path / "fw"
    first = boards.build_firmware(build_dir, quiet=True, out_dir=out)
    assert (first.parent / "model.mk").read_text().endswith(
        plan_id(build_dir / "model_int8.tflite"))
    other = tmp_path / "other"  # the same graph in another file (another sha256)
    other.mkdir()
    for name in ("model_data.cc", "model_data.h", "inputs.cc", "inputs.h", "manifest.json"):
        shutil.copy(build_dir / name, other / name)
    (other / "model_int8.tflite").write_bytes(
        (build_dir / "model_int8.tflite").read_bytes() + b"\0" * 16)
    os.utime(other / "model_int8.tflite", (0, 0))  # older than OUT/model.mk
    second = boards.build_firmware(other, quiet=True, out_dir=out)
    assert (second.parent / "model.mk").read_text().endswith(
        plan_id(other / "model_int8.tflite"))
