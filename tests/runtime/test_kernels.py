"""Per-kernel tests, like TFLM's kernel tests: single-op (or nearly) int8 models built with
Keras, each tensor of the runtime compared with TFLM element for element on random inputs.
Edge cases: strides, SAME/VALID padding, dilation, depth multiplier, every fused activation,
broadcasting-free ADD with different input scales, GAP as MEAN, PAD, CONCATENATION; the
element-wise ops with squeeze-and-excite broadcasting (1x1xC against HxWxC), the activations
as their own operators, cropping and strided slices, resizes up and down, and transposed
convolutions with every padding and a few strides."""

from __future__ import annotations

import pytest
from keras import layers
from tinyscope.convert import graph
from tinyscope.convert.quantize import quantize_keras

from tests.runtime.helpers import (
    build_runner,
    calibration,
    compare_with_tflm,
    keras_model,
    random_int8_inputs,
)


def _two(x):
    """Two differently scaled branches of x with one shape."""
    return [layers.Conv2D(3, 1)(x), layers.Conv2D(3, 3, padding="same")(x)]


def _squeeze_excite(x):
    c = layers.Conv2D(6, 3, padding="same")(x)
    s = layers.GlobalAveragePooling2D(keepdims=True)(c)
    return layers.Multiply()([c, layers.Conv2D(6, 1, activation="sigmoid")(s)])


CASES = {
    "conv_3x3_s2_same_relu6": ((9, 7, 2), lambda x: layers.Conv2D(5, 3, strides=2,
                               padding="same", activation="relu6")(x), "CONV_2D"),
    "conv_2x3_valid_dil2": ((10, 9, 3), lambda x: layers.Conv2D(4, (2, 3), padding="valid",
                            dilation_rate=2)(x), "CONV_2D"),
    "conv_1x1_relu": ((5, 5, 3), lambda x: layers.Conv2D(7, 1, activation="relu")(x), "CONV_2D"),
    "dwconv_mult2_s2_same": ((8, 9, 3), lambda x: layers.DepthwiseConv2D(
        3, strides=2, padding="same", depth_multiplier=2, activation="relu")(x),
        "DEPTHWISE_CONV_2D"),
    # taller than wide, stride_h 1: the transposed planes (5 rows of 13, odd: the single tail)
    "dwconv_3x3_tall_same_relu": ((13, 5, 4), lambda x: layers.DepthwiseConv2D(
        3, padding="same", activation="relu")(x), "DEPTHWISE_CONV_2D"),
    "dwconv_valid_dil2": ((9, 9, 2), lambda x: layers.DepthwiseConv2D(
        2, dilation_rate=2, padding="valid")(x), "DEPTHWISE_CONV_2D"),
    "dense_relu": ((12,), lambda x: layers.Dense(6, activation="relu")(x), "FULLY_CONNECTED"),
    "maxpool_3_s2_same": ((7, 8, 2), lambda x: layers.MaxPooling2D(3, strides=2,
                          padding="same")(x), "MAX_POOL_2D"),
    "avgpool_3_s2_same": ((7, 8, 2), lambda x: layers.AveragePooling2D(3, strides=2,
                          padding="same")(x), "AVERAGE_POOL_2D"),
    "avgpool_2_valid": ((6, 5, 3), lambda x: layers.AveragePooling2D(2)(x), "AVERAGE_POOL_2D"),
    "add_two_scales": ((6, 6, 2), lambda x: layers.Add()(
        [layers.Conv2D(3, 1)(x), layers.Conv2D(3, 3, padding="same")(x)]), "ADD"),
    "mean_gap": ((5, 7, 4), lambda x: layers.GlobalAveragePooling2D()(x), "MEAN"),
    "pad": ((4, 5, 2), lambda x: layers.ZeroPadding2D(((1, 2), (2, 0)))(
        layers.Conv2D(2, 1)(x)), "PAD"),
    "concat": ((5, 5, 2), lambda x: layers.Concatenate()(
        [layers.Conv2D(2, 1)(x), layers.Conv2D(3, 3, padding="same")(x)]), "CONCATENATION"),
    "softmax": ((16,), lambda x: layers.Softmax()(layers.Dense(12)(x)), "SOFTMAX"),
    "reshape": ((3, 4, 2), lambda x: layers.Dense(3)(layers.Flatten()(x)), "RESHAPE"),
    "mul": ((6, 6, 2), lambda x: layers.Multiply()(_two(x)), "MUL"),
    "mul_squeeze_excite": ((7, 5, 3), _squeeze_excite, "MUL"),
    "logistic": ((6, 6, 2), lambda x: layers.Activation("sigmoid")(layers.Conv2D(4, 3)(x)),
                 "LOGISTIC"),
    "sub": ((6, 6, 2), lambda x: layers.Subtract()(_two(x)), "SUB"),
    "sub_broadcast": ((5, 6, 3), lambda x: layers.Subtract()(
        [layers.Conv2D(3, 1)(x), layers.GlobalAveragePooling2D(keepdims=True)(x)]), "SUB"),
    "hard_swish": ((6, 6, 2), lambda x: layers.Activation("hard_swish")(
        layers.Conv2D(4, 3)(x)), "HARD_SWISH"),
    "leaky_relu": ((6, 6, 2), lambda x: layers.LeakyReLU(0.2)(layers.Conv2D(4, 3)(x)),
                   "LEAKY_RELU"),
    "relu": ((6, 6, 2), lambda x: layers.ReLU()(layers.ZeroPadding2D(1)(
        layers.Conv2D(3, 1)(x))), "RELU"),
    "relu6": ((6, 6, 2), lambda x: layers.ReLU(6.0)(layers.ZeroPadding2D(1)(
        layers.Conv2D(3, 1)(x))), "RELU6"),
    "maximum": ((6, 6, 2), lambda x: layers.Maximum()(_two(x)), "MAXIMUM"),
    "minimum": ((6, 6, 2), lambda x: layers.Minimum()(_two(x)), "MINIMUM"),
    "tanh": ((6, 6, 2), lambda x: layers.Activation("tanh")(layers.Conv2D(4, 3)(x)), "TANH"),
    "cropping": ((8, 7, 2), lambda x: layers.Cropping2D(((1, 2), (2, 1)))(
        layers.Conv2D(3, 1)(x)), "STRIDED_SLICE"),
    "slice_steps_reversed": ((9, 8, 3), lambda x: layers.Lambda(
        lambda t: t[:, ::2, 1:-1, ::-1])(layers.Conv2D(3, 1)(x)), "STRIDED_SLICE"),
    "slice_shrink_axis": ((6, 5, 3), lambda x: layers.Lambda(lambda t: t[:, 2, -3:, :])(
        layers.Conv2D(4, 1)(x)), "STRIDED_SLICE"),
    "resize_nearest_up": ((5, 4, 2), lambda x: layers.Resizing(11, 9, interpolation="nearest")(
        layers.Conv2D(3, 1)(x)), "RESIZE_NEAREST_NEIGHBOR"),
    "resize_nearest_down": ((9, 8, 2), lambda x: layers.Resizing(
        4, 5, interpolation="nearest")(layers.Conv2D(3, 1)(x)), "RESIZE_NEAREST_NEIGHBOR"),
    "resize_bilinear_up": ((5, 4, 2), lambda x: layers.Resizing(
        11, 9, interpolation="bilinear")(layers.Conv2D(3, 1)(x)), "RESIZE_BILINEAR"),
    "resize_bilinear_down": ((9, 8, 2), lambda x: layers.Resizing(
        4, 5, interpolation="bilinear")(layers.Conv2D(3, 1)(x)), "RESIZE_BILINEAR"),
    "upsampling_bilinear": ((5, 4, 2), lambda x: layers.UpSampling2D(
        2, interpolation="bilinear")(layers.Conv2D(3, 1)(x)), "RESIZE_BILINEAR"),
    "transpose_conv_s2_same_relu": ((5, 4, 3), lambda x: layers.Conv2DTranspose(
        4, 3, strides=2, padding="same", activation="relu")(x), "TRANSPOSE_CONV"),
    "transpose_conv_s2_valid": ((4, 5, 2), lambda x: layers.Conv2DTranspose(
        3, (3, 2), strides=2, padding="valid")(x), "TRANSPOSE_CONV"),
    "transpose_conv_s1_no_bias": ((5, 5, 2), lambda x: layers.Conv2DTranspose(
        5, 3, padding="same", use_bias=False)(x), "TRANSPOSE_CONV"),
    "transpose_conv_s3_k2": ((4, 4, 3), lambda x: layers.Conv2DTranspose(
        2, 2, strides=3, padding="same")(x), "TRANSPOSE_CONV"),
}


@pytest.fixture(scope="module", autouse=True)
def runner():
    build_runner()


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_equals_tflm(name):
    shape, body, op = CASES[name]
    net = keras_model(body, shape, seed=len(name))
    tfl = quantize_keras(net, calibration(shape, len(name), n=32))
    ops = [o.name for o in graph.graph(tfl)[0]]
    assert op in ops, f"{name}: the converter did not emit {op} ({ops})"
    x = random_int8_inputs(tfl, 8, seed=len(name))
    msg, arena = compare_with_tflm(tfl, x)
    assert msg is None, f"{name} ({ops}): {msg}"
    assert arena > 0
