"""Keras applications with random weights, converted to full int8, run by the native
runtime: every tensor equals TFLM's (MobileNetV3Small: HARD_SWISH, MUL squeeze-and-excite,
MEAN, ADD; MobileNetV2: RELU6-fused convolutions, ADD). No softmax head: with random
weights `beta * input_scale` overflows and TFLM's interpreter aborts the process."""

from __future__ import annotations

import numpy as np
import pytest
from tinyscope.convert import graph
from tinyscope.convert.quantize import quantize_keras

from tests.runtime.helpers import build_runner, compare_with_tflm, random_int8_inputs

SHAPE = (96, 96, 3)


@pytest.fixture(scope="module", autouse=True)
def runner():
    build_runner()


def _convert(app) -> bytes:
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE, batch_size=1)
    net = keras.Model(inp, app(inp))
    cal = np.random.default_rng(0).uniform(-1, 1, size=(8, *SHAPE)).astype(np.float32)
    return quantize_keras(net, cal)


def _check(tfl: bytes, expect_ops: set[str]) -> None:
    ops = {o.name for o in graph.graph(tfl)[0]}
    assert expect_ops <= ops, ops
    msg, arena = compare_with_tflm(tfl, random_int8_inputs(tfl, 2, seed=1))
    assert msg is None, msg
    assert arena > 0


def test_mobilenet_v3_small_equals_tflm():
    import keras

    app = keras.applications.MobileNetV3Small(
        alpha=0.75, input_shape=SHAPE, weights=None, include_preprocessing=False,
        classifier_activation=None)
    _check(_convert(app), {"HARD_SWISH", "MUL", "MEAN", "ADD", "DEPTHWISE_CONV_2D"})


def test_mobilenet_v2_equals_tflm():
    import keras

    app = keras.applications.MobileNetV2(alpha=0.35, input_shape=SHAPE, weights=None,
                                         classifier_activation=None)
    _check(_convert(app), {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"})
