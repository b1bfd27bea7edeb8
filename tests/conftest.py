"""Fixtures shared across test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    """``tinyscope convert models/default.keras`` into a temporary build directory, once per
    session. Tests read it; a test that needs to change it copies it first."""
    from tinyscope import convert

    out = tmp_path_factory.mktemp("default-build")
    convert.convert(ROOT / "models/default.keras", out, num_inputs=4)
    return out


@pytest.fixture(scope="module")
def elf(build_dir, tmp_path_factory) -> Path:
    """The emulated board's firmware (QEMU mps2-an386) for the module's ``build_dir``."""
    from tinyscope.link import boards

    return boards.build_firmware(build_dir, quiet=True,
                                 out_dir=tmp_path_factory.mktemp("firmware"))


@pytest.fixture
def board(elf, tmp_path):
    """QEMU running ``elf``; always stopped after the test, also when it fails."""
    from tinyscope.link import boards

    with boards.emulated_board(elf, tmp_path / "qemu") as b:
        yield b
