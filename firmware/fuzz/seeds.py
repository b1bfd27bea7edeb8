"""Seed corpora for the firmware fuzzers (firmware/fuzz/fuzz.mk), from real artifacts.

- fuzz_model:    the int8 .tflite of MODEL_DIR plus small Keras models quantized with
                 tinyscope.convert.quantize (conv/pool, depthwise/add/concat/pad, dense, a
                 MobileNetV3-style block with the element-wise ops and activations, a decoder
                 with TRANSPOSE_CONV and both resizes) and a float-I/O model (QUANTIZE and
                 DEQUANTIZE at the edges).
- fuzz_frame:    every request and response frame type, COBS-encoded by
                 tinyscope.device.protocol (without the 0x00 delimiter).
- fuzz_commands: request sequences a real capture sends (HELLO, SET_INPUT chunks of a real
                 input, RUN in every mode, PING, RESET), in wire and raw mode (fuzz_commands.c).

    python firmware/fuzz/seeds.py --model-dir build/default --out firmware/build/fuzz/seeds
"""

from __future__ import annotations

import argparse
import json
import os
import struct
from pathlib import Path

import numpy as np
from tinyscope.device import protocol as proto


def small_models() -> list[bytes]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from tinyscope.convert.quantize import quantize_keras

    rng = np.random.default_rng(0)
    L = keras.layers
    out = []
    inp = keras.Input((8, 8, 1), batch_size=1)
    x = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = L.MaxPooling2D(2)(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Flatten()(x)
    out.append(keras.Model(inp, L.Dense(3, activation="softmax")(x)))
    inp = keras.Input((6, 6, 2), batch_size=1)
    a = L.DepthwiseConv2D(3, padding="same", activation="relu6")(inp)
    b = L.Conv2D(2, 1)(inp)
    x = L.Add()([a, b])
    x = L.Concatenate()([x, L.ZeroPadding2D(0)(inp)])
    x = L.ZeroPadding2D(1)(x)
    x = L.Conv2D(3, 3, strides=2, dilation_rate=1)(x)
    out.append(keras.Model(inp, L.GlobalAveragePooling2D()(x)))
    inp = keras.Input((5,), batch_size=1)
    out.append(keras.Model(inp, L.Dense(4)(L.Dense(6, activation="relu")(inp))))
    inp = keras.Input((6, 6, 3), batch_size=1)  # MobileNetV3-style block and friends
    x = L.Activation("hard_swish")(L.Conv2D(4, 3, padding="same")(inp))
    s = L.Conv2D(4, 1, activation="sigmoid")(L.GlobalAveragePooling2D(keepdims=True)(x))
    x = L.Multiply()([x, s])
    y = L.Activation("tanh")(L.Conv2D(4, 1)(inp))
    x = L.Subtract()([L.LeakyReLU(0.2)(x), y])
    x = L.Maximum()([x, L.Minimum()([x, y])])
    x = L.ReLU(6.0)(L.ZeroPadding2D(1)(x))
    out.append(keras.Model(inp, L.Cropping2D(((1, 2), (2, 1)))(x)))
    inp = keras.Input((4, 4, 2), batch_size=1)  # decoder
    x = L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.Resizing(5, 7, interpolation="nearest")(x)
    out.append(keras.Model(inp, L.UpSampling2D(2, interpolation="bilinear")(x)))
    blobs = []
    for m in out:
        calib = rng.normal(size=(16, *m.input_shape[1:])).astype(np.float32)
        blobs.append(quantize_keras(m, calib))
    blobs.append(float_io_model(out[0], rng))
    return blobs


def float_io_model(model, rng) -> bytes:
    """``model`` as an int8 model with float32 input and output (QUANTIZE, DEQUANTIZE)."""
    import tensorflow as tf

    calib = rng.normal(size=(16, *model.input_shape[1:])).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c[None]] for c in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def frames(input_bytes: int) -> list[proto.Frame]:
    data = bytes((i * 37 + 11) & 0xFF for i in range(input_bytes))
    f = [proto.Frame(proto.FrameType.HELLO, 1), proto.Frame(proto.FrameType.PING, 2),
         proto.Frame(proto.FrameType.RESET, 3)]
    f += [proto.Frame(proto.FrameType.SET_INPUT, 4 + i, p)
          for i, p in enumerate(proto.set_input_payloads(data, chunk=500))]
    for mode, ops in ((proto.RunMode.FIRST, []), (proto.RunMode.ALL, []),
                      (proto.RunMode.LIST, [0, 2]), (proto.RunMode.NONE, [])):
        f.append(proto.Frame(proto.FrameType.RUN, 20 + int(mode), proto.run_payload(mode, ops)))
    f.append(proto.Frame(proto.FrameType.RUN, 30, proto.run_payload(proto.RunMode.NONE,
                                                                     digest=True)))
    f.append(proto.Frame(proto.FrameType.RUN, 31, proto.run_payload(proto.RunMode.LIST, [1],
                                                                     digest=True)))
    f.append(proto.Frame(proto.FrameType.USE_INPUT, 32, proto.use_input_payload(0)))
    return f


def responses() -> list[proto.Frame]:
    info = proto.Info(1, 25_000_000, 25_000_000, 9000, 262144, 8000, "ab" * 32, 0, 784, 9, 10, 0,
                  "0.1.0", "qemu-mps2-an386", "", ((3, 1), (17, 2)))
    chunk = proto.TensorChunk(0, 3, 1, 0, 16, 9, (1, 2, 2, 4), (0.5,), (-3,), 0, bytes(range(16)))
    return [proto.Frame(proto.FrameType.INFO, 1, info.encode()),
            proto.Frame(proto.FrameType.TENSOR, 2, chunk.encode()),
            proto.Frame(proto.FrameType.TIMING, 3, proto.Timing(25_000_000, 30, (10, 20)).encode()),
            proto.Frame(proto.FrameType.DIGEST, 3, proto.Digest(12, (0x12345678, 7)).encode()),
            proto.Frame(proto.FrameType.ERROR, proto.SEQ_NONE,
                        proto.error_payload(proto.ErrorCode.BAD_FRAME, "x")),
            proto.Frame(proto.FrameType.DONE, 4, proto.done_payload(proto.FrameType.RUN, 3))]


def raw_record(f: proto.Frame) -> bytes:
    return struct.pack("<BHH", f.type, f.seq, len(f.payload)) + f.payload


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--no-keras", action="store_true", help="only the model of --model-dir")
    args = ap.parse_args(argv)
    manifest = json.loads((args.model_dir / "manifest.json").read_text())
    input_bytes = int(np.prod(manifest["input"]["shape"]))
    dirs = {t: args.out / t for t in ("fuzz_model", "fuzz_frame", "fuzz_commands")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    models = [(args.model_dir / manifest["model_file"]).read_bytes()]
    if not args.no_keras:
        models += small_models()
    for i, blob in enumerate(models):
        (dirs["fuzz_model"] / f"model{i}.tflite").write_bytes(blob)
    reqs = frames(input_bytes)
    for i, f in enumerate([*reqs, *responses()]):
        (dirs["fuzz_frame"] / f"frame{i:02d}").write_bytes(f.encode()[:-1])
    hello, ping, reset = reqs[:3]
    chunks = [f for f in reqs if f.type == proto.FrameType.SET_INPUT]
    runs = [f for f in reqs if f.type == proto.FrameType.RUN]
    sequences = [[hello], [ping, reset], *[[hello, *chunks, r] for r in runs],
                 [*chunks, runs[0], *chunks[:1], runs[1]]]
    for i, seq in enumerate(sequences):
        (dirs["fuzz_commands"] / f"wire{i:02d}").write_bytes(
            b"\x00" + b"".join(f.encode() for f in seq))
        (dirs["fuzz_commands"] / f"raw{i:02d}").write_bytes(
            b"\x01" + b"".join(raw_record(f) for f in seq))
    print(f"seeds: {len(models)} models, {len(reqs) + 5} frames, {2 * len(sequences)} "
          f"request sequences -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
