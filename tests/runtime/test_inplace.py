"""In-place operators chosen by the arena planner, checked end to end against TFLM: an
expansion conv followed by a depthwise conv whose input and output are the largest pair of
the model, so the loader runs the depthwise in place (through one channel group's copy,
ops/depthwise_conv.c) and the arena must be below what the pair needs out of place. Every
tensor equals TFLM's; group sizes 4, 2 and 1 and strides 1 and 2 are covered. A residual
ADD whose two inputs die at it takes the place of one of them."""

from __future__ import annotations

import pytest
from tinyscope.convert.quantize import quantize_keras

from tests.runtime.helpers import (
    build_runner,
    calibration,
    compare_with_tflm,
    keras_model,
    random_int8_inputs,
)

SIDE = 32  # the residual model's side


@pytest.fixture(scope="module", autouse=True)
def runner():
    build_runner()


def _expand_depthwise(channels: int, stride: int, padding: str):
    def layers(x):
        import keras

        x = keras.layers.Conv2D(channels, 1, activation="relu")(x)
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding=padding,
                                         activation="relu6")(x)
        x = keras.layers.Conv2D(2, 1)(x)
        return keras.layers.GlobalAveragePooling2D()(x)
    return layers


# (channels, stride, padding, side): groups of 4, 2 and 1 channels; at stride 2 the copy
# (g / channels of the input and of the output) pays only with many channels
@pytest.mark.parametrize(("channels", "stride", "padding", "side"),
                         [(24, 1, "same", 32), (48, 2, "same", 32), (6, 1, "same", 48),
                          (9, 1, "valid", 48)])
def test_depthwise_in_place_equals_tflm(channels: int, stride: int, padding: str,
                                        side: int) -> None:
    shape = (side, side, 1)
    tfl = quantize_keras(keras_model(_expand_depthwise(channels, stride, padding), shape),
                         calibration(shape, seed=channels))
    msg, arena = compare_with_tflm(tfl, random_int8_inputs(tfl, 2, seed=stride))
    assert msg is None, msg
    # out of place the depthwise alone needs its input and output: the whole arena
    # (persistent part included) is below that only if it ran in place
    out_side = (side - 1) // stride + 1 if padding == "same" else (side - 3) // stride + 1
    out_of_place = side * side * channels + out_side * out_side * channels
    assert arena < out_of_place, (arena, out_of_place)


def test_residual_add_in_place_equals_tflm() -> None:
    def layers(x):
        import keras

        a = keras.layers.Conv2D(16, 1)(x)
        b = keras.layers.Conv2D(16, 3, padding="same")(a)
        x = keras.layers.Add()([a, b])
        x = keras.layers.Conv2D(16, 1)(x)
        return keras.layers.GlobalAveragePooling2D()(x)

    shape = (SIDE, SIDE, 1)
    tfl = quantize_keras(keras_model(layers, shape), calibration(shape, seed=3))
    msg, _ = compare_with_tflm(tfl, random_int8_inputs(tfl, 2, seed=3))
    assert msg is None, msg
