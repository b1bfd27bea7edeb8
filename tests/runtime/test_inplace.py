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


def test_reshape_of_the_model_input_is_an_alias() -> None:
    """RESHAPE (and the Flatten after it) writes nothing: its output is the model input's
    bytes (TS_OPF_ALIAS), so the arena holds the 2,048-byte input once, not twice."""
    def layers(x):
        import keras

        x = keras.layers.Reshape((32, 64))(x)
        x = keras.layers.Flatten()(x)
        return keras.layers.Dense(8)(x)

    shape = (2048,)
    tfl = quantize_keras(keras_model(layers, shape), calibration(shape, seed=11))
    msg, arena = compare_with_tflm(tfl, random_int8_inputs(tfl, 2, seed=11))
    assert msg is None, msg
    assert arena < 2 * 2048, arena  # the whole arena, persistent records included


def test_alias_of_a_tensor_read_again_later_is_never_overwritten() -> None:
    """A conv's output ``a`` is flattened (an alias of its bytes) and added to another
    flattened conv; ``a`` is read again by the residual ADD after it. The first ADD may not
    run in place over the alias (that would overwrite ``a``): it takes the other input's
    place. Every tensor equals TFLM's (a loader that lets it write over the alias fails)."""
    def layers(x):
        import keras

        a = keras.layers.Conv2D(8, 1)(x)
        b = keras.layers.Conv2D(8, 1)(x)
        flat = (SIDE * SIDE * 8,)
        m = keras.layers.Add()([keras.layers.Reshape(flat)(a), keras.layers.Reshape(flat)(b)])
        z = keras.layers.Add()([a, keras.layers.Reshape((SIDE, SIDE, 8))(m)])
        return keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(z))

    shape = (SIDE, SIDE, 2)
    tfl = quantize_keras(keras_model(layers, shape), calibration(shape, seed=12))
    msg, arena = compare_with_tflm(tfl, random_int8_inputs(tfl, 2, seed=12))
    assert msg is None, msg
    # a, b and the sum alive at once, each 8 KB; the flattened views cost nothing
    assert arena < 4 * SIDE * SIDE * 8, arena
