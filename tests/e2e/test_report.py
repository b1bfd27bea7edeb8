"""End to end on the emulated board: `tinyscope run` (convert -> build -> QEMU -> capture ->
compare -> report), then `tinyscope compare` on a capture we damage on purpose."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from tinyscope import cli
from tinyscope.analysis import compare

REPO = Path(__file__).resolve().parents[2]
N_IMAGES = 20

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """One full pipeline run, shared by the tests of this module."""
    tmp = tmp_path_factory.mktemp("e2e")
    code = cli.main([
        "run", "--model", str(REPO / "models" / "default.keras"), "--build", str(tmp / "build"),
        "--out", str(tmp / "run"), "--n", str(N_IMAGES), "--layers", "all", "--panels", "2",
        "--state-dir", str(tmp / "qemu"), "--no-progress",
    ])
    assert code == 0
    return tmp


def test_pipeline_device_equals_tflm_on_every_tensor(demo_run: Path) -> None:
    metrics = json.loads((demo_run / "run" / "report" / "metrics.json").read_text())
    man = json.loads((demo_run / "build" / "manifest.json").read_text())
    assert metrics["n_images"] == N_IMAGES
    # --layers all: every operator output was streamed and compared
    streamed = {t["index"] for t in metrics["tensors"]}
    assert streamed == {op["outputs"][0] for op in man["operators"]}
    for t in metrics["tensors"]:
        lsb = t["device_vs_tflm"]["lsb"]
        assert lsb["n_different"] == 0, (t["index"], lsb)
        assert lsb["n"] == N_IMAGES * int(np.prod(t["shape"][1:]))
    assert metrics["device_equals_tflm"] is True
    assert metrics["dataset"]["output_equals_tflm"] is True
    # the default model is a good digit classifier: the device agrees with float nearly always
    assert metrics["dataset"]["device_vs_float_top1_agreement"] >= 0.9


def test_timing_and_report_contents(demo_run: Path) -> None:
    metrics = json.loads((demo_run / "run" / "report" / "metrics.json").read_text())
    per_op = metrics["timing"]["per_op"]
    assert all(r["ticks"] and r["ticks"] > 0 for r in per_op)
    assert metrics["timing"]["instructions_per_tick"] == 40.0  # QEMU -icount shift=0
    total = sum(r["ticks"] for r in per_op)
    assert abs(total - metrics["timing"]["total_ticks_median"]) <= len(per_op)
    page = (demo_run / "run" / "report" / "report.html").read_text()
    # self-contained: every figure embedded, nothing fetched from elsewhere
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(metrics["figures"])
    assert "http://" not in page and "https://" not in page
    assert "bit-exact" in page
    for name in metrics["figures"]:
        png = (demo_run / "run" / "report" / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_compare_reports_a_damaged_tensor(demo_run: Path, tmp_path: Path) -> None:
    """Flip one value of the first layer in a copy of the capture: compare must find exactly
    that element, in that channel, and the --max-lsb gate must fail."""
    run = tmp_path / "run"
    shutil.copytree(demo_run / "run", run, ignore=shutil.ignore_patterns("report"))
    man = json.loads((demo_run / "build" / "manifest.json").read_text())
    first = man["first_layer_output"]
    with np.load(run / "capture.npz") as cap:
        arrays = {k: cap[k] for k in cap.files}
    key = f"t{first}_3"
    arrays[key] = arrays[key].copy()
    v = int(arrays[key][0, 5, 7, 2])
    arrays[key][0, 5, 7, 2] = v - 3 if v > -125 else v + 3
    np.savez(run / "capture.npz", **arrays)

    metrics, _ = compare.compare(run, demo_run / "build", progress=False)
    assert metrics["device_equals_tflm"] is False
    assert metrics["device_vs_tflm_mismatching_elements"] == 1
    assert metrics["device_vs_tflm_max_lsb"] == 3
    row = next(t for t in metrics["tensors"] if t["index"] == first)
    assert row["device_vs_tflm"]["per_channel_lsb"]["max_lsb"] == [0, 0, 3, 0, 0, 0, 0, 0]
    assert compare.check_gates(metrics, max_lsb=0, min_top1=None)
    assert not compare.check_gates(metrics, max_lsb=3, min_top1=None)
    code = cli.main(["compare", str(run), "--build", str(demo_run / "build"), "--panels", "0",
                     "--max-lsb", "0", "--no-progress"])
    assert code == compare.GATE_EXIT_CODE


def test_compare_refuses_another_models_build(demo_run: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    build = tmp_path / "build"
    shutil.copytree(demo_run / "build", build)
    man = json.loads((build / "manifest.json").read_text())
    real = man["model_sha256"]
    man["model_sha256"] = "0" * 64
    (build / "manifest.json").write_text(json.dumps(man))
    code = cli.main(["compare", str(demo_run / "run"), "--build", str(build), "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0
    assert real in err and "0" * 64 in err


def test_report_survives_references_that_abort(demo_run: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """TFLM and XNNPACK die by SIGABRT in their worker (fault injection): compare still writes
    the report and metrics.json, their columns marked missing with the reason; the capture is
    untouched."""
    run = tmp_path / "run"
    shutil.copytree(demo_run / "run", run, ignore=shutil.ignore_patterns("report", "references"))
    before = (run / "capture.npz").read_bytes()
    monkeypatch.setenv("TINYSCOPE_REFERENCE_FAULT", "tflm,xnnpack")
    code = cli.main(["compare", str(run), "--build", str(demo_run / "build"), "--panels", "1",
                     "--no-progress"])
    assert code == 0
    metrics = json.loads((run / "report" / "metrics.json").read_text())
    refs = metrics["references"]
    for kind in ("tflm", "xnnpack"):
        assert refs[kind]["available"] is False
        assert "aborted (SIGABRT)" in refs[kind]["missing"]
        assert "the tinyscope runtime accepts this model" in refs[kind]["missing"]
    assert refs["litert_ref"]["available"] and refs["float"]["available"]
    assert metrics["device_equals_tflm"] is None
    for t in metrics["tensors"]:
        assert "device_vs_tflm" not in t and "xnnpack_vs_device" not in t
        assert t["device_vs_litert_ref"]["lsb"]["n"] > 0
    page = (run / "report" / "report.html").read_text()
    assert "Missing references" in page and "TFLM missing" in page
    assert (run / "capture.npz").read_bytes() == before
