"""--port auto: the running emulator, else the ST-LINK's port (USB vendor 0x0483), else the
only USB serial port; otherwise an error that lists the ports it saw.

The OS's port list is replaced by pyserial ListPortInfo records (there is no board here).
"""

from __future__ import annotations

import pytest
from serial.tools import list_ports, list_ports_common
from tinyscope.device import boards, capture, link
from tinyscope.errors import TinyscopeError


def _port(device: str, vid: int | None = None, pid: int | None = None,
          description: str = "n/a") -> list_ports_common.ListPortInfo:
    info = list_ports_common.ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.description = vid, pid, description
    return info


@pytest.fixture
def ports(monkeypatch):
    seen: list[list_ports_common.ListPortInfo] = []
    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: list(seen))
    return seen


def test_stlink_is_preferred_over_other_usb_ports(ports, tmp_path):
    ports += [_port("/dev/ttyUSB0", 0x1A86, 0x7523, "USB2.0-Serial"),
              _port("/dev/ttyACM1", 0x0483, 0x374B, "STM32 STLink"),
              _port("/dev/ttyS0")]
    assert boards.resolve_port("auto", tmp_path / "no-qemu") == "/dev/ttyACM1"


def test_the_only_usb_port_is_taken_without_an_stlink(ports, tmp_path):
    ports += [_port("/dev/ttyS0"), _port("/dev/ttyUSB3", 0x10C4, 0xEA60, "CP2102")]
    assert boards.resolve_port("auto", tmp_path / "no-qemu") == "/dev/ttyUSB3"


def test_two_stlinks_are_ambiguous_and_named(ports, tmp_path):
    ports += [_port("/dev/ttyACM0", 0x0483, 0x374B), _port("/dev/ttyACM1", 0x0483, 0x374E)]
    with pytest.raises(TinyscopeError) as err:
        boards.resolve_port("auto", tmp_path / "no-qemu")
    assert "/dev/ttyACM0, /dev/ttyACM1" in str(err.value) and "--port" in str(err.value)


def test_no_board_lists_the_ports_seen(ports, tmp_path):
    ports += [_port("/dev/ttyS1", description="ttyS1"), _port("/dev/ttyS0", description="ttyS0")]
    with pytest.raises(TinyscopeError) as err:
        boards.resolve_port("auto", tmp_path / "no-qemu")
    text = str(err.value)
    assert "ports seen: /dev/ttyS0 (ttyS0), /dev/ttyS1 (ttyS1)" in text
    assert "0483" in text and "--port /dev/ttyACM0" in text


def test_no_port_at_all_says_none(ports, tmp_path):
    with pytest.raises(TinyscopeError) as err:
        boards.resolve_port("auto", tmp_path / "no-qemu")
    assert "ports seen: none" in str(err.value)


def test_an_explicit_port_is_kept(ports, tmp_path):
    ports.append(_port("/dev/ttyACM0", 0x0483, 0x374B))
    assert boards.resolve_port("/dev/ttyUSB9", tmp_path) == "/dev/ttyUSB9"


def test_the_port_opens_at_the_boards_baud_rate():
    port = link.open_port("loop://", 921600)
    try:
        assert port.baudrate == 921600
    finally:
        port.close()
    port = link.open_port("loop://")
    try:
        assert port.baudrate == link.BAUDRATE == 115200
    finally:
        port.close()


def test_capture_cli_passes_baud():
    from tinyscope.cli import app as cli

    args = cli.build_parser().parse_args(["capture", "--build", "b", "--out", "o",
                                          "--baud", "460800"])
    assert args.baud == 460800


def test_tick_note_names_the_unit_per_board():
    assert "40 instructions" in capture.tick_note("qemu-mps2-an386", 25_000_000)
    note = capture.tick_note("nucleo-f446re (SysTick ticks: DWT CYCCNT not running)", 16_000_000)
    assert "SysTick" in note and "16000000 Hz" in note
    assert capture.tick_note("nucleo-f446re", 180_000_000).startswith("CPU cycles")
