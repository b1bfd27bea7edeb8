"""Random small Keras architectures from the layer set the runtime supports, for the
property tests: each is a list of block specs (plain dicts, printed on failure). Blocks:
convolutions (plain, depthwise, transposed), pooling, padding, cropping, resizes, residual
ADD / SUB / MUL / MAXIMUM / MINIMUM of two branches, CONCATENATION, a hard-swish block, a
squeeze-and-excite block, Rescaling, LeakyReLU, sigmoid/tanh activations, a standalone
ReLU/ReLU6; and some models with float32 input and output (QUANTIZE / DEQUANTIZE edges)."""

from __future__ import annotations

from hypothesis import strategies as st

ACTS = [None, "relu", "relu6"]
KINDS = ["conv", "dwconv", "maxpool", "avgpool", "pad", "add", "concat",
         "sub", "mul", "maxmin", "hswish", "se", "rescale", "leaky", "act", "relu", "tconv",
         "resize", "upbilinear", "crop"]
MAX_SIZE = 16  # no block grows the smaller side past this


@st.composite
def architectures(draw) -> dict:
    h = draw(st.integers(5, 14))
    w = draw(st.integers(5, 14))
    c = draw(st.integers(1, 3))
    blocks: list[dict] = []
    size = min(h, w)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(KINDS))
        k = draw(st.integers(1, 3))
        stride = draw(st.integers(1, 2))
        padding = draw(st.sampled_from(["same", "valid"]))
        if kind in ("conv", "dwconv"):
            dil = draw(st.integers(1, 2)) if stride == 1 else 1
            eff = (k - 1) * dil + 1
            if padding == "valid" and size < eff:
                padding = "same"
            b = {"kind": kind, "k": k, "stride": stride, "padding": padding, "dilation": dil,
                 "act": draw(st.sampled_from(ACTS))}
            if kind == "conv":
                b["filters"] = draw(st.integers(1, 8))
            else:
                b["mult"] = draw(st.integers(1, 2))
        elif kind in ("maxpool", "avgpool"):
            pool = draw(st.integers(2, 3))
            if size < pool:
                continue
            b = {"kind": kind, "pool": pool, "stride": stride, "padding": padding}
        elif kind == "pad":
            b = {"kind": kind, "pad": draw(st.integers(1, 2))}
        elif kind in ("hswish", "se", "rescale", "leaky", "act", "relu"):
            b = {"kind": kind, "filters": draw(st.integers(1, 6)),
                 "alpha": draw(st.sampled_from([0.05, 0.2, 0.5])),
                 "fn": draw(st.sampled_from(["sigmoid", "tanh"])),
                 "six": draw(st.booleans()),
                 "scale": draw(st.sampled_from([1 / 255, 0.5, 2.0])),
                 "offset": draw(st.sampled_from([0.0, -1.0, 0.25]))}
        elif kind == "tconv":
            if stride * size > MAX_SIZE:
                stride = 1
            b = {"kind": kind, "filters": draw(st.integers(1, 6)), "k": k, "stride": stride,
                 "padding": padding, "act": draw(st.sampled_from(ACTS))}
        elif kind in ("resize", "upbilinear"):
            if kind == "upbilinear" and 2 * size > MAX_SIZE:
                continue
            b = {"kind": kind, "h": draw(st.integers(2, MAX_SIZE)),
                 "w": draw(st.integers(2, MAX_SIZE)),
                 "interpolation": draw(st.sampled_from(["nearest", "bilinear"]))}
        elif kind == "crop":
            if size < 4:
                continue
            b = {"kind": kind, "top": draw(st.integers(0, 1)), "bottom": draw(st.integers(0, 1)),
                 "left": draw(st.integers(0, 1)), "right": draw(st.integers(1, 2))}
        else:
            b = {"kind": kind, "filters": draw(st.integers(1, 6)), "k": k,
                 "act": draw(st.sampled_from(ACTS))}
        blocks.append(b)
        size = _next_size(size, b)
    head = draw(st.sampled_from(["flatten_dense", "gap", "gap_dense"]))
    return {"input": (h, w, c), "blocks": blocks, "head": head,
            "units": draw(st.integers(2, 10)), "dense_act": draw(st.sampled_from(ACTS)),
            "softmax": draw(st.booleans()), "seed": draw(st.integers(0, 2**16)),
            # float32 input and output (QUANTIZE / DEQUANTIZE edges) in one model of five
            "float_io": draw(st.integers(0, 4)) == 0}


def _next_size(size: int, b: dict) -> int:
    if b["kind"] in ("conv", "dwconv"):
        eff = (b["k"] - 1) * b["dilation"] + 1
        return -(-size // b["stride"]) if b["padding"] == "same" else (
            (size - eff) // b["stride"] + 1)
    if b["kind"] in ("maxpool", "avgpool"):
        s = b["stride"]
        return -(-size // s) if b["padding"] == "same" else (size - b["pool"]) // s + 1
    if b["kind"] == "pad":
        return size + 2 * b["pad"]
    if b["kind"] == "relu":
        return size + 2
    if b["kind"] == "tconv":
        if b["padding"] == "same":
            return size * b["stride"]
        return (size - 1) * b["stride"] + b["k"]
    if b["kind"] == "resize":
        return min(b["h"], b["w"])
    if b["kind"] == "upbilinear":
        return 2 * size
    if b["kind"] == "crop":
        return size - max(b["top"] + b["bottom"], b["left"] + b["right"])
    return size


def build(arch: dict):
    """The Keras model of an architecture (random weights and biases, batch size 1)."""
    import keras
    from keras import layers

    from tests.runtime.helpers import keras_model

    def body(x):
        for b in arch["blocks"]:
            kind = b["kind"]
            if kind == "conv":
                x = layers.Conv2D(b["filters"], b["k"], strides=b["stride"], padding=b["padding"],
                                  dilation_rate=b["dilation"], activation=b["act"])(x)
            elif kind == "dwconv":
                x = layers.DepthwiseConv2D(b["k"], strides=b["stride"], padding=b["padding"],
                                           depth_multiplier=b["mult"],
                                           dilation_rate=b["dilation"], activation=b["act"])(x)
            elif kind == "maxpool":
                x = layers.MaxPooling2D(b["pool"], strides=b["stride"], padding=b["padding"])(x)
            elif kind == "avgpool":
                x = layers.AveragePooling2D(b["pool"], strides=b["stride"],
                                            padding=b["padding"])(x)
            elif kind == "pad":
                x = layers.ZeroPadding2D(b["pad"])(x)
            elif kind == "add":
                a = layers.Conv2D(b["filters"], b["k"], padding="same", activation=b["act"])(x)
                c = layers.Conv2D(b["filters"], 1, padding="same")(x)
                x = layers.Add()([a, c])
            elif kind == "concat":
                a = layers.Conv2D(b["filters"], b["k"], padding="same", activation=b["act"])(x)
                c = layers.Conv2D(max(1, b["filters"] // 2), 1, padding="same")(x)
                x = layers.Concatenate()([a, c])
            else:
                x = _new_block(layers, b, x)
        if arch["head"] == "flatten_dense":
            x = layers.Flatten()(x)
            x = layers.Dense(arch["units"], activation=arch["dense_act"])(x)
        else:
            x = layers.GlobalAveragePooling2D()(x)
            if arch["head"] == "gap_dense":
                x = layers.Dense(arch["units"], activation=arch["dense_act"])(x)
        if arch["softmax"]:
            x = layers.Softmax()(x)
        return x

    keras.backend.clear_session()
    return keras_model(body, arch["input"], seed=arch["seed"])


def _new_block(layers, b: dict, x):
    """The blocks of the element-wise ops, activations, resizes and transposed conv."""
    kind = b["kind"]
    if kind in ("sub", "mul", "maxmin"):
        a = layers.Conv2D(b["filters"], b["k"], padding="same", activation=b["act"])(x)
        c = layers.Conv2D(b["filters"], 1, padding="same")(x)
        merge = {"sub": layers.Subtract, "mul": layers.Multiply,
                 "maxmin": layers.Maximum if b["filters"] % 2 else layers.Minimum}[kind]
        return merge()([a, c])
    if kind == "hswish":
        return layers.Activation("hard_swish")(layers.Conv2D(b["filters"], 1)(x))
    if kind == "se":  # squeeze-and-excite: MEAN, 1x1 conv + sigmoid, MUL broadcast over HxW
        s = layers.GlobalAveragePooling2D(keepdims=True)(x)
        s = layers.Conv2D(x.shape[-1], 1, activation="sigmoid")(s)
        return layers.Multiply()([x, s])
    if kind == "rescale":
        return layers.Rescaling(b["scale"], b["offset"])(layers.Conv2D(b["filters"], 1)(x))
    if kind == "leaky":
        return layers.LeakyReLU(b["alpha"])(layers.Conv2D(b["filters"], 1)(x))
    if kind == "act":
        return layers.Activation(b["fn"])(layers.Conv2D(b["filters"], 1)(x))
    if kind == "relu":  # after PAD, which has no fused activation: RELU / RELU6 of its own
        return layers.ReLU(6.0 if b["six"] else None)(layers.ZeroPadding2D(1)(x))
    if kind == "tconv":
        return layers.Conv2DTranspose(b["filters"], b["k"], strides=b["stride"],
                                      padding=b["padding"], activation=b["act"])(x)
    if kind == "resize":
        return layers.Resizing(b["h"], b["w"], interpolation=b["interpolation"])(x)
    if kind == "upbilinear":
        return layers.UpSampling2D(2, interpolation="bilinear")(x)
    if kind == "crop":
        return layers.Cropping2D(((b["top"], b["bottom"]), (b["left"], b["right"])))(x)
    raise ValueError(f"unknown block {kind}")
