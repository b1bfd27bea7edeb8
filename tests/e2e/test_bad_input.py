"""Bad input through the real CLI: a one-paragraph error naming the file and the fix,
a non-zero exit code, and no traceback (unless --debug).

Cases: a model path that does not exist, a corrupt .keras, a .keras with layers the runtime
does not support, data that does not fit the model's input (size/channels), an empty data
folder, a corrupt image file, a truncated .tflite in a build dir, a build dir that does not
exist.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tinyscope import cli
from tinyscope.errors import TinyscopeError

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    err = capsys.readouterr().err
    return code, err


def assert_clear_error(code: int, err: str, *must: str) -> None:
    assert code != 0, err
    assert "Traceback" not in err, err
    line = [ln for ln in err.splitlines() if "error:" in ln]
    assert line, f"no 'error:' line in {err!r}"
    message = err[err.index(line[0]):].strip()
    assert "\n\n" not in message, f"more than one paragraph: {message!r}"
    for text in must:
        assert text in message, f"{text!r} not in {message!r}"


def test_model_path_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "nope.keras"
    code, err = run_cli(capsys, "convert", str(missing), "--out", str(tmp_path / "b"))
    assert_clear_error(code, err, str(missing), "tinyscope train")


def test_corrupt_keras_file(tmp_path, capsys):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip" + bytes(range(256)))
    code, err = run_cli(capsys, "convert", str(bad), "--out", str(tmp_path / "b"))
    assert_clear_error(code, err, str(bad), "model.save")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(TinyscopeError):
        cli.main(["--debug", "convert", str(tmp_path / "nope.keras"), "--out", str(tmp_path)])


def test_keras_with_unsupported_layers(tmp_path, capsys):
    import keras

    inp = keras.Input((8, 8, 1), batch_size=1)
    x = keras.layers.Conv2DTranspose(2, 3, strides=2)(inp)
    x = keras.layers.Flatten()(x)
    path = tmp_path / "transposed.keras"
    keras.Model(inp, keras.layers.Dense(3)(x)).save(path)
    data = _image_folder(tmp_path / "imgs", (8, 8), "L")
    code, err = run_cli(capsys, "convert", str(path), "--out", str(tmp_path / "b"),
                        "--data", str(data))
    assert_clear_error(code, err, "TRANSPOSE_CONV", "--allow-unsupported")


def _image_folder(root: Path, size: tuple[int, int], mode: str, per_class: int = 6) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(
                root / cls / f"{i}.png")
    return root


def test_data_does_not_fit_the_model_input(tmp_path, capsys):
    """A model with a 16x16x3 input, converted with the 28x28x1 MNIST digits."""
    import keras

    inp = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(2, 3)(inp)
    path = tmp_path / "rgb.keras"
    keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(x))).save(path)
    code, err = run_cli(capsys, "convert", str(path), "--out", str(tmp_path / "b"),
                        "--data", "mnist")
    assert_clear_error(code, err, "28x28x1", "16x16x3", "--data")


def test_empty_data_folder(tmp_path, capsys, build_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run_cli(capsys, "capture", "--build", str(build_dir), "--data", str(empty),
                        "--out", str(tmp_path / "run"), "--port", "loop://")
    assert_clear_error(code, err, str(empty), "sub-folder")
    (empty / "only").mkdir()
    code, err = run_cli(capsys, "capture", "--build", str(build_dir), "--data", str(empty),
                        "--out", str(tmp_path / "run"), "--port", "loop://")
    assert_clear_error(code, err, str(empty), "two classes")


def test_corrupt_image_file(tmp_path, capsys, build_dir):
    data = _image_folder(tmp_path / "imgs", (28, 28), "L")
    bad = data / "b" / "3.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    code, err = run_cli(capsys, "capture", "--build", str(build_dir), "--data", str(data),
                        "--out", str(tmp_path / "run"), "--port", "loop://")
    assert_clear_error(code, err, str(bad), "re-save")


def test_truncated_tflite_in_build_dir(tmp_path, capsys, build_dir):
    broken = tmp_path / "build"
    shutil.copytree(build_dir, broken)
    tflite = broken / "model_int8.tflite"
    tflite.write_bytes(tflite.read_bytes()[:1000])
    code, err = run_cli(capsys, "inspect", str(broken))
    assert_clear_error(code, err, str(tflite), "tinyscope convert")


def test_build_dir_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "no-build"
    code, err = run_cli(capsys, "capture", "--build", str(missing), "--out",
                        str(tmp_path / "run"), "--port", "loop://")
    assert_clear_error(code, err, str(missing), "tinyscope convert")
