"""The MLPerf Tiny twins (``tinyscope.bench_models``) as users' own models: finished as after
training (:data:`~tinyscope.bench_models.AS_TRAINED`: BatchNorm with random statistics,
softmax heads, the autoencoder's input a 640-vector), fed inputs from each benchmark's real
input domain, and converted to a full-int8 ``.tflite`` the way a user's own training pipeline
would do it (TFLiteConverter, representative data, int8 input and output).

The tests treat these files exactly as a user's ``.tflite``: tinyscope never sees the Keras
models. Names: ``mobilenet`` (MobileNetV1 0.25, 96x96x3, 31 ops), ``resnet8`` (32x32x3),
``dscnn`` (49x10x1 MFCCs), ``autoencoder`` (640, 10 ops).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tinyscope import bench_models

ARCHITECTURES = tuple(bench_models.TWINS)
# The real input domain each benchmark feeds (what the representative data and test inputs
# are drawn from): images in [0, 1] (VWW: [-1, 1] after MobileNet preprocessing), MFCCs
# (scaled), log-mel energies.
INPUT_RANGES = {
    "mobilenet": (-1.0, 1.0),
    "resnet8": (0.0, 1.0),
    "dscnn": (-4.0, 4.0),
    "autoencoder": (-6.0, 2.0),
}


def input_shape(name: str) -> tuple[int, ...]:
    return bench_models.input_shape(name, bench_models.AS_TRAINED)


def inputs(name: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` float inputs for ``name`` in its input domain, shape ``(n, *input shape)``."""
    lo, hi = INPUT_RANGES[name]
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, (n, *input_shape(name))).astype(np.float32)


def to_int8_tflite(model, calibration: np.ndarray) -> bytes:
    """Full-int8 conversion (int8 input and output), as in the TFLite documentation."""
    import tensorflow as tf

    def representative() -> Iterator[list[np.ndarray]]:
        for sample in calibration:
            yield [sample[None, ...].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def cached_int8(name: str, cache_dir: str | Path, seed: int = 0,
                calib: int = 16) -> tuple[Path, Path]:
    """``(keras_path, tflite_path)`` of the twin ``name``, built once and kept in
    ``cache_dir`` under a key of the twins' and this module's source and the TensorFlow
    version (so a change to an architecture or to TF builds it again)."""
    import tensorflow as tf

    sources = b"".join(Path(p).read_bytes() for p in (bench_models.__file__, __file__))
    key = hashlib.sha256(sources + tf.__version__.encode()).hexdigest()[:12]
    root = Path(cache_dir) / f"{name}-{seed}-{key}"
    keras_path, tflite_path = root / f"{name}.keras", root / f"{name}.tflite"
    if not (keras_path.is_file() and tflite_path.is_file()):
        root.mkdir(parents=True, exist_ok=True)
        finish = dataclasses.replace(bench_models.AS_TRAINED, batchnorm_seed=seed)
        model = bench_models.build(name, finish, seed=seed)
        tflite = to_int8_tflite(model, inputs(name, calib, seed=seed + 1))
        model.save(keras_path)
        tmp = tflite_path.with_suffix(".tmp")
        tmp.write_bytes(tflite)
        tmp.replace(tflite_path)
    return keras_path, tflite_path
