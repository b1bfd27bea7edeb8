"""Full-integer int8 quantization of a Keras model with TFLite's converter."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from tinyscope.errors import TinyscopeError


def quantize_keras(model, calibration: np.ndarray) -> bytes:
    """Convert a float Keras model to a full-int8 TFLite flatbuffer (int8 input and output).

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

    def representative() -> Iterator[list[np.ndarray]]:
        for sample in calibration:
            yield [sample[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        return bytes(converter.convert())
    except Exception as err:  # TF raises a zoo of types (ConverterError, ValueError, ...)
        raise TinyscopeError(
            f"TFLite could not convert the model to full int8: {err}. Keep to the layers "
            "listed in docs (Conv2D, DepthwiseConv2D, Dense, pooling, Add, Concatenate, ...) "
            "and give the Input a fixed batch_size=1."
        ) from err
