"""A user's own int8 .tflite and .npy inputs through `tinyscope run` on the emulated board.

The models are Keras twins of the four MLPerf Tiny reference architectures
(tinyscope.bench_models, finished as trained by tests/mlperf_tiny.py), converted to int8 by
the fixture as a user's pipeline would; tinyscope only sees the .tflite and an inputs.npy.
Every streamed tensor must equal TFLM's, the report must be written, and operators are named
from the .tflite's tensor names (no Keras model). The two biggest (MobileNetV1 96x96x3 and
ResNet-8) run in `make test-slow`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tinyscope.analysis import reference
from tinyscope.cli.app import main
from tinyscope.convert import manifest as manifest_mod
from tinyscope.device import boards, capture

from tests import mlperf_tiny as arch

pytestmark = pytest.mark.emulator
if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
    pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc (make setup)",
                allow_module_level=True)

ARCHS = [
    pytest.param("mobilenet", marks=pytest.mark.slow),
    pytest.param("resnet8", marks=pytest.mark.slow),
    "dscnn",
    "autoencoder",  # 1-D: the report's viewer draws its 640-vectors as line plots
]


@pytest.mark.parametrize("name", ARCHS)
def test_user_tflite_and_npy_run_bit_exact_with_a_report(name, mlperf_tiny, tmp_path, capfd):
    _, tflite = mlperf_tiny(name)
    capfd.readouterr()  # the fixture's own TF conversion (first use) is not tinyscope's output
    inputs = tmp_path / "inputs.npy"
    np.save(inputs, arch.inputs(name, 3, seed=7))
    build, out = tmp_path / "build", tmp_path / "run"
    rc = main(["run", "--model", str(tflite), "--data", str(inputs), "--n", "2",
               "--layers", "all", "--build", str(build), "--out", str(out), "--no-progress",
               "--state-dir", str(tmp_path / "qemu")])
    text = capfd.readouterr()
    assert rc == 0, text.err[-2000:]
    # The .tflite is used byte for byte; its sha256 is the model hash.
    model = tflite.read_bytes()
    man = manifest_mod.load(build)
    assert (build / "model_int8.tflite").read_bytes() == model
    assert man["model_sha256"] == hashlib.sha256(model).hexdigest() == man["source_sha256"]
    assert man["source_format"] == "tflite" and man["float_model"] is None
    # Names come from the tensor names: never None, and no raw TF scope strings.
    names = [manifest_mod.op_label(op) for op in man["operators"]]
    assert all(n and n != "None" and "/" not in n and ";" not in n for n in names), names
    assert "None" not in text.out
    # Every streamed tensor == TFLM (the compare step and an independent check here).
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["n_images"] == 2 and metrics["device_equals_tflm"]
    assert len(metrics["tensors"]) >= len(man["operators"])
    q = np.load(inputs)[:2]
    sc, zp = man["input"]["scale"], man["input"]["zero_point"]
    from tinyscope.data import quantize

    want = reference.tflm_tensors(model, quantize(q, sc, zp))
    with np.load(out / "capture.npz") as npz:
        for i in range(2):
            for op in man["operators"]:
                t = op["outputs"][0]
                np.testing.assert_array_equal(npz[f"t{t}_{i}"], want[i][t],
                                              err_msg=f"image {i} op {op['index']}")
    assert (out / "report" / "report.html").stat().st_size > 1000
    # Static figures in the input's form (2-D features: heat maps; 640-vectors: lines) and
    # saliency without a float model: occlusion on the int8 model, the rest named as left out.
    figs = set(metrics["figures"])
    assert {"first_layer_image0.png", "panel_image0.png", "saliency_image0.png"} <= figs, figs
    for f in ("first_layer_image0.png", "panel_image0.png", "saliency_image0.png"):
        assert (out / "report" / f).stat().st_size > 5000, f
    sal = metrics["saliency"]
    assert sal["methods"] == ["occlusion int8"]
    assert all("--float-model" in why for why in sal["left_out"].values())
    assert sal["target"] == ("reconstruction" if name == "autoencoder" else "class")
    page = (out / "report" / "report.html").read_text()
    assert "Left out: vanilla gradient" in page and "--float-model" in page
    if name == "autoencoder":  # no labels, no classes: no accuracy card
        assert "device_accuracy" not in metrics["dataset"]
    # The firmware's arena was sized from the model's need (below TFLM's).
    run = json.loads((out / "run.json").read_text())
    tflm_total = man["sizes"]["tflm_arena"]["total"]
    assert run["arena_used"] <= run["arena_bytes"] < tflm_total
    assert "oneDNN" not in text.err and "absl" not in text.err and "INFO:" not in text.err


def _capture_bit_exact(tflite: Path, x: np.ndarray, board: str, tmp_path: Path) -> dict:
    """convert (with ``x`` as inputs.npy) -> build for ``board`` -> boot it in QEMU ->
    capture every layer of every input -> each tensor == TFLM. Returns run.json."""
    from tinyscope.data import quantized_test_inputs

    np.save(tmp_path / "x.npy", x)
    build = tmp_path / "build"
    assert main(["convert", str(tflite), "--out", str(build), "--data",
                 str(tmp_path / "x.npy")]) == 0
    elf = boards.build_firmware(build, boards.firmware_board(board), quiet=True,
                                out_dir=tmp_path / "fw")
    man = manifest_mod.load(build)
    model = manifest_mod.model_bytes(build, man)
    _, q, labels = quantized_test_inputs(man, len(x))
    with boards.emulated_board(elf, tmp_path / "qemu", boards.EMULATORS[board].machine) as b:
        run = capture.capture(b.url, build, tmp_path / "run", q, labels, "all", progress=False)
    assert run["complete"] and run["bad_frames"] == 0
    want = reference.tflm_tensors(model, q)
    with np.load(tmp_path / "run" / "capture.npz") as npz:
        for i in range(len(x)):
            for op in man["operators"]:
                t = op["outputs"][0]
                np.testing.assert_array_equal(npz[f"t{t}_{i}"], want[i][t],
                                              err_msg=f"input {i} op {op['index']}")
    return run


def test_fc_autoencoder_640_streams_bit_exact(mlperf_tiny, tmp_path):
    _, tflite = mlperf_tiny("autoencoder")
    run = _capture_bit_exact(tflite, arch.inputs("autoencoder", 2, seed=7), "qemu", tmp_path)
    assert run["arena_used"] <= run["arena_bytes"]


@pytest.mark.slow
def test_person_detector_builds_for_nucleo_and_streams_bit_exact_on_netduinoplus2(
        mlperf_tiny, tmp_path):
    """MobileNetV1-0.25 96x96x3 (7.5 M MACs, ~90 KB of arena) on the 128 KB F446RE image."""
    _, tflite = mlperf_tiny("mobilenet")
    run = _capture_bit_exact(tflite, arch.inputs("mobilenet", 1, seed=3), "netduinoplus2", tmp_path)
    assert run["arena_used"] <= run["arena_bytes"] <= 128 * 1024


def test_a_model_too_big_for_the_board_is_refused_at_build_time_with_numbers(
        mlperf_tiny, tmp_path):
    """ResNet-8's activations fit the F446RE; four copies of the MobileNet's do not: a
    3x-wider DS-CNN-like model built here needs more arena than 128 KB of RAM holds."""
    import keras

    inp = keras.Input((96, 96, 3), batch_size=1)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)  # 147 KB out
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2)(x)
    model = keras.Model(inp, out)
    tfl = arch.to_int8_tflite(model, np.random.default_rng(0).uniform(0, 1, (4, 96, 96, 3)))
    (tmp_path / "big.tflite").write_bytes(tfl)
    build = tmp_path / "build"
    assert main(["convert", str(tmp_path / "big.tflite"), "--out", str(build)]) == 0
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(boards.FIRMWARE_DIR), "BOARD=nucleo-f446re",
         f"MODEL_DIR={build}", f"OUT={tmp_path / 'fw'}"], capture_output=True, text=True,
        timeout=600)
    assert proc.returncode != 0
    err = proc.stderr
    assert "does not fit the nucleo-f446re (needed vs available, per region)" in err, err
    planned = int(re.search(r"MODEL_ARENA_BYTES := (\d+)",
                            (tmp_path / "fw" / "model.mk").read_text()).group(1))
    assert planned > 147_456  # at least the 96x96x16 activation
    assert f"arena {planned} from the model's need" in err
    assert "RAM" in err and "over by" in err and "flash" in err and "fits" in err
    assert not (tmp_path / "fw" / "firmware.elf").exists()
    # The same model builds for the emulated mps2-an386 (4 MB of RAM).
    elf = boards.build_firmware(build, "qemu", quiet=True, out_dir=tmp_path / "fw-qemu")
    assert elf.is_file()
