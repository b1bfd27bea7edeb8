"""A model with float32 input and output edges end to end on the emulated board (#14).

A small Keras CNN (hard-swish, squeeze-and-excite, a transposed convolution, leaky ReLU)
converted by the user with ``inference_input_type = tf.float32`` (and the same for the
output): QUANTIZE float32 -> int8 at the input, an int8 body, DEQUANTIZE
int8 -> float32 at the output. ``tinyscope run`` sends the float32 inputs of x.npy as they
are (no host quantization), the device's QUANTIZE and DEQUANTIZE run, and every streamed
tensor equals TFLM's: the int8 ones element for element, the float32 output bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from tinyscope.analysis import reference
from tinyscope.cli.app import main
from tinyscope.convert import manifest as manifest_mod
from tinyscope.device import boards
from tinyscope.device import protocol as proto

from tests.convert import float_io_model

pytestmark = pytest.mark.emulator
if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
    pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc (make setup)",
                allow_module_level=True)


def test_float_io_model_runs_bit_exact_on_the_emulated_board(tmp_path, capfd, monkeypatch):
    keras_path, tflite = float_io_model.write(tmp_path / "model")
    x = float_io_model.float_inputs(3, seed=7)
    np.save(tmp_path / "x.npy", x)
    capfd.readouterr()
    build, out = tmp_path / "build", tmp_path / "run"
    rc = main(["run", "--model", str(tflite), "--data", str(tmp_path / "x.npy"), "--n", "2",
               "--layers", "all", "--float-model", str(keras_path), "--build", str(build),
               "--out", str(out), "--no-progress", "--state-dir", str(tmp_path / "qemu")])
    text = capfd.readouterr()
    assert rc == 0, text.err[-3000:]
    man = manifest_mod.load(build)
    model = tflite.read_bytes()
    assert (build / "model_int8.tflite").read_bytes() == model
    ops = [o["op"] for o in man["operators"]]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    assert man["input"]["dtype"] == man["output"]["dtype"] == "float32"

    # The device got the float32 values as they are, and computed what TFLM computes.
    want = reference.tflm_tensors(model, x[:2])
    run = json.loads((out / "run.json").read_text())
    assert run["input_dtype"] == "float32" and run["images"] == 2
    with np.load(out / "capture.npz") as npz:
        for i in range(2):
            sent = npz[f"input_{i}"]
            assert sent.dtype == np.float32 and sent.tobytes() == x[i][None].tobytes()
            for op in man["operators"]:
                t = op["outputs"][0]
                got = npz[f"t{t}_{i}"]
                assert got.dtype == want[i][t].dtype, op
                assert got.tobytes() == want[i][t].tobytes(), f"image {i} op {op['index']}"
            out_t = man["output"]["index"]
            assert npz[f"output_{i}"].dtype == np.float32
            assert npz[f"output_{i}"].tobytes() == want[i][out_t].tobytes()
    # The saturating pixel (3.5, beyond the calibrated range) reached the int8 limit.
    q = man["input"]["quantized_as"]
    assert want[0][q["index"]].reshape(-1)[0] == 127

    # compare: float32 tensors bit for bit (no LSB), int8 ones in LSB; all equal TFLM.
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["device_equals_tflm"] and metrics["device_vs_tflm_max_lsb"] == 0
    assert metrics["dataset"]["output_equals_tflm"]
    assert metrics["dataset"]["output_exact_vs_tflm"] == {"n": 2 * float_io_model.CLASSES,
                                                          "n_different": 0,
                                                          "max_abs_diff": 0.0}
    rows = {r["op"]: r for r in metrics["tensors"]}
    deq = rows["DEQUANTIZE"]
    assert deq["dtype"] == "float32" and "lsb" not in deq["device_vs_tflm"]
    assert deq["device_vs_tflm"]["exact"]["n_different"] == 0
    assert "lsb" in rows["CONV_2D"]["device_vs_tflm"]
    assert "snr_db" in deq["device_vs_float"]  # the float model's output, in real units
    # The report names the operators (not op codes), the new ones included, and shows the
    # float32 row.
    html = (out / "report" / "report.html").read_text()
    for name in ("QUANTIZE", "HARD_SWISH", "MEAN", "LOGISTIC", "MUL", "TRANSPOSE_CONV",
                 "LEAKY_RELU", "DEQUANTIZE", "conv", "excite", "up", "leaky", "logits"):
        assert name in html and name in text.out, name
    assert "float32" in text.out
    assert "op code" not in text.out
    # TRANSPOSE_CONV's MACs (by hand: 12x12x4 -> 3x3 taps, stride 2, SAME -> 24x24x4; per
    # axis inputs 0..10 land 3 taps, input 11 lands 2: 35; 35 * 35 * 4 * 4) and its
    # instructions per MAC reach the timing table.
    timing = {r["op"]: r for r in metrics["timing"]["per_op"]}
    assert timing["TRANSPOSE_CONV"]["macs"] == 19_600
    assert timing["TRANSPOSE_CONV"]["instructions_per_mac"] > 0

    # --verify: the device's digests of every layer (float32 ones included) equal TFLM's,
    # with the float32 inputs uploaded as they are or taken from the input bank: a bank
    # memory made room for 2 of the 3 inputs, the third by SET_INPUT.
    x32 = np.asarray(x, np.float32)
    room = len(proto.input_bank(x32[:0])) + 2 * x32[0].nbytes
    monkeypatch.setattr(boards, "EMULATORS", {
        k: dataclasses.replace(e, input_bank_bytes=room if e.input_bank_bytes else 0)
        for k, e in boards.EMULATORS.items()})
    rc = main(["run", "--model", str(tflite), "--data", str(tmp_path / "x.npy"), "--n", "3",
               "--verify", "--build", str(build), "--out", str(tmp_path / "verified"),
               "--no-progress", "--state-dir", str(tmp_path / "qemu")])
    text = capfd.readouterr()
    assert rc == 0, text.err[-3000:]
    assert "TFLM digests: 0 of 3 images from the cache" in text.out  # float32 inputs, new
    assert "2 of 3 inputs (USE_INPUT); 1 by SET_INPUT" in text.out and "--jobs 2" in text.out
    metrics = json.loads((tmp_path / "verified" / "report" / "metrics.json").read_text())
    assert metrics["device_equals_tflm"] and metrics["n_images"] == 3
    rows = {r["op"]: r for r in metrics["tensors"]}
    assert rows["DEQUANTIZE"]["verified"]["mismatches"] == 0
    assert rows["DEQUANTIZE"]["verified"]["images"] == 3
