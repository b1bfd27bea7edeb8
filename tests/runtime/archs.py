"""Random small Keras architectures from the layer set the runtime supports, for the
property tests: each is a list of block specs (plain dicts, printed on failure)."""

from __future__ import annotations

from hypothesis import strategies as st

ACTS = [None, "relu", "relu6"]


@st.composite
def architectures(draw) -> dict:
    h = draw(st.integers(5, 14))
    w = draw(st.integers(5, 14))
    c = draw(st.integers(1, 3))
    blocks: list[dict] = []
    size = min(h, w)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "dwconv", "maxpool", "avgpool", "pad", "add",
                                     "concat"]))
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
        else:
            b = {"kind": kind, "filters": draw(st.integers(1, 6)), "k": k,
                 "act": draw(st.sampled_from(ACTS))}
        blocks.append(b)
        size = _next_size(size, b)
    head = draw(st.sampled_from(["flatten_dense", "gap", "gap_dense"]))
    return {"input": (h, w, c), "blocks": blocks, "head": head,
            "units": draw(st.integers(2, 10)), "dense_act": draw(st.sampled_from(ACTS)),
            "softmax": draw(st.booleans()), "seed": draw(st.integers(0, 2**16))}


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
