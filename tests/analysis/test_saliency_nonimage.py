"""Saliency for non-image inputs (1-D vectors, 2-D time x feature), without a float model, for
an autoencoder, with flat maps, and with the int8 model's interpreter dying in its child."""

from __future__ import annotations

import numpy as np
import pytest
from tinyscope import data
from tinyscope.analysis import floatref, reference, saliency
from tinyscope.analysis.saliency.int8_worker import FAULT_ENV
from tinyscope.convert.graph import graph
from tinyscope.convert.quantize import quantize_keras


def _keras():
    import keras

    return keras


@pytest.fixture(scope="module")
def models():
    """Small random-weight models whose scores depend on their input: a 2-D (20 x 8 x 1)
    classifier, a 1-D (64) classifier and a 1-D autoencoder, with their int8 twins."""
    keras = _keras()
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    out = {}
    inp = keras.Input((20, 8, 1), batch_size=1)
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    h = keras.layers.Flatten()(h)
    out["2d"] = keras.Model(inp, keras.layers.Dense(3)(h))
    inp = keras.Input((64,), batch_size=1)
    h = keras.layers.Dense(16, activation="relu")(inp)
    out["1d"] = keras.Model(inp, keras.layers.Dense(3)(h))
    inp = keras.Input((64,), batch_size=1)
    h = keras.layers.Dense(8, activation="relu")(inp)
    out["ae"] = keras.Model(inp, keras.layers.Dense(64)(h))
    shapes = {"2d": (20, 8, 1), "1d": (64,), "ae": (64,)}
    result = {}
    for name, model in out.items():
        calib = rng.uniform(-1, 1, (32, *shapes[name])).astype(np.float32)
        x = rng.uniform(-1, 1, (3, *shapes[name])).astype(np.float32)
        result[name] = (model, quantize_keras(model, calib), x)
    return result


def test_occlusion_on_a_vector_is_smooth_and_peaks_where_the_score_looks():
    idx = np.arange(96)
    bump = np.exp(-((idx - 30) ** 2) / 40.0).astype(np.float32)

    def scorer(images, classes):
        return (images * bump).sum(axis=1)

    occ = saliency.Occlusion(scorer)
    drops = occ.drops(np.ones((1, 96), np.float32), [0])[0]
    assert drops.shape == (96,)
    assert abs(int(drops.argmax()) - 30) <= 1
    assert saliency.spearman(drops, bump) > 0.9
    assert np.abs(np.diff(drops, 2)).max() < 0.1 * (drops.max() - drops.min())  # no steps
    assert occ.flat == [False]


@pytest.mark.parametrize("shape", [(40, 12), (40, 12, 1)])
def test_occlusion_over_time_x_feature_peaks_at_the_right_time_and_feature(shape):
    tt, ff = np.indices((40, 12))
    bump = np.exp(-((tt - 25) ** 2 / 20.0 + (ff - 4) ** 2 / 4.0)).astype(np.float32)

    def scorer(images, classes):
        return (images.reshape(len(images), 40, 12) * bump).sum(axis=(1, 2))

    drops = saliency.Occlusion(scorer).drops(np.ones((2, *shape), np.float32), [0, 0])
    assert drops.shape == (2, 40, 12)  # the map has the input's time x feature axes
    peak = np.unravel_index(drops[0].argmax(), (40, 12))
    assert abs(peak[0] - 25) <= 1 and abs(peak[1] - 4) <= 1
    assert saliency.spearman(drops[0], bump) > 0.9


def test_a_constant_score_gives_a_flat_map_and_no_agreement_instead_of_zero():
    occ = saliency.Occlusion(lambda images, classes: np.full(len(images), 0.25, np.float32))
    m = occ(np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype(np.float32), [0, 1])
    assert occ.flat == [True, True] and m.max() == 0.0
    other = np.random.default_rng(1).random((2, 16, 16)).astype(np.float32)
    d = saliency.saliency_drift(other, m, flat_a=[False, False], flat_b=occ.flat)
    assert d["spearman"] == [None, None] and d["mean_spearman"] is None
    assert d["flat_images"] == {"int8": [0, 1], "float": []}
    note = saliency.flat_note({"occlusion int8": occ.flat})
    assert "int8 model's score does not change" in note and "images 0, 1" in note
    # one flat image of two: the mean is over the other one only
    d = saliency.saliency_drift(other, other, flat_b=[True, False])
    assert d["spearman"][0] is None and d["mean_spearman"] == pytest.approx(1.0)


@pytest.mark.parametrize("name,map_shape", [("2d", (20, 8)), ("1d", (64,))])
def test_every_float_method_and_int8_occlusion_on_non_image_inputs(models, name, map_shape):
    import tensorflow as tf

    model, tfl, x = models[name]
    fm = saliency.FloatModel(model)
    classes = fm.predict_classes(x)
    info: dict = {}
    maps = saliency.compute_all(fm, tfl, x, classes, input_range=2.0, info=info)
    want = {"vanilla gradient", "SmoothGrad", "occlusion float", "occlusion int8"}
    if name == "2d":
        want.add("Grad-CAM")  # a 2-D input with a channel axis and a spatial conv
    else:
        assert "Grad-CAM" in info["left_out"]
    assert set(maps) == want
    for k, m in maps.items():
        assert m.shape == (3, *map_shape), k
        assert np.all(m.max(axis=tuple(range(1, m.ndim))) == pytest.approx(1.0)), k
    assert info["flat"]["occlusion int8"] == [False] * 3
    # the vanilla gradient of a vector is |d logit / d x| itself (no channel axis to reduce)
    if name == "1d":
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            score = tf.gather(fm.model(xt), classes, axis=1, batch_dims=1)
        g = np.abs(np.asarray(tape.gradient(score, xt)))
        np.testing.assert_allclose(maps["vanilla gradient"], saliency.normalise(g), atol=1e-5)
    d = saliency.agreement(maps, info)["occlusion_int8_vs_float"]
    assert d["mean_spearman"] > 0.5


def test_without_a_float_model_only_int8_occlusion_runs_and_says_what_is_missing(models):
    _, tfl, x = models["2d"]
    info: dict = {}
    seconds: dict = {}
    maps = saliency.compute_all(None, tfl, x, [0, 1, 2], seconds=seconds, info=info)
    assert list(maps) == ["occlusion int8"] and maps["occlusion int8"].shape == (3, 20, 8)
    assert set(info["left_out"]) == set(saliency.LEFT_OUT_WITHOUT_FLOAT)
    assert all("--float-model" in why for why in info["left_out"].values())
    assert "occlusion int8" in seconds
    assert saliency.agreement(maps, info) == {}


def test_int8_scores_come_from_a_child_process_and_equal_tflm(models):
    _, tfl, x = models["1d"]
    ops, tensors, inputs, outputs = graph(tfl)
    t_in, t_out = tensors[inputs[0]], tensors[outputs[0]]
    q = data.quantize(x, t_in.scales[0], t_in.zero_points[0])
    tflm = floatref.stack(reference.tflm_tensors(tfl, q))[outputs[0]].reshape(len(x), -1)
    want = data.dequantize(tflm, t_out.scales[0], t_out.zero_points[0])[np.arange(3), [0, 2, 1]]
    assert np.array_equal(saliency.tflite_scorer(tfl)(x, np.array([0, 2, 1])),
                          want.astype(np.float32))


def test_an_autoencoder_explains_its_reconstruction_error(models):
    model, tfl, x = models["ae"]
    target, tensor = saliency.explained_target(tfl)
    assert target == saliency.RECONSTRUCTION
    ops, tensors, inputs, outputs = graph(tfl)
    t_in, t_out = tensors[inputs[0]], tensors[outputs[0]]
    q = data.quantize(x, t_in.scales[0], t_in.zero_points[0])
    tflm = floatref.stack(reference.tflm_tensors(tfl, q))[outputs[0]].reshape(len(x), -1)
    err = np.mean((data.dequantize(tflm, t_out.scales[0], t_out.zero_points[0]) - x) ** 2, 1)
    np.testing.assert_allclose(saliency.tflite_scorer(tfl)(x, np.zeros(3, int)), err,
                               rtol=1e-5)
    fm = saliency.FloatModel(model)
    assert fm.target == saliency.RECONSTRUCTION
    np.testing.assert_allclose(fm.scores(x, None), np.mean((model(x).numpy() - x) ** 2, 1),
                               rtol=1e-5)
    maps = saliency.compute_all(fm, tfl, x, fm.predict_classes(x), input_range=2.0)
    assert maps["occlusion int8"].shape == (3, 64)
    assert maps["vanilla gradient"].shape == (3, 64)


def test_an_interpreter_that_aborts_in_its_child_leaves_tinyscope_running(models, monkeypatch):
    _, tfl, x = models["1d"]
    monkeypatch.setenv(FAULT_ENV, "abort")
    with pytest.raises(saliency.OcclusionError, match=r"aborted \(SIGABRT\)"):
        saliency.tflite_scorer(tfl)(x, np.zeros(3, int))
    info: dict = {}
    maps = saliency.compute_all(None, tfl, x, [0, 0, 0], info=info)
    assert maps == {}
    assert "aborted (SIGABRT)" in info["left_out"]["occlusion int8"]
    assert "left out" in info["left_out"]["occlusion int8"]
