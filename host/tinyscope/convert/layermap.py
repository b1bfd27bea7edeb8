"""The float Keras model seen through the int8 model's graph: layers <-> operators <-> tensors.

TFLite tensor names are not a reliable key (Keras 3 adds ``_1`` suffixes, fused ops join
several names with ``;``), so the mapping follows the operator graph instead:

1. each Keras layer type lowers to known TFLite builtins (``Conv2D`` -> ``CONV_2D``, ``Dense``
   with a softmax activation -> ``FULLY_CONNECTED`` then ``SOFTMAX``, ...);
2. operators are visited in execution order and each takes the first unused Keras layer that
   lowers to its builtin and has the same output shape;
3. layers that TFLite folds into the op before them (ReLU, BatchNormalization, Dropout, a
   linear/ReLU ``Activation``) extend that op: the op's output tensor holds the float value of
   the *last* layer of the chain;
4. a requantizing ``QUANTIZE`` (or an unmatched ``RESHAPE``) carries its input's float value;
5. an operator left over is named after a Keras layer tinyscope has no lowering for (e.g.
   ``Activation("gelu")``) with the same output shape, so errors can name the layer.

:func:`tinyscope.analysis.floatref.float_tensors` runs the float model through this map.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyscope.convert.graph import graph

# Keras layer class -> the TFLite builtins it lowers to, in order (None: depends on options).
LAYER_OPS: dict[str, tuple[str, ...]] = {
    "Conv2D": ("CONV_2D",),
    "DepthwiseConv2D": ("DEPTHWISE_CONV_2D",),
    "Dense": ("FULLY_CONNECTED",),
    "MaxPooling2D": ("MAX_POOL_2D",),
    "AveragePooling2D": ("AVERAGE_POOL_2D",),
    "GlobalAveragePooling2D": ("MEAN",),
    "Flatten": ("RESHAPE",),
    "Reshape": ("RESHAPE",),
    "Softmax": ("SOFTMAX",),
    "Add": ("ADD",),
    "ZeroPadding2D": ("PAD",),
    "Concatenate": ("CONCATENATION",),
    "Multiply": ("MUL",),
    "Subtract": ("SUB",),
    "Maximum": ("MAXIMUM",),
    "Minimum": ("MINIMUM",),
    "LeakyReLU": ("LEAKY_RELU",),
    "Conv2DTranspose": ("TRANSPOSE_CONV",),
    "Cropping2D": ("STRIDED_SLICE",),
    # 1-D layers: TFLite runs them as the 2-D op on a 1 x L x C image (a RESHAPE in front)
    "Conv1D": ("CONV_2D",),
    "DepthwiseConv1D": ("DEPTHWISE_CONV_2D",),
    "MaxPooling1D": ("MAX_POOL_2D",),
    "AveragePooling1D": ("AVERAGE_POOL_2D",),
    "GlobalAveragePooling1D": ("MEAN",),
    # depthwise then pointwise: only the pointwise output holds the layer's float value
    "SeparableConv2D": ("DEPTHWISE_CONV_2D", "CONV_2D"),
    "SeparableConv1D": ("DEPTHWISE_CONV_2D", "CONV_2D"),
}
# Layers of several activation inputs: their operator has that many non-constant inputs.
MERGE_LAYERS = {"Add", "Multiply", "Subtract", "Maximum", "Minimum", "Concatenate"}
# Activations with an operator of their own (as an Activation layer or after a conv/dense).
ACTIVATION_OPS = {"softmax": "SOFTMAX", "sigmoid": "LOGISTIC", "tanh": "TANH",
                  "hard_swish": "HARD_SWISH", "hard_silu": "HARD_SWISH"}
# Resizing / UpSampling2D interpolation -> builtin (UpSampling2D nearest becomes TILE).
RESIZE_OPS = {"nearest": "RESIZE_NEAREST_NEIGHBOR", "bilinear": "RESIZE_BILINEAR"}
# Layers TFLite folds into the op that produces their input (no op of their own).
FUSED_LAYERS = {"ReLU", "BatchNormalization", "Dropout", "Identity", "SpatialDropout2D"}
FUSED_ACTIVATIONS = {"linear", "relu", "relu6"}
# Ops that only carry their input's float value forward (requantize / reshape).
PASS_THROUGH_OPS = {"QUANTIZE", "DEQUANTIZE", "RESHAPE"}


@dataclass
class LayerMap:
    """How the float Keras model lines up with the int8 TFLite graph."""

    op_layer: dict[int, str | None] = field(default_factory=dict)  # op index -> Keras layer
    op_fused: dict[int, list[str]] = field(default_factory=dict)  # op -> layers folded into it
    tensor_layer: dict[int, str] = field(default_factory=dict)  # tensor -> layer with its value
    tensor_source: dict[int, int] = field(default_factory=dict)  # pass-through: tensor -> input
    input_tensor: int = -1
    unknown_layers: list[tuple[str, str]] = field(default_factory=list)  # (name, class)


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", str(act)) if act is not None else "linear"


def layer_ops(layer) -> tuple[str, ...] | None:
    """The builtins a Keras layer lowers to; ``()`` if folded; None if tinyscope doesn't know."""
    kind = type(layer).__name__
    if kind == "InputLayer" or kind in FUSED_LAYERS:
        return ()
    if kind == "Activation":
        name = _activation_name(layer)
        if name in FUSED_ACTIVATIONS:
            return ()
        return (ACTIVATION_OPS[name],) if name in ACTIVATION_OPS else None
    if kind in ("Resizing", "UpSampling2D"):
        op = RESIZE_OPS.get(str(getattr(layer, "interpolation", "")))
        if op is None or (kind == "UpSampling2D" and op == "RESIZE_NEAREST_NEIGHBOR"):
            return None
        return (op,)
    ops = LAYER_OPS.get(kind)
    if ops is None:
        return None
    if kind in ("Conv2D", "DepthwiseConv2D", "Dense", "Conv2DTranspose", "Conv1D",
                "DepthwiseConv1D", "SeparableConv2D", "SeparableConv1D"):
        act = _activation_name(layer)
        if act in ACTIVATION_OPS:
            return (*ops, ACTIVATION_OPS[act])
        if act not in FUSED_ACTIVATIONS:
            return None
    return ops


def shape_of(tensor) -> tuple[int, ...]:
    return tuple(int(s) if s is not None else -1 for s in tensor.shape)


def _consumers(model) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        for node in getattr(layer, "_inbound_nodes", []):
            for parent in node.parent_nodes:
                out.setdefault(parent.operation.name, []).append(layer.name)
    return out


def _same_shape(keras_shape: tuple[int, ...], tflite_shape: tuple[int, ...]) -> bool:
    if len(keras_shape) == 3 and len(tflite_shape) == 4 and tflite_shape[1] == 1:
        keras_shape = (keras_shape[0], 1, *keras_shape[1:])  # a 1-D layer's (N, 1, L, C)
    if len(keras_shape) != len(tflite_shape):
        return False
    return all(k in (-1, t) for k, t in zip(keras_shape, tflite_shape, strict=True))


def _feeds_an_op(layer, names: set[str]) -> bool:
    """``layer``'s output goes into a Keras op that is no layer of the model (``x + 3.0`` in
    MobileNetV3's hard sigmoid): the converter may fold it into the operator (a constant
    add into the bias, the ReLU6 after it as the fused activation), so the operator's output
    is not the layer's value."""
    return any(n.operation.name not in names for n in getattr(layer, "_outbound_nodes", []))


def map_layers(model, model_bytes: bytes) -> LayerMap:
    """Map every operator of ``model_bytes`` to the Keras layer of ``model`` it comes from."""
    ops, tensors, inputs, _ = graph(model_bytes)
    layers = {layer.name: layer for layer in model.layers}
    consumers = _consumers(model)
    result = LayerMap(input_tensor=inputs[0] if inputs else -1)
    # (layer name, remaining op kinds) still waiting for an op
    pending: list[tuple[str, list[str]]] = []
    unknown: list[str] = []  # layers without a known lowering: matched by output shape only
    for layer in model.layers:
        kinds = layer_ops(layer)
        if kinds is None:
            result.unknown_layers.append((layer.name, type(layer).__name__))
            unknown.append(layer.name)
        elif kinds:
            pending.append((layer.name, list(kinds)))

    def chain_end(name: str) -> tuple[str, list[str]]:
        fused: list[str] = []
        while len(consumers.get(name, [])) == 1:
            nxt = layers[consumers[name][0]]
            if layer_ops(nxt) != () or shape_of(nxt.output) != shape_of(layers[name].output):
                break
            fused.append(nxt.name)
            name = nxt.name
        return name, fused

    # tensors computed at run time (the input and every op's outputs); the rest are constants
    computed = set(inputs) | {t for o in ops for t in o.outputs}
    for op in ops:
        out_idx = op.outputs[0] if op.outputs else -1
        out_shape = tensors[out_idx].shape if out_idx in tensors else ()
        match = None
        for k, (name, kinds) in enumerate(pending):
            if kinds and kinds[0] == op.name:
                last = len(kinds) == 1
                if type(layers[name]).__name__ in MERGE_LAYERS and sum(
                        i in computed for i in op.inputs) != len(layers[name].input):
                    continue  # a Multiply layer is not a MUL by a constant (x * (1 / 6))
                if not last or _same_shape(shape_of(layers[name].output), out_shape):
                    match = k
                    break
        if match is None:
            guess = next(
                (n for n in unknown if _same_shape(shape_of(layers[n].output), out_shape)), None
            )
            if guess is not None:  # e.g. Activation("gelu") -> GELU: name it, no float value
                unknown.remove(guess)
                result.op_layer[op.index] = guess
                result.op_fused[op.index] = []
                continue
            result.op_layer[op.index] = None
            result.op_fused[op.index] = []
            if op.name in PASS_THROUGH_OPS and op.inputs:
                result.tensor_source[out_idx] = op.inputs[0]
            continue
        name, kinds = pending[match]
        kinds.pop(0)
        result.op_layer[op.index] = name
        if kinds:  # more ops to come for this layer (e.g. Dense + softmax): no float here
            result.op_fused[op.index] = []
            continue
        pending.pop(match)
        end, fused = chain_end(name)
        result.op_fused[op.index] = fused
        if not _feeds_an_op(layers[end], set(layers)):
            result.tensor_layer[out_idx] = end
    return result
