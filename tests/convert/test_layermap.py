"""Keras layers <-> int8 operators for layer kinds the bench twins do not have."""

from __future__ import annotations

import numpy as np
from tinyscope import data
from tinyscope.analysis import drift, floatref, reference
from tinyscope.convert import flow, graph, layermap


def _keyword_spotter_1d():
    """A 1-D keyword spotter (49 frames x 10 MFCCs): Conv1D, dilated DepthwiseConv1D,
    1-D pooling, GlobalAveragePooling1D. TFLite runs them as 2-D ops on 1 x L x C."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(1)
    inp = keras.Input((49, 10), batch_size=1)
    x = layers.Conv1D(12, 7, padding="same", activation="relu", name="c0")(inp)
    x = layers.DepthwiseConv1D(5, dilation_rate=2, padding="same", activation="relu",
                               name="dw")(x)
    x = layers.MaxPooling1D(2, name="mp")(x)
    x = layers.Conv1D(16, 3, strides=2, name="c1")(x)
    x = layers.AveragePooling1D(2, name="ap")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(inp, layers.Dense(5, name="logits")(x))


def test_1d_layers_convert_and_map_onto_their_2d_operators(tmp_path):
    """Conv1D & co. were refused before conversion ("cannot run these Keras layers") although
    the int8 graph has only operators the runtime runs; now they convert, and each operator
    carries its layer's float value (the (N, L, C) output seen as the (N, 1, L, C) tensor) and
    its layer-local value (the layer run on the int8 tensor it got: a Keras 1-D layer needs
    that (N, 1, L, C) tensor as (N, L, C); it crashed the report's drift)."""
    net = _keyword_spotter_1d()
    x = np.random.default_rng(0).normal(0, 1, (24, 49, 10)).astype(np.float32)
    npy = tmp_path / "mfcc.npy"
    np.save(npy, x)
    m = flow.convert("kws.keras", tmp_path / "b", data=str(npy), calib=16, num_inputs=2,
                     model=net)
    assert m["unsupported"] == []
    tfl = (tmp_path / "b" / "model_int8.tflite").read_bytes()
    ops, tensors, inputs, _ = graph.graph(tfl)
    lmap = layermap.map_layers(net, tfl)
    named = {lmap.op_layer[o.index]: o for o in ops if lmap.op_layer[o.index]}
    assert {k: named[k].name for k in ("c0", "dw", "mp", "c1", "ap", "gap", "logits")} == {
        "c0": "CONV_2D", "dw": "DEPTHWISE_CONV_2D", "mp": "MAX_POOL_2D", "c1": "CONV_2D",
        "ap": "AVERAGE_POOL_2D", "gap": "MEAN", "logits": "FULLY_CONNECTED"}
    flt = floatref.float_tensors(net, tfl, x[:4], layer_map=lmap)
    q_in = data.quantize(x[:4], tensors[inputs[0]].scales[0], tensors[inputs[0]].zero_points[0])
    ints = floatref.stack(reference.litert_tensors(tfl, q_in))
    local = drift.local_float_tensors(net, tfl, ints, layer_map=lmap)
    for name in ("c0", "dw", "mp", "c1", "ap", "gap", "logits"):
        out = named[name].outputs[0]
        assert out in flt, f"{name}: no float value"
        assert out in local, f"{name}: no layer-local value"
        assert local[out].shape == flt[out].shape
        t = tensors[out]
        deq = data.dequantize(ints[out], t.scales[0], t.zero_points[0])
        rmse = float(np.sqrt(np.mean((deq - flt[out]) ** 2)))
        assert rmse < 3.0 * t.scales[0], (name, rmse, t.scales[0])


def test_separable_conv_maps_its_pointwise_output_and_has_no_wrong_local_value():
    """A SeparableConv2D lowers to DEPTHWISE_CONV_2D + CONV_2D: the pointwise output holds the
    layer's float value. Before, the layer was 'unknown' (no float column, no drift) and its
    layer-local value would have run the whole layer on the depthwise output."""
    import keras
    from keras import layers
    from tinyscope.convert.quantize import quantize_keras

    keras.utils.set_random_seed(2)
    inp = keras.Input((16, 16, 3), batch_size=1)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c")(inp)
    x = layers.SeparableConv2D(16, 3, padding="same", activation="relu", name="sep")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    net = keras.Model(inp, layers.Dense(3, name="logits")(x))
    x = np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 3)).astype(np.float32)
    tfl = quantize_keras(net, x)
    ops, tensors, inputs, _ = graph.graph(tfl)
    lmap = layermap.map_layers(net, tfl)
    assert [(o.name, lmap.op_layer[o.index]) for o in ops] == [
        ("CONV_2D", "c"), ("DEPTHWISE_CONV_2D", "sep"), ("CONV_2D", "sep"), ("MEAN", "gap"),
        ("FULLY_CONNECTED", "logits")]
    assert lmap.unknown_layers == []
    dw_out, pw_out = ops[1].outputs[0], ops[2].outputs[0]
    assert dw_out not in lmap.tensor_layer and lmap.tensor_layer[pw_out] == "sep"
    flt = floatref.float_tensors(net, tfl, x, layer_map=lmap)
    q_in = data.quantize(x, tensors[inputs[0]].scales[0], tensors[inputs[0]].zero_points[0])
    ints = floatref.stack(reference.litert_tensors(tfl, q_in))
    t = tensors[pw_out]
    deq = data.dequantize(ints[pw_out], t.scales[0], t.zero_points[0])
    assert float(np.sqrt(np.mean((deq - flt[pw_out]) ** 2))) < 3.0 * t.scales[0]
    local = drift.local_float_tensors(net, tfl, ints, layer_map=lmap)
    assert pw_out not in local and ops[0].outputs[0] in local


def test_a_layer_that_cannot_run_on_the_int8_tensor_has_no_local_value():
    """The layer-local value is best effort: TensorFlow's own refusal of an input (an
    InvalidArgumentError, not a ValueError) crashed the whole report with a traceback."""
    import keras

    inp = keras.Input((10, 4), batch_size=1)
    net = keras.Model(inp, keras.layers.DepthwiseConv1D(3, name="dw")(inp))
    odd = np.zeros((2, 1, 11, 4), np.float32)  # 4-D and not the layer's size: no reshape
    assert drift._run_layer(net, "dw", [odd], []) is None


def test_a_layer_feeding_a_keras_op_gets_no_float_value_of_a_different_tensor():
    """MobileNetV3's squeeze-excite: Conv2D -> ``x + 3.0`` -> ReLU(6) -> ``* (1/6)``. The
    converter folds the + 3 into the conv's bias and the ReLU6 into its activation, so the
    CONV_2D output is relu6(conv + 3), not the conv layer's value: it was shown as 255 LSB of
    drift on every such layer. Every float value given must now match its int8 tensor."""
    import keras
    from keras import layers
    from tinyscope.convert.quantize import quantize_keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 4), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="c")(inp)
    s = layers.Conv2D(8, 1, name="se")(x)
    s = layers.ReLU(6.0, name="r6")(s + 3.0) * (1.0 / 6.0)
    x = layers.GlobalAveragePooling2D(name="gap")(layers.Multiply(name="m")([x, s]))
    net = keras.Model(inp, layers.Dense(3, name="logits")(x))
    xs = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 4)).astype(np.float32)
    tfl = quantize_keras(net, xs)
    ops, tensors, inputs, _ = graph.graph(tfl)
    lmap = layermap.map_layers(net, tfl)
    se_op = next(o for o in ops if lmap.op_layer[o.index] == "se")
    assert se_op.outputs[0] not in lmap.tensor_layer
    flt = floatref.float_tensors(net, tfl, xs, layer_map=lmap)
    q_in = data.quantize(xs, tensors[inputs[0]].scales[0], tensors[inputs[0]].zero_points[0])
    ints = floatref.stack(reference.litert_tensors(tfl, q_in))
    assert len(flt) >= 4
    for idx, values in flt.items():
        t = tensors[idx]
        deq = data.dequantize(ints[idx], t.scales[0], t.zero_points[0])
        assert float(np.sqrt(np.mean((deq - values) ** 2))) < 3.0 * t.scales[0], idx
