"""The default CNN: architecture, seeded training, the committed model's accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tinyscope import data
from tinyscope.convert import model

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "models" / "default.keras"


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist()


def test_default_architecture_starts_with_8_filter_3x3_conv_and_batch_1():
    net = model.build_default()
    conv = [layer for layer in net.layers if type(layer).__name__ == "Conv2D"][0]
    assert conv is net.layers[1]
    assert conv.filters == 8 and tuple(conv.kernel_size) == (3, 3)
    assert tuple(net.inputs[0].shape) == (1, 28, 28, 1)
    assert type(net.layers[-1]).__name__ == "Softmax"
    assert net.get_layer(model.LOGITS_LAYER).units == 10


def test_training_is_reproducible_and_learns(mnist):
    small = mnist.subset(np.arange(0, 5000, 5))  # 1000 images, 100 per class
    a, info_a = model.train(small, epochs=2, progress=False)
    b, info_b = model.train(small, epochs=2, progress=False)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        assert np.array_equal(wa, wb)
    assert info_a == info_b
    assert info_a["n_test"] == 200 and tuple(a.inputs[0].shape) == (1, 28, 28, 1)
    assert info_a["test_accuracy"] > 0.5  # 10 classes: chance is 0.1


def test_committed_default_model_accuracy_on_held_out_split(mnist):
    net = model.load_model(DEFAULT)
    _, test = data.split(mnist)
    batched = model.rebatch(net, None)
    probs = np.asarray(batched.predict(test.x, batch_size=250, verbose=0))
    acc = float(np.mean(probs.argmax(1) == test.y))
    assert acc >= 0.95, acc
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_rebatch_and_logits_model_keep_the_function(mnist):
    net = model.load_model(DEFAULT)
    x = mnist.x[:4]
    batched = model.rebatch(net, None)
    single = np.concatenate([np.asarray(net(x[i : i + 1])) for i in range(4)])
    np.testing.assert_allclose(np.asarray(batched(x)), single, atol=1e-6)
    logits = np.asarray(model.logits_model(batched)(x))
    np.testing.assert_allclose(
        np.exp(logits) / np.exp(logits).sum(1, keepdims=True), single, atol=1e-5
    )


def test_load_model_missing_file_says_how_to_make_one(tmp_path):
    from tinyscope.errors import TinyscopeError

    with pytest.raises(TinyscopeError, match="tinyscope train"):
        model.load_model(tmp_path / "nope.keras")


def test_logits_model_of_a_dense_softmax_head_is_linear():
    import keras

    rng = np.random.default_rng(0)
    inp = keras.Input((6,))
    net = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(inp))
    x = rng.random((4, 6), dtype=np.float32)
    logits = np.asarray(model.logits_model(net)(x))
    w, b = net.get_layer("head").get_weights()
    np.testing.assert_allclose(logits, x @ w + b, rtol=1e-5, atol=1e-6)
