"""Full-integer int8 quantization of a Keras model with TFLite's converter."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from tinyscope.errors import TinyscopeError

IO_TYPES = ("int8", "float")  # the model's input and output: int8, or float32 edges


def quantize_keras(model, calibration: np.ndarray, io: str = "int8") -> bytes:
    """Convert a float Keras model to a full-int8 TFLite flatbuffer (int8 input and output;
    with ``io="float"`` float32 input and output around the int8 body: a QUANTIZE at the
    input, a DEQUANTIZE at the output).

    ``calibration`` is a float32 array of representative inputs shaped like the model input
    without the batch dimension stacked on axis 0, e.g. ``(N, 28, 28, 1)``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.ndim < 2 or len(calibration) == 0:
        raise TinyscopeError(
            f"calibration data must be a non-empty batch of inputs, got shape {calibration.shape}"
        )

    return _convert(tf.lite.TFLiteConverter.from_keras_model(model), calibration, io)


def quantize_saved_model(path, calibration: np.ndarray, io: str = "int8") -> bytes:
    """Full-int8 conversion of a SavedModel directory (``TFLiteConverter.from_saved_model``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from tinyscope.quiet import native_output

    calibration = np.asarray(calibration, dtype=np.float32)
    with native_output():
        converter = tf.lite.TFLiteConverter.from_saved_model(str(path))
        loaded = tf.saved_model.load(str(path))
        sigs = loaded.signatures
        fn = sigs.get("serving_default") or next(iter(sigs.values()))
        (name, spec), = fn.structured_input_signature[1].items()
        if spec.shape.rank and spec.shape[0] != 1:
            # A None batch adds SHAPE/STRIDED_SLICE/PACK ops: trace the signature at batch 1.
            fixed = tf.TensorSpec([1, *spec.shape[1:]], spec.dtype, name=name)
            concrete = tf.function(lambda x: fn(**{name: x})).get_concrete_function(fixed)
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded)
    return _convert(converter, calibration, io)


def _convert(converter, calibration: np.ndarray, io: str = "int8") -> bytes:
    """Run ``converter`` for full int8 with ``calibration`` as the representative data."""
    import tensorflow as tf

    from tinyscope.quiet import native_output

    def representative() -> Iterator[list[np.ndarray]]:
        for sample in calibration:
            yield [sample[None, ...]]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io not in IO_TYPES:
        raise TinyscopeError(f"--io {io}: use one of {', '.join(IO_TYPES)}")
    edge = tf.int8 if io == "int8" else tf.float32
    converter.inference_input_type = edge
    converter.inference_output_type = edge
    try:
        with native_output():  # the converter's C++ log lines
            return bytes(converter.convert())
    except Exception as err:  # TF raises a zoo of types (ConverterError, ValueError, ...)
        raise TinyscopeError(
            f"TFLite could not convert the model to full int8: {err}. Keep to the layers "
            "listed in docs (Conv2D, DepthwiseConv2D, Dense, pooling, Add, Concatenate, ...) "
            "and give the Input a fixed batch_size=1."
        ) from err
