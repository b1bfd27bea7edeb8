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
