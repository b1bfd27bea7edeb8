"""Saliency: shapes, normalisation, determinism, the occlusion sanity property on the float
and the int8 model, saliency drift measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tinyscope import data
from tinyscope.analysis import saliency
from tinyscope.convert import model
from tinyscope.convert.quantize import quantize_keras

ROOT = Path(__file__).resolve().parents[2]
N = 16


@pytest.fixture(scope="module")
def setup():
    net = model.load_model(ROOT / "models" / "default.keras")
    train, test = data.split(data.load_mnist())
    x, y = test.x[:N], test.y[:N]
    return net, x, y, train.x[:200]


@pytest.fixture(scope="module")
def float_model(setup):
    return saliency.FloatModel(setup[0])


@pytest.fixture(scope="module")
def maps(setup, float_model):
    _, x, y, _ = setup
    return {
        "vanilla": saliency.VanillaGradient(float_model)(x, y),
        "smooth": saliency.SmoothGrad(float_model, 1.0, samples=8)(x, y),
        "gradcam": saliency.GradCAM(float_model)(x, y),
    }


def test_maps_have_image_shape_and_are_normalised_per_image(maps):
    for name, m in maps.items():
        assert m.shape == (N, 28, 28), name
        assert m.dtype == np.float32
        flat = m.reshape(N, -1)
        np.testing.assert_allclose(flat.min(1), 0.0, atol=1e-6, err_msg=name)
        top = flat.max(1)
        # each map reaches 1, or is all zero (Grad-CAM when every weighted map is negative)
        assert np.all(np.isclose(top, 1.0, atol=1e-6) | (top == 0.0)), name
        assert np.mean(top == 1.0) >= (1.0 if name != "gradcam" else 0.75), name


def test_vanilla_gradient_is_abs_gradient_of_the_logit(setup, float_model):
    import tensorflow as tf

    net, x, y, _ = setup
    method = saliency.VanillaGradient(float_model)
    assert method.stride == 1  # conv1 has stride 1: no phase averaging
    logits_model = model.logits_model(model.rebatch(net, None))
    xt = tf.constant(x[:3])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        score = tf.reduce_sum(logits_model(xt)[:, 5])
    expected = np.abs(np.asarray(tape.gradient(score, xt))).max(-1)
    np.testing.assert_allclose(method(x[:3], 5), saliency.normalise(expected), atol=1e-5)
    # one trace serves every batch size, and the predictions
    method(x[:5], y[:5])
    method(x[:2], y[:2])
    float_model.predict_classes(x[:3])
    assert float_model._grad.experimental_get_tracing_count() == 1


def test_smoothgrad_is_seeded_and_uses_the_model_input_range(float_model):
    x = data.load_mnist().x[:2]
    a = saliency.SmoothGrad(float_model, 1.0, samples=4, seed=3)(x, [1, 2])
    b = saliency.SmoothGrad(float_model, 1.0, samples=4, seed=3)(x, [1, 2])
    assert np.array_equal(a, b)
    # the noise scales with the model's input range, not with each image's own range
    dark = x[:1] * 0.1
    c = saliency.SmoothGrad(float_model, 1.0, samples=4, seed=3)(dark, [1])
    d = saliency.SmoothGrad(float_model, 0.1, samples=4, seed=3)(dark, [1])
    assert not np.allclose(c, d)


def test_phase_average_removes_a_period_two_checkerboard():
    from tinyscope.analysis.saliency.gradient import phase_average

    board = (np.indices((8, 8)).sum(0) % 2).astype(np.float32)[None]
    out = phase_average(board, 2)
    assert np.allclose(out[0, :-1, :-1], 0.5)
    assert phase_average(board, 1) is board


def test_gradcam_skips_a_classifier_conv_on_a_pooled_map():
    import keras

    inp = keras.Input((16, 16, 3), batch_size=1)
    h = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inp)
    h = keras.layers.ReLU(name="act")(h)
    h = keras.layers.GlobalAveragePooling2D(keepdims=True)(h)
    h = keras.layers.Conv2D(3, 1, name="classifier")(h)
    out = keras.layers.Softmax()(keras.layers.Reshape((3,))(h))
    cam = saliency.GradCAM(saliency.FloatModel(keras.Model(inp, out)))
    assert cam.layer == "act"


def test_gradcam_uses_the_last_conv_layer_placed_on_its_receptive_field(setup, float_model):
    net, _, _, _ = setup
    cam = saliency.GradCAM(float_model)
    assert cam.layer == "conv2"
    # conv2 output pixel i: conv1 (valid 3x3) -> pool 2 -> conv2 (valid 3x3) centres it on
    # input pixel 2i + 3.5, i.e. continuous coordinate 2i + 4
    assert cam.grid == ((4.0, 2.0), (4.0, 2.0))
    assert saliency.receptive_grid(net, "conv1") == ((1.5, 1.0), (1.5, 1.0))
    # a single hot cell lands on its receptive-field centre
    cell = np.zeros((1, 11, 11), np.float32)
    cell[0, 5, 2] = 1.0
    up = saliency.upsample(cell, (28, 28), cam.grid)[0]
    assert np.unravel_index(up.argmax(), up.shape) in {(13, 7), (13, 8), (14, 7), (14, 8)}


def _occlusion_drop(scorer, x, y, mask_fn):
    """Score drop when the pixels selected by mask_fn(image_index) are set to 0."""
    occluded = x.copy()
    for i in range(len(x)):
        occluded[i][mask_fn(i)] = 0.0
    return scorer(x, y) - scorer(occluded, y)


def _sanity(scorer, sal, x, y, fraction=0.1):
    most = _occlusion_drop(scorer, x, y, lambda i: saliency.top_k_mask(sal[i], fraction))
    least = _occlusion_drop(scorer, x, y, lambda i: saliency.top_k_mask(-sal[i], fraction))
    return most, least


@pytest.mark.parametrize("method", ["vanilla", "smooth", "gradcam"])
def test_occluding_the_most_salient_pixels_lowers_the_score_more(setup, float_model, maps,
                                                                method):
    net, x, y, _ = setup
    most, least = _sanity(saliency.keras_scorer(float_model), maps[method], x, y)
    assert np.mean(most) > np.mean(least) + 1.0
    assert np.mean(most > least) >= 0.8


def test_int8_scores_are_tflm_logits_bit_for_bit(setup):
    from tinyscope.analysis import floatref, reference
    from tinyscope.convert.graph import graph

    net, x, y, calib = setup
    tfl = quantize_keras(net, calib)
    ops, tensors, inputs, _ = graph(tfl)
    logits = ops[-1].inputs[0]
    t_in, t_out = tensors[inputs[0]], tensors[logits]
    q = data.quantize(x, t_in.scales[0], t_in.zero_points[0])
    tflm = floatref.stack(reference.tflm_tensors(tfl, q))[logits].reshape(len(x), -1)
    want = data.dequantize(tflm, t_out.scales[0], t_out.zero_points[0])[np.arange(len(x)), y]
    assert np.array_equal(saliency.tflite_scorer(tfl)(x, y), want.astype(np.float32))


def test_int8_occlusion_saliency_sanity_and_drift_against_float(setup, float_model):
    net, x, y, calib = setup
    tfl = quantize_keras(net, calib)
    int8_scorer = saliency.tflite_scorer(tfl)
    float_scorer = saliency.keras_scorer(float_model)
    # the int8 logits track the float ones
    np.testing.assert_allclose(int8_scorer(x, y), float_scorer(x, y), atol=1.0)
    occ_int8 = saliency.Occlusion(int8_scorer)(x[:8], y[:8])
    occ_float = saliency.Occlusion(float_scorer)(x[:8], y[:8])
    assert occ_int8.shape == (8, 28, 28)
    most, least = _sanity(int8_scorer, occ_int8, x[:8], y[:8])
    assert np.all(most > least)
    d = saliency.saliency_drift(occ_float, occ_int8)
    assert len(d["spearman"]) == 8
    assert 0.5 < d["mean_spearman"] <= 1.0 and 0.3 < d["mean_iou_top_k"] <= 1.0
    same = saliency.saliency_drift(occ_float, occ_float)
    assert same["mean_spearman"] == pytest.approx(1.0) and same["mean_iou_top_k"] == 1.0


def test_occlusion_drop_matches_a_hand_computed_patch():
    # score = sum of the top-left 2x2 pixels; a 2x2 patch at stride 2 over a 4x4 image
    def scorer(images, classes):
        return images[:, :2, :2, 0].sum(axis=(1, 2))

    img = np.zeros((1, 4, 4, 1), np.float32)
    img[0, :2, :2, 0] = 1.0
    occ = saliency.Occlusion(scorer, patch=2, stride=2)
    drops = occ.drops(img, [0])
    assert drops[0, :2, :2].tolist() == [[4.0, 4.0], [4.0, 4.0]]
    assert np.all(drops[0, 2:, :] == 0) and np.all(drops[0, :, 2:] == 0)
    assert occ.geometry(96) == (2, 2)
    assert saliency.Occlusion(scorer).geometry(96) == (24, 12)  # a quarter, half of it
    assert saliency.Occlusion(scorer).geometry(10) == (3, 1)  # at least 3 values


def test_occlusion_covers_every_pixel_equally_and_leaves_no_grid():
    from tinyscope.analysis.saliency.occlusion import positions

    starts = positions(10, 6, 2)
    assert starts == [-4, -2, 0, 2, 4, 6, 8]
    cover = np.zeros(10)
    for s in starts:
        cover[max(s, 0):s + 6] += 1
    assert np.all(cover == 3)
    # a score that is a smooth weighting of the pixels gives a smooth map, peaked at the bump
    yy, xx = np.indices((32, 32))
    bump = np.exp(-((yy - 12) ** 2 + (xx - 20) ** 2) / 30.0).astype(np.float32)

    def scorer(images, classes):
        return (images[..., 0] * bump).sum(axis=(1, 2))

    drops = saliency.Occlusion(scorer).drops(np.ones((1, 32, 32, 1), np.float32), [0])[0]
    peak = np.unravel_index(drops.argmax(), drops.shape)
    assert abs(peak[0] - 12) <= 1 and abs(peak[1] - 20) <= 1
    assert saliency.spearman(drops, bump) > 0.9
    # no grid: the second difference along a row stays small (a 4-pixel patch moved by 2
    # gives 0.29 of the range here; these smooth windows 0.11 at half-window strides, 0.05
    # at third-window strides)
    span = drops.max() - drops.min()
    assert np.abs(np.diff(drops, 2, axis=1)).max() < 0.13 * span
    assert np.abs(np.diff(drops, 2, axis=0)).max() < 0.13 * span
    fine = saliency.Occlusion(scorer, patch=8, stride=2).drops(np.ones((1, 32, 32, 1),
                                                                      np.float32), [0])[0]
    assert np.abs(np.diff(fine, 2, axis=1)).max() < 0.1 * (fine.max() - fine.min())


def test_rank_correlation_and_iou():
    a = np.array([[0.0, 1.0], [2.0, 3.0]])
    assert saliency.spearman(a, a * 10 + 1) == pytest.approx(1.0)
    assert saliency.spearman(a, -a) == pytest.approx(-1.0)
    assert saliency.rank(np.array([5.0, 1.0, 5.0])).tolist() == [1.5, 0.0, 1.5]
    b = np.array([[3.0, 2.0], [1.0, 0.0]])
    assert saliency.iou_top_k(a, b, 0.25) == 0.0
    assert saliency.iou_top_k(a, a, 0.5) == 1.0
    assert saliency.normalise(np.ones((1, 3, 3))).max() == 0.0


def test_compute_all_gives_every_method(setup):
    net, x, y, calib = setup
    tfl = quantize_keras(net, calib)
    maps = saliency.compute_all(net, tfl, x[:2], y[:2])
    assert set(maps) == {"vanilla gradient", "SmoothGrad", "Grad-CAM", "occlusion float",
                         "occlusion int8"}
    assert all(m.shape == (2, 28, 28) for m in maps.values())
    assert "occlusion int8" not in saliency.compute_all(net, None, x[:1], y[:1])
