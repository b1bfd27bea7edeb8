"""tinyscope convert / inspect: artifacts, C arrays that compile and hold the model bytes,
manifest contents, unsupported operators."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from tinyscope import cli, data
from tinyscope.convert import flow, manifest, model
from tinyscope.errors import TinyscopeError, UnsupportedModelError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "models" / "default.keras"
ARTIFACTS = ("model_int8.tflite", "model_data.cc", "model_data.h", "inputs.cc", "inputs.h",
             "manifest.json")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    assert cli.main(["convert", str(DEFAULT), "--out", str(out), "--num-inputs", "12"]) == 0
    return out


@pytest.fixture(scope="module")
def man(build):
    return json.loads((build / "manifest.json").read_text())


def parse_c_array(text: str, name: str) -> bytes:
    """The bytes of the initializer of array ``name`` in generated C text."""
    start = text.index(name)
    body = re.sub(r"/\*.*?\*/", "", text[text.index("{", start) : text.index("};", start)],
                  flags=re.S)
    values = [int(v, 0) for v in re.findall(r"-?0x[0-9a-fA-F]+|-?\d+", body)]
    return np.asarray(values, np.int64).astype(np.uint8).tobytes()


def test_convert_writes_all_artifacts(build, man):
    for name in ARTIFACTS:
        assert (build / name).stat().st_size > 100, name
    tfl = (build / "model_int8.tflite").read_bytes()
    assert tfl[4:8] == b"TFL3"
    assert man["model_sha256"] == manifest.sha256(tfl) and man["model_bytes"] == len(tfl)


def _compile_and_dump(build: Path, tmp: Path, compiler: list[str]) -> bytes:
    main = tmp / "dump.c"
    main.write_text(
        '#include <stdio.h>\n#include "model_data.h"\n#include "inputs.h"\n'
        "int main(void) {\n"
        "  fwrite(g_model_data, 1, g_model_data_size, stdout);\n"
        "  fwrite(g_inputs, 1, sizeof g_inputs, stdout);\n"
        "  fwrite(g_input_labels, 1, g_num_inputs, stdout);\n"
        "  return ((unsigned long)g_model_data % 16) != 0;\n}\n"
    )
    exe = tmp / "dump"
    cmd = [*compiler, "-I", str(build), str(main), str(build / "model_data.cc"),
           str(build / "inputs.cc"), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True)
    return subprocess.run([str(exe)], check=True, capture_output=True).stdout


def test_c_arrays_compile_as_c11_and_hold_the_model_and_inputs(build, man, tmp_path):
    if not shutil.which("gcc"):
        pytest.skip("host gcc not installed")
    tfl = (build / "model_int8.tflite").read_bytes()
    n, length = 12, 28 * 28
    out = _compile_and_dump(
        build, tmp_path,
        ["gcc", "-x", "c", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"],
    )
    assert out[: len(tfl)] == tfl
    inputs = np.frombuffer(out[len(tfl) : len(tfl) + n * length], np.int8).reshape(n, 28, 28, 1)
    labels = np.frombuffer(out[len(tfl) + n * length :], np.uint8)
    x, q, y = data.quantized_test_inputs(man, n)
    assert np.array_equal(inputs, q) and labels.tolist() == y.tolist()
    assert labels.tolist() == man["test_inputs"]["labels"]
    # the images are the held-out digits, quantized with the model's input parameters
    np.testing.assert_allclose(
        data.dequantize(inputs, man["input"]["scale"], man["input"]["zero_point"]), x,
        atol=man["input"]["scale"] / 2 + 1e-6,
    )


def test_c_arrays_compile_as_cxx_and_for_cortex_m4(build, tmp_path):
    if shutil.which("g++"):
        for src in ("model_data.cc", "inputs.cc"):
            subprocess.run(
                ["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c",
                 str(build / src), "-o", str(tmp_path / (src + ".o"))],
                check=True, capture_output=True,
            )
    if not shutil.which("arm-none-eabi-gcc"):
        pytest.skip("arm-none-eabi-gcc not installed")
    for src in ("model_data.cc", "inputs.cc"):
        obj = tmp_path / (src + ".arm.o")
        subprocess.run(
            ["arm-none-eabi-gcc", "-x", "c", "-std=c11", "-include", "stdalign.h",
             "-mcpu=cortex-m4", "-mthumb", "-Wall", "-Wextra", "-Werror", "-c",
             str(build / src), "-o", str(obj)],
            check=True, capture_output=True,
        )
        assert obj.stat().st_size > 0


def test_parse_c_array_round_trips(build):
    text = (build / "model_data.cc").read_text()
    assert parse_c_array(text, "g_model_data[]") == (
        build / "model_int8.tflite"
    ).read_bytes()


def test_manifest_describes_graph(man):
    ops = man["operators"]
    assert [o["op"] for o in ops] == [
        "CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    assert [o["keras_layer"] for o in ops] == [
        "conv1", "pool1", "conv2", "pool2", "flatten", "logits", "softmax",
    ]
    tensors = {t["index"]: t for t in man["tensors"]}
    assert man["first_layer_output"] == ops[0]["outputs"][0]
    assert tensors[man["first_layer_output"]]["shape"] == [1, 26, 26, 8]
    assert man["logits_tensor"] == ops[-1]["inputs"][0]
    # MACs from the Keras shapes: out_h*out_w*out_c*k*k*in_c
    assert [o["macs"] for o in ops] == [26 * 26 * 8 * 9, 0, 11 * 11 * 16 * 9 * 8, 0, 0, 4000, 0]
    assert man["total_macs"] == sum(o["macs"] for o in ops)
    # every index an operator names is described, with quantization where int8
    for o in ops:
        for i in o["inputs"] + o["outputs"]:
            assert i in tensors
    for i in man["activations"]:
        t = tensors[i]
        assert t["dtype"] == "int8" and len(t["scales"]) == 1 and t["kind"] == "activation"
    conv_w = tensors[ops[0]["inputs"][1]]
    assert len(conv_w["scales"]) == 8 and conv_w["quantized_dimension"] == 0
    assert man["input"]["dtype"] == "int8" and man["output"]["dtype"] == "int8"
    assert man["unsupported"] == []
    assert man["sizes"]["largest_activation_bytes"] == 26 * 26 * 8
    arena = man["sizes"]["tflm_arena"]
    assert arena and arena["total"] == arena["head"] + arena["tail"]


def test_inspect_prints_a_table(build, capsys):
    assert cli.main(["inspect", str(build)]) == 0
    out = capsys.readouterr().out
    for word in ("CONV_2D", "conv1", "FULLY_CONNECTED", "1x26x26x8", "48,672", "TFLM arena"):
        assert word in out


def test_inspect_detects_a_changed_model(build, tmp_path, capsys):
    copy = tmp_path / "b"
    shutil.copytree(build, copy)
    blob = bytearray((copy / "model_int8.tflite").read_bytes())
    blob[-1] ^= 1
    (copy / "model_int8.tflite").write_bytes(bytes(blob))
    assert cli.main(["inspect", str(copy)]) != 0
    assert "sha256" in capsys.readouterr().err


def _gelu_model():
    import keras

    inp = keras.Input((28, 28, 1), batch_size=1)
    x = keras.layers.Conv2D(2, 3, name="c")(inp)
    x = keras.layers.Activation("gelu", name="squash")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(10, name="d")(x)  # one output per MNIST class
    return keras.Model(inp, out)


def test_unsupported_op_is_named_with_its_layer(tmp_path, monkeypatch):
    net = _gelu_model()
    # Refused before the TensorFlow converter runs (an LSTM can crash it).
    monkeypatch.setattr(flow, "quantize_keras", lambda *a: pytest.fail("converter ran"))
    with pytest.raises(UnsupportedModelError) as err:
        flow.convert("gelu.keras", tmp_path / "x", calib=8, model=net)
    msg = str(err.value)
    assert "cannot run these Keras layers: squash (Activation)" in msg
    assert "--allow-unsupported" in msg
    monkeypatch.undo()
    assert not (tmp_path / "x" / "model_int8.tflite").exists()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = flow.convert("gelu.keras", tmp_path / "y", calib=8, model=net,
                            allow_unsupported=True)
    assert any("GELU" in str(w.message) for w in caught)
    assert m["unsupported"] == [{"op_index": 1, "op": "GELU", "keras_layer": "squash"}]
    assert (tmp_path / "y" / "model_data.cc").exists()


def test_refused_layers_name_the_file_and_the_layer_that_replaces_them(tmp_path, monkeypatch):
    """UpSampling2D (TILE) and GlobalMaxPooling2D (REDUCE_MAX) have equivalents the runtime
    runs; the refusal said only 'Replace those layers' and did not name the model file."""
    import keras

    inp = keras.Input((16, 16, 1), batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    x = keras.layers.UpSampling2D(2, name="up")(x)
    x = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    net = keras.Model(inp, keras.layers.Dense(2)(x))
    npy = tmp_path / "x.npy"
    np.save(npy, np.random.default_rng(0).uniform(0, 1, (10, 16, 16, 1)).astype(np.float32))
    monkeypatch.setattr(flow, "quantize_keras", lambda *a: pytest.fail("converter ran"))
    with pytest.raises(UnsupportedModelError) as err:
        flow.convert("my/seg.keras", tmp_path / "b", data=str(npy), calib=4, model=net)
    msg = str(err.value)
    assert msg.startswith("my/seg.keras: the tinyscope runtime cannot run these Keras layers: "
                          "up (UpSampling2D), gmp (GlobalMaxPooling2D)")
    assert "Resizing(H, W, interpolation='nearest')" in msg
    assert "MaxPooling2D(pool_size=(H, W)) + Flatten" in msg


def test_none_batch_model_is_rebatched_before_conversion(tmp_path):
    net = model.rebatch(model.load_model(DEFAULT), None)
    m = flow.convert(str(DEFAULT), tmp_path, calib=8, num_inputs=2, model=net)
    assert [o["op"] for o in m["operators"]][:2] == ["CONV_2D", "MAX_POOL_2D"]
    assert "SHAPE" not in {o["op"] for o in m["operators"]}


@pytest.mark.parametrize("command", ["train", "convert", "inspect", "drift", "saliency"])
def test_every_subcommand_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: tinyscope {command}" in out and len(out.split()) > 40


def test_image_folder_dataset_trains_and_converts(tmp_path):
    """A user's photos (one folder per class) through train and convert."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "dog"
    for label, name in enumerate(["down", "sit", "stand"]):
        (root / name).mkdir(parents=True)
        for i in range(12):
            img = rng.integers(0, 60, (40, 30), dtype=np.uint8)
            img[5 + 10 * label : 15 + 10 * label, :] = 255  # a bar whose height is the class
            Image.fromarray(img).convert("RGB").save(root / name / f"{i:02d}.jpg")
    ds = data.load(root)
    net, info = model.train(ds, epochs=2, progress=False)
    assert info["classes"] == ["down", "sit", "stand"] and info["n_test"] == 3 * round(12 * 0.2)
    m = flow.convert("dog.keras", tmp_path / "b", data=str(root), calib=16, num_inputs=3,
                        model=net)
    assert m["classes"] == ["down", "sit", "stand"]
    assert m["output"]["shape"] == [1, 3]
    assert sorted(m["test_inputs"]["labels"]) == [0, 1, 2]
    assert "TS_NUM_INPUTS 3u" in (tmp_path / "b" / "inputs.h").read_text()


def _transpose_conv_macs(in_hw: int, k: int, stride: int, padding: str, cin: int,
                         cout: int) -> tuple[int, tuple[int, ...]]:
    """manifest MACs of the one TRANSPOSE_CONV of a converted Conv2DTranspose, and its
    output shape."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((in_hw, in_hw, cin), batch_size=1)
    net = keras.Model(inp, keras.layers.Conv2DTranspose(cout, k, strides=stride,
                                                        padding=padding)(inp))
    from tinyscope.convert.quantize import quantize_keras

    tfl = quantize_keras(net, np.random.default_rng(0).uniform(0, 1, (4, in_hw, in_hw, cin)))
    m = manifest.build(tfl)
    (op,) = [o for o in m["operators"] if o["op"] == "TRANSPOSE_CONV"]
    shape = next(t["shape"] for t in m["tensors"] if t["index"] == op["outputs"][0])
    return op["macs"], tuple(shape)


def test_transpose_conv_macs_are_the_reference_kernels_scatter_count():
    """TFLM's reference TRANSPOSE_CONV scatters each input element through each filter tap
    whose output position lies inside the output, for every input x output channel.
    Counted by hand: 5x5x3 -> 3x3 taps, stride 2, SAME -> 10x10x4. Padding (TFLite's, from
    the output): ((5-1)*2 + 3 - 10) // 2 = 0; along one axis, inputs 0..3 land all 3 taps
    (positions up to 2*3+2 = 8 < 10), input 4 lands 2 (8, 9; 10 is outside): 4*3 + 2 = 14
    pairs; 14 * 14 * 3 * 4 = 2,352 (not 5*5*9*3*4 = 2,700).
    VALID, 4x4x2 -> 3x3, stride 2 -> 9x9x5: every tap lands: 4*4 * 9 * 2 * 5 = 1,440."""
    assert _transpose_conv_macs(5, 3, 2, "same", 3, 4) == (2352, (1, 10, 10, 4))
    assert _transpose_conv_macs(4, 3, 2, "valid", 2, 5) == (1440, (1, 9, 9, 5))



def test_convert_io_float_keeps_float32_edges(tmp_path, capsys):
    """--io float: the int8 body between a QUANTIZE float32 -> int8 and a DEQUANTIZE
    int8 -> float32; the logits stay the SOFTMAX's int8 input; inspect names both edges;
    a .tflite is used as it is (--io refused)."""
    out = tmp_path / "b"
    assert cli.main(["convert", str(DEFAULT), "--out", str(out), "--io", "float", "--calib",
                     "8", "--num-inputs", "2"]) == 0
    m = manifest.load(out)
    ops = [o["op"] for o in m["operators"]]
    assert ops[0] == "QUANTIZE" and ops[-2:] == ["SOFTMAX", "DEQUANTIZE"]
    assert m["input"]["dtype"] == m["output"]["dtype"] == "float32"
    assert m["logits_tensor"] == m["operators"][-2]["inputs"][0]
    assert m["input"]["quantized_as"]["index"] == m["operators"][0]["outputs"][0]
    capsys.readouterr()
    assert cli.main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"float32 (QUANTIZE to #{m['input']['quantized_as']['index']} int8" in text
    assert "float32 (DEQUANTIZE from #" in text
    with pytest.raises(TinyscopeError, match="--io float: a .tflite is used as it is"):
        flow.convert(out / "model_int8.tflite", tmp_path / "c", io="float")
