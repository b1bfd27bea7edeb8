"""Bring your own model and data: int8 .tflite (byte for byte), the .tflite kinds tinyscope
refuses, legacy .h5, SavedModel, .npy/.npz inputs of any shape, and every data mistake that
gets a message (issue 13)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from tinyscope import data
from tinyscope.cli.app import main
from tinyscope.convert import flow
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert import tflite as tflite_mod
from tinyscope.errors import TinyscopeError, UnsupportedModelError

from tests import mlperf_tiny as arch


def _small_cnn(shape=(8, 8, 1), classes=3, rescale: float | None = None, seed: int = 0,
               hidden: int | None = None):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape, batch_size=1, name="pixels")
    x = keras.layers.Rescaling(rescale, name="rescale")(inp) if rescale else inp
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Flatten(name="flat")(x)
    if hidden:  # >= 1024 weights: dynamic-range quantization leaves smaller tensors float
        x = keras.layers.Dense(hidden, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inp, out, name="small")


def _convert_variant(model, kind: str, shape) -> bytes:
    """The .tflite kinds a user may have: float32, float16, dynamic-range, 16x8, float I/O."""
    import tensorflow as tf

    cal = np.random.default_rng(0).uniform(0, 1, (8, *shape)).astype(np.float32)

    def rep():
        for s in cal:
            yield [s[None]]

    c = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind != "float32":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        c.target_spec.supported_types = [tf.float16]
    elif kind in ("float-io", "uint8-io", "int16x8"):
        c.representative_dataset = rep
        c.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if kind != "int16x8" else
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        if kind == "uint8-io":
            c.inference_input_type = c.inference_output_type = tf.uint8
    return bytes(c.convert())


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    model = _small_cnn(hidden=16)
    out = {}
    for kind in ("float32", "float16", "dynamic-range", "int16x8", "float-io", "uint8-io"):
        path = root / f"{kind}.tflite"
        path.write_bytes(_convert_variant(model, kind, (8, 8, 1)))
        out[kind] = path
    path = root / "int8.tflite"
    path.write_bytes(arch.to_int8_tflite(model, np.random.default_rng(0).uniform(
        0, 1, (8, 8, 8, 1))))
    out["int8"] = path
    return out


# ------------------------------------------------------------------ int8 .tflite in


def test_int8_tflite_is_used_byte_for_byte_and_named_from_its_tensors(mlperf_tiny, tmp_path,
                                                                       capsys):
    _, tflite = mlperf_tiny("dscnn")
    m = flow.convert(tflite, tmp_path / "b")
    blob = tflite.read_bytes()
    assert (tmp_path / "b" / "model_int8.tflite").read_bytes() == blob
    assert m["model_sha256"] == m["source_sha256"] == hashlib.sha256(blob).hexdigest()
    assert m["source_format"] == "tflite" and m["float_model"] is None
    names = [o["name"] for o in m["operators"]]
    assert names[:3] == ["conv1", "dw1", "pw1"] and names[-3:-1] == ["pool", "logits"]
    assert all(n and "/" not in n for n in names)
    # No data given: seeded random int8 inputs, said so.
    assert m["dataset"]["rule"] == "all" and m["data"] == data.RANDOM
    assert "random int8 inputs" in capsys.readouterr().err
    table = flow.format_manifest(manifest_mod.load(tmp_path / "b"))
    assert "None" not in table and " dw1 " in table


@pytest.mark.parametrize("kind, says", [
    ("float32", "a float32 model (not quantized)"),
    ("float16", "float16-quantized"),
    ("dynamic-range", "dynamic-range quantized model (int8 weights, float32 activations"),
    ("int16x8", "16x8-quantized"),
    ("uint8-io", "an int8 model with uint8 input and uint8 output, but its input is uint8"),
])
def test_tflite_that_is_not_full_int8_is_refused_saying_what_it_is(variants, kind, says,
                                                                   tmp_path):
    with pytest.raises(UnsupportedModelError) as err:
        flow.convert(variants[kind], tmp_path / "b")
    msg = str(err.value)
    assert str(variants[kind]) in msg and says in msg
    assert "inference_input_type = tf.int8" in msg  # how to export a full-integer model
    if kind != "uint8-io":
        assert "TFLITE_BUILTINS_INT8" in msg and "representative_dataset" in msg
    else:
        assert "one QUANTIZE (float32 -> int8) at the input" in msg
    assert not (tmp_path / "b").exists()


def test_int8_tflite_with_float32_edges_is_accepted(variants, tmp_path):
    """An int8 body between a QUANTIZE float32 -> int8 and a DEQUANTIZE int8 -> float32
    (inference_input_type = tf.float32) converts: float32 input and output in the manifest,
    with the int8 tensors of the body's edges; int8 data is dequantized for the float
    input, float data is kept as it is."""
    blob = variants["float-io"].read_bytes()
    s = tflite_mod.summarize(blob)
    assert s.kind == "float-io" and s.edge_problem == ""
    assert s.ops[0] == "QUANTIZE" and s.ops[-1] == "DEQUANTIZE"
    m = flow.convert(variants["float-io"], tmp_path / "b")
    assert (tmp_path / "b" / "model_int8.tflite").read_bytes() == blob
    inp, out = m["input"], m["output"]
    assert inp["dtype"] == out["dtype"] == "float32"
    q_op, dq_op = m["operators"][0], m["operators"][-1]
    assert inp["quantized_as"]["index"] == q_op["outputs"][0]
    assert out["dequantized_from"]["index"] == dq_op["inputs"][0]
    assert inp["quantized_as"]["dtype"] == "int8" and inp["quantized_as"]["scale"] > 0
    # random int8 test inputs become float32 values the QUANTIZE maps back to themselves
    x, dev, _ = data.quantized_test_inputs(m, 4)
    assert dev.dtype == np.float32 and x is dev
    body = inp["quantized_as"]
    r = data.random_inputs((8, 8, 1), 4)
    np.testing.assert_array_equal(data.quantize(dev, body["scale"], body["zero_point"]), r.x)
    # float arrays are sent as they are
    arr = tmp_path / "x.npy"
    np.save(arr, np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 1)).astype(np.float32))
    x, dev, _ = data.quantized_test_inputs(m, 3, str(arr))
    assert dev.dtype == np.float32
    np.testing.assert_array_equal(dev, np.load(arr))


def test_a_file_that_is_not_a_tflite_is_refused(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(UnsupportedModelError, match="not a TFLite flatbuffer"):
        flow.convert(bad, tmp_path / "b")
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(b"\x18\x00\x00\x00TFL3" + b"\xff" * 16)
    with pytest.raises(UnsupportedModelError, match="damaged or truncated"):
        flow.convert(cut, tmp_path / "c")


def test_float_twin_names_the_tflite_operators_by_keras_layer(variants, tmp_path):
    twin = tmp_path / "small.keras"
    _small_cnn(hidden=16).save(twin)
    m = flow.convert(variants["int8"], tmp_path / "b", float_model=twin)
    assert [o["keras_layer"] for o in m["operators"]][:2] == ["conv", "dw"]
    assert m["float_model"] == str(twin)
    assert manifest_mod.float_model_path(m) == str(twin)


# ------------------------------------------------------------------ .npy / .npz in


def test_float_npy_is_quantized_with_the_input_scale_and_int8_is_used_as_is(variants,
                                                                             tmp_path):
    x = np.random.default_rng(1).uniform(0, 1, (5, 8, 8, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    m = flow.convert(variants["int8"], tmp_path / "b", data=str(tmp_path / "x.npy"))
    inp = m["input"]
    _, q, y = data.quantized_test_inputs(m, 3)
    np.testing.assert_array_equal(q, data.quantize(x[:3], inp["scale"], inp["zero_point"]))
    assert y.tolist() == [-1, -1, -1]  # no labels
    raw = np.random.default_rng(2).integers(-128, 128, (4, 8, 8, 1), dtype=np.int8)
    np.save(tmp_path / "q.npy", raw)
    m = flow.convert(variants["int8"], tmp_path / "c", data=str(tmp_path / "q.npy"))
    _, q, _ = data.quantized_test_inputs(m)
    np.testing.assert_array_equal(q, raw)


def test_npz_labels_and_class_names_reach_the_manifest(variants, tmp_path):
    x = np.random.default_rng(1).uniform(0, 1, (6, 8, 8)).astype(np.float32)  # no channel
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]),
             class_names=np.array(["sit", "stand", "down"]))
    m = flow.convert(variants["int8"], tmp_path / "b", data=str(tmp_path / "d.npz"))
    assert m["classes"] == ["sit", "stand", "down"]
    assert m["test_inputs"]["labels"] == [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 9, 8, 1), np.float32), "the array has shape 4x9x8x1 but the model input is "
                                         "8x8x1"),
    (np.zeros((4, 64), np.float32), "shape 4x64 but the model input is 8x8x1"),
    (np.zeros((4, 8, 8, 1), np.uint8), "dtype uint8"),
    (np.zeros((4, 8, 8, 1), np.int32), "dtype int32"),
])
def test_npy_that_does_not_fit_names_both_shapes_or_the_dtype(variants, tmp_path, array,
                                                              message):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(TinyscopeError) as err:
        flow.convert(variants["int8"], tmp_path / "b", data=str(tmp_path / "x.npy"))
    assert message in str(err.value) and str(tmp_path / "x.npy") in str(err.value)


def test_npz_without_x_and_labels_that_do_not_match(variants, tmp_path):
    np.savez(tmp_path / "a.npz", inputs=np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(TinyscopeError, match=r"arrays \['inputs'\] but no 'x'"):
        flow.convert(variants["int8"], tmp_path / "b", data=str(tmp_path / "a.npz"))
    np.savez(tmp_path / "c.npz", x=np.zeros((3, 8, 8, 1), np.float32), y=np.array([0, 1]))
    with pytest.raises(TinyscopeError, match="one integer label per input"):
        flow.convert(variants["int8"], tmp_path / "b", data=str(tmp_path / "c.npz"))


def test_any_input_shape_1d_and_2d_features(mlperf_tiny, tmp_path):
    for name in ("autoencoder", "dscnn"):
        _, tflite = mlperf_tiny(name)
        x = arch.inputs(name, 3, seed=4)
        if name == "dscnn":
            x = x[..., 0]  # (N, 49, 10): MFCCs without the channel axis
        np.save(tmp_path / f"{name}.npy", x)
        m = flow.convert(tflite, tmp_path / name, data=str(tmp_path / f"{name}.npy"))
        assert m["test_inputs"]["count"] == 3
        assert m["input"]["shape"] == [1, *arch.input_shape(name)]


# ------------------------------------------------------------------ data mistakes (item 6)


def _folder(root: Path, classes, per_class=4, size=8, mode="L", seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).convert(mode).save(root / c / f"{i}.png")


def test_input_range_scales_folder_images_and_rescaling_layer_is_detected(tmp_path, capsys):
    _folder(tmp_path / "img", ["a", "b", "c"])
    plain = data.load(tmp_path / "img", (8, 8), 1, input_range="-1,1")
    assert plain.x.min() >= -1 and plain.x.max() <= 1 and plain.x.min() < -0.5
    raw = data.load(tmp_path / "img", (8, 8), 1, input_range="0,255")
    assert raw.x.max() > 200 and raw.input_range == "0,255"
    net = _small_cnn(rescale=1 / 255)
    m = flow.convert("r.keras", tmp_path / "b", data=str(tmp_path / "img"), calib=4,
                     num_inputs=2, model=net)
    assert "Rescaling(scale=0.003922" in capsys.readouterr().err
    assert m["input_range"] == "0,255" and m["dataset"]["input_range"] == "0,255"
    with pytest.raises(TinyscopeError, match="--input-range 0,2: use one of"):
        data.parse_input_range("0,2")


def test_inputs_outside_the_int8_input_range_warn_with_the_saturated_fraction(
        mlperf_tiny, tmp_path):
    _, tflite = mlperf_tiny("resnet8")  # trained on [0, 1] images
    np.save(tmp_path / "x.npy", arch.inputs("resnet8", 2, seed=1) * 255)  # 0..255 pixels
    with pytest.warns(data.DataWarning, match=r"\d+\.\d% of the input values .* saturate"):
        flow.convert(tflite, tmp_path / "b", data=str(tmp_path / "x.npy"))


def test_n_larger_than_the_test_set_says_how_many_it_uses(variants, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8, 1), np.float32))
    m = flow.convert(variants["int8"], tmp_path / "b", data=str(tmp_path / "x.npy"))
    capsys.readouterr()
    _, q, _ = data.quantized_test_inputs(m, 500)
    assert len(q) == 3
    assert "--n 500: test inputs holds 3 inputs; using 3" in capsys.readouterr().err


def test_model_outputs_vs_number_of_classes_is_an_error_with_both_numbers(variants, tmp_path):
    _folder(tmp_path / "img", ["a", "b"])  # 2 classes, the model has 3 outputs
    with pytest.raises(TinyscopeError, match="the model has 3 outputs but --data .* has 2 "
                                             "classes"):
        flow.convert(variants["int8"], tmp_path / "b", data=str(tmp_path / "img"))


def test_grayscale_folder_feeding_an_rgb_model_warns(tmp_path):
    _folder(tmp_path / "img", ["a", "b"], mode="L")
    with pytest.warns(data.DataWarning, match="grayscale but the model takes 3 channels"):
        data.load(tmp_path / "img", (8, 8), 3)


def test_train_and_test_folders_and_test_data_are_respected(tmp_path, capsys):
    _folder(tmp_path / "d" / "train", ["a", "b", "c"], per_class=5)
    _folder(tmp_path / "d" / "test", ["a", "b", "c"], per_class=2, seed=1)
    s = data.load_splits(tmp_path / "d", (8, 8, 1))
    assert s.rule == "folders" and len(s.test) == 6 and len(s.train) == 15
    np.save(tmp_path / "t.npy", np.zeros((7, 8, 8, 1), np.float32))
    s = data.load_splits(tmp_path / "d" / "train", (8, 8, 1), test_data=str(tmp_path / "t.npy"))
    assert s.rule == "test-data" and len(s.test) == 7 and len(s.train) == 15
    s = data.load_splits(tmp_path / "d" / "train", (8, 8, 1))
    assert s.rule == "fraction" and "test split: 20% of" in s.description
    assert len(s.test) == 3  # one per class of 5


def test_float_accuracy_near_chance_warns_to_check_the_input_range(tmp_path):
    _folder(tmp_path / "img", ["a", "b", "c"], per_class=10)
    net = _small_cnn(classes=3, seed=3)
    x = data.load(tmp_path / "img", (8, 8), 1)
    with pytest.warns(data.DataWarning, match="near chance .* check --input-range"):
        flow.check_float_accuracy(net, x.subset(np.arange(len(x))),
                                  "0,1") if _is_chance(net, x) else pytest.skip("lucky")


def _is_chance(net, ds) -> bool:
    pred = np.asarray(net.predict(ds.x, batch_size=1, verbose=0)).argmax(-1)
    return float(np.mean(pred == ds.y)) <= 1.5 / 3


# ------------------------------------------------------------------ .h5, SavedModel, layers


def test_legacy_keras2_h5_with_groups_key_converts(tmp_path):
    net = _small_cnn()
    h5 = tmp_path / "legacy.h5"
    net.save(h5)
    with h5py.File(h5, "r+") as f:  # what Keras 2 wrote: DepthwiseConv2D(groups=1)
        cfg = json.loads(f.attrs["model_config"])
        for layer in cfg["config"]["layers"]:
            if layer["class_name"] == "DepthwiseConv2D":
                layer["config"]["groups"] = 1
        f.attrs["model_config"] = json.dumps(cfg)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 1, (6, 8, 8, 1)))
    m = flow.convert(h5, tmp_path / "b", data=str(tmp_path / "x.npy"), calib=4)
    assert m["source_format"] == "h5" and m["float_model"] == str(h5)
    assert [o["keras_layer"] for o in m["operators"]][:2] == ["conv", "dw"]


def test_saved_model_directory_converts(tmp_path):
    net = _small_cnn()
    net.export(tmp_path / "sm", verbose=False)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 1, (6, 8, 8, 1)))
    m = flow.convert(tmp_path / "sm", tmp_path / "b", data=str(tmp_path / "x.npy"), calib=4)
    assert m["source_format"] == "savedmodel" and not m["unsupported"]
    assert [o["op"] for o in m["operators"]][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    assert all(o["name"] for o in m["operators"])


def test_lstm_is_refused_before_the_converter_runs(tmp_path, monkeypatch):
    import keras

    inp = keras.Input((10, 4), batch_size=1)
    out = keras.layers.Dense(2)(keras.layers.LSTM(8, name="rnn")(inp))
    net = keras.Model(inp, out)
    monkeypatch.setattr(flow, "quantize_keras", lambda *a: pytest.fail("converter ran"))
    np.save(tmp_path / "x.npy", np.zeros((4, 10, 4), np.float32))
    with pytest.raises(UnsupportedModelError, match=r"cannot run these Keras layers: rnn "
                                                    r"\(LSTM\)"):
        flow.convert("lstm.keras", tmp_path / "b", data=str(tmp_path / "x.npy"), model=net)


# ------------------------------------------------------------------ quiet TensorFlow


def test_convert_prints_no_tensorflow_lines(tmp_path):
    keras_path = tmp_path / "m.keras"
    _small_cnn(classes=10).save(keras_path)
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).uniform(0, 1, (30, 8, 8, 1)),
             y=np.arange(30) % 10)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "GRPC", "GLOG"))}
    proc = subprocess.run(
        [sys.executable, "-m", "tinyscope.cli", "convert", str(keras_path), "--out",
         str(tmp_path / "b"), "--data", str(tmp_path / "d.npz"), "--calib", "4"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for noise in ("oneDNN", "absl", "fully_quantize", "TensorSpec", "W0000", "I0000",
                  "UserWarning", "Saved artifact", "INFO:"):
        assert noise not in proc.stderr + proc.stdout, noise
    assert proc.stdout.startswith("wrote ")


def test_main_accepts_a_tflite_model(mlperf_tiny, tmp_path, capsys):
    _, tflite = mlperf_tiny("autoencoder")
    assert main(["convert", str(tflite), "--out", str(tmp_path / "b")]) == 0
    assert "wrote" in capsys.readouterr().out


def test_image_folder_feeds_a_float32_input_in_the_chosen_range(variants, tmp_path):
    """For a float32 model input the images are scaled to --input-range and sent as float32
    values, not quantized on the host; inputs.cc holds them quantized as the model's
    QUANTIZE does (the int8 tensor its body starts from)."""
    folder = tmp_path / "imgs"
    _folder(folder, ["a", "b", "c"], per_class=2)
    m = flow.convert(variants["float-io"], tmp_path / "b", data=str(folder),
                     input_range="-1,1")
    x, dev, y = data.quantized_test_inputs(m)
    want = data.load_folder(folder, (8, 8), 1, "-1,1")
    assert dev.dtype == np.float32 and dev.shape == want.x.shape
    np.testing.assert_array_equal(dev, want.x)
    np.testing.assert_array_equal(y, want.y)
    assert dev.min() >= -1.0 and dev.max() <= 1.0 and dev.min() < 0.0
    body = m["input"]["quantized_as"]
    first = data.quantize(dev[0], body["scale"], body["zero_point"]).reshape(-1)
    cc = (tmp_path / "b" / "inputs.cc").read_text()
    assert f"#define TS_INPUT_SCALE {float(body['scale'])!r}f" in (
        tmp_path / "b" / "inputs.h").read_text()
    row = cc[cc.index("/* 0:"):]
    assert [int(v) for v in row[row.index("{") + 1:row.index("}")].replace(",", " ").split()
            ][:first.size] == first.tolist()
