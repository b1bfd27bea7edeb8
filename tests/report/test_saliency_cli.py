"""`tinyscope saliency` and `tinyscope drift` on a build converted from a user's .tflite (no
float model): saliency runs occlusion on the int8 model and says what it left out and how to
get it; drift stops with a message naming --float-model. Non-image inputs (2-D time x
feature) throughout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tinyscope.cli.app import main
from tinyscope.convert.quantize import quantize_keras


@pytest.fixture(scope="module")
def tflite_build(tmp_path_factory):
    """A 20 x 8 x 1 (time x feature) classifier as a user's int8 .tflite + inputs.npy,
    converted by `tinyscope convert`; returns (build dir, float .keras path, inputs path)."""
    import keras

    keras.utils.set_random_seed(5)
    root = tmp_path_factory.mktemp("kws")
    inp = keras.Input((20, 8, 1), batch_size=1)
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    h = keras.layers.Flatten()(h)
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    rng = np.random.default_rng(0)
    (root / "kws.tflite").write_bytes(
        quantize_keras(model, rng.uniform(-1, 1, (32, 20, 8, 1)).astype(np.float32)))
    model.save(root / "kws.keras")
    np.save(root / "x.npy", rng.uniform(-1, 1, (6, 20, 8, 1)).astype(np.float32))
    build = root / "build"
    assert main(["convert", str(root / "kws.tflite"), "--out", str(build), "--data",
                 str(root / "x.npy")]) == 0
    return build, root / "kws.keras", root / "x.npy"


def test_saliency_without_a_float_model_runs_int8_occlusion_and_names_the_flag(
        tflite_build, tmp_path, capsys):
    build, keras_path, _ = tflite_build
    capsys.readouterr()
    out = tmp_path / "sal"
    assert main(["saliency", str(build), "--out", str(out), "--n", "2"]) == 0
    text = capsys.readouterr().out
    assert "2 inputs: occlusion int8 (explaining the int8 model's predicted class" in text
    assert ("left out: vanilla gradient, SmoothGrad, Grad-CAM, occlusion float: needs the "
            "float model: pass --float-model F (.keras or .h5)") in text
    assert "saliency stage: maps" in text and "CPU" in text
    result = json.loads((out / "saliency.json").read_text())
    assert result["methods"] == ["occlusion int8"]
    assert result["occlusion_int8_vs_float"] is None
    assert result["flat"]["occlusion int8"] == [False, False]
    for name in ("panel_00.png", "methods_00.png", "panel_01.png", "methods_01.png"):
        assert (out / name).stat().st_size > 5000, name
    # the float twin given: every method, and their agreement
    out2 = tmp_path / "sal2"
    assert main(["saliency", str(build), "--out", str(out2), "--n", "2", "--float-model",
                 str(keras_path)]) == 0
    text = capsys.readouterr().out
    result = json.loads((out2 / "saliency.json").read_text())
    assert result["methods"] == ["vanilla gradient", "SmoothGrad", "Grad-CAM",
                                 "occlusion float", "occlusion int8"]
    assert result["occlusion_int8_vs_float"]["mean_spearman"] > 0.5
    assert "occlusion saliency int8 vs float: mean Spearman" in text and "left out" not in text


def test_drift_without_a_float_model_says_which_flag_gives_it(tflite_build, tmp_path, capsys):
    build, _, _ = tflite_build
    capsys.readouterr()
    assert main(["drift", str(build), "--out", str(tmp_path / "d")]) != 0
    err = capsys.readouterr().err
    assert "drift compares the int8 model with its float twin" in err
    assert "--float-model F" in err and str(build) in err
    assert "Traceback" not in err and "None" not in err
    assert main(["drift", str(build), "--out", str(tmp_path / "d"), "--float-model",
                 str(tmp_path / "missing.keras")]) != 0
    assert "--float-model" in capsys.readouterr().err
