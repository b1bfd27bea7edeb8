"""`tinyscope convert` and `tinyscope run` on a model the reference kernels abort on (a
softmax whose beta * input scale is out of range): a clear message naming the operator and
the numbers, exit status 2 (a model error, see tinyscope.errors), no traceback, no
"Fatal Python error", and nothing built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime.refusal_models import save_tiny_logit_keras

TINYSCOPE = Path(sys.executable).parent / "tinyscope"


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory) -> Path:
    return save_tiny_logit_keras(tmp_path_factory.mktemp("tiny") / "tiny_logits.keras")


def tinyscope(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(TINYSCOPE), *args], capture_output=True, text=True,
                          timeout=600, check=False)


def assert_clear_refusal(proc: subprocess.CompletedProcess) -> None:
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and "Fatal Python error" not in err
    assert "SOFTMAX operator 3" in err and "beta x input scale" in err
    assert "Train the model" in err


def test_convert_refuses_with_a_message(tiny_keras, tmp_path):
    out = tmp_path / "build"
    proc = tinyscope("convert", str(tiny_keras), "--out", str(out))
    assert_clear_refusal(proc)
    assert not (out / "model_data.cc").exists()


def test_run_refuses_before_building_firmware(tiny_keras, tmp_path):
    proc = tinyscope("run", "--model", str(tiny_keras), "--build", str(tmp_path / "b"),
                     "--out", str(tmp_path / "r"), "--n", "2", "--no-progress")
    assert_clear_refusal(proc)
    assert "build firmware" not in proc.stdout
    assert not (tmp_path / "r").exists()
