"""Capture mistakes a new user made (issue 15, item 7), one test each: an existing run is not
silently replaced, a busy port is named, Ctrl-C says how to resume, `run --resume` continues,
and `run` says how many images it really captures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tinyscope import cli
from tinyscope.cli.capture import refuse_or_clear
from tinyscope.convert import manifest as manifest_mod
from tinyscope.data import quantized_test_inputs
from tinyscope.device import boards, capture
from tinyscope.device.link import Device, open_port, release_port
from tinyscope.errors import DeviceError

REPO = Path(__file__).resolve().parents[2]


def _old_run(d: Path) -> Path:
    (d / "report").mkdir(parents=True)
    (d / "report" / "report.html").write_text("old")
    (d / "run.json").write_text(json.dumps({"images": 100}))
    (d / "capture.npz").write_bytes(b"old")
    return d


def test_capture_out_on_an_existing_run_is_refused(tmp_path, capsys):
    out = _old_run(tmp_path / "run")
    code = cli.main(["capture", "--build", str(tmp_path / "nobuild"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert "already holds a capture (100 images)" in err and "--resume" in err and "--force" in err
    assert (out / "capture.npz").read_bytes() == b"old"  # untouched


def test_capture_force_removes_the_old_capture_and_report(tmp_path):
    out = _old_run(tmp_path / "run")
    refuse_or_clear(out, force=True)
    assert not (out / "run.json").exists() and not (out / "report").exists()
    refuse_or_clear(tmp_path / "fresh", force=False)  # nothing there: fine


def test_busy_port_is_detected_and_named(tmp_path):
    url = "socket://127.0.0.1:9"  # the lock is taken before connecting
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from tinyscope.device.link import lock_port; "
         f"lock_port({url!r}); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DeviceError, match=rf"in use by tinyscope pid {holder.pid}"):
            open_port(url)
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(DeviceError, match="cannot open serial port"):  # free again: connects
        open_port(url)
    release_port(url)


@pytest.mark.emulator
def test_ctrl_c_prints_the_resume_command_and_run_resume_finishes(build_dir, elf, tmp_path,
                                                                  monkeypatch, capsys):
    man = manifest_mod.load(build_dir)
    _, q, labels = quantized_test_inputs(man, 3, None)
    out = tmp_path / "run"
    real_run = Device.run
    calls = {"n": 0}

    def run_then_ctrl_c(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_run(self, *a, **k)

    monkeypatch.setattr(Device, "run", run_then_ctrl_c)
    with boards.emulated_board(elf, tmp_path / "qemu") as board, \
            pytest.raises(capture.CaptureInterrupted) as err:
        capture.capture(board.url, build_dir, out, q, labels, "all", progress=False)
    assert f"tinyscope capture --resume {out}" in str(err.value)
    assert err.value.exit_code == 130
    assert json.loads((out / "run.json").read_text())["images"] == 1
    monkeypatch.setattr(Device, "run", real_run)
    code = cli.main(["run", "--build", str(build_dir), "--out", str(out), "--n", "3",
                     "--layers", "all", "--resume", "--panels", "0",
                     "--state-dir", str(tmp_path / "qemu2"), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "resume the capture of 3 images" in printed  # what it really does
    run = json.loads((out / "run.json").read_text())
    assert run["images"] == 3 and run["complete"]
    with np.load(out / "capture.npz") as z:
        assert np.array_equal(z["input_0"].reshape(-1), q[0].reshape(-1))
