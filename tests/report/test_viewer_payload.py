"""The layer viewer's embedded data: exact round trips and the size budget."""

from __future__ import annotations

import base64
import json

import numpy as np
from tinyscope.report import viewer


def _decode_int8(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), np.int8)


def test_layouts() -> None:
    assert viewer.layout([26, 26, 8]) == ("image", [26, 26, 8])
    assert viewer.layout([1, 1, 256]) == ("vector", [256])  # global pooling
    assert viewer.layout([49, 10]) == ("matrix", [49, 10])
    assert viewer.layout([400]) == ("vector", [400])


def test_diffs_round_trip_sparse_and_dense() -> None:
    rng = np.random.default_rng(0)
    few = np.zeros(1000, np.int32)
    few[[3, 500, 999]] = [1, -2, 12]
    e = viewer.encode_diff(few)
    pos = np.frombuffer(base64.b64decode(e["sparse"][0]), "<u4")
    assert pos.tolist() == [3, 500, 999]
    assert _decode_int8(e["sparse"][1]).tolist() == [1, -2, 12]
    many = rng.integers(-3, 4, 1000)
    e = viewer.encode_diff(many)
    assert np.array_equal(_decode_int8(e["dense"]), many)


def _float_back(e: dict, dev: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return (dev.astype(np.float64) - zp + _decode_int8(e["drift"]) * e["step"]) * scale


def test_float_is_kept_to_a_quarter_lsb_of_drift() -> None:
    rng = np.random.default_rng(1)
    scale, zp = 0.0213, -5
    dev = rng.integers(-128, 128, 500).astype(np.int8)
    real = (dev.astype(np.float64) - zp + rng.normal(0, 2, 500)) * scale
    e = viewer.encode_float(real, dev, scale, zp)
    assert e["step"] == viewer.FLOAT_STEP_LSB
    assert np.max(np.abs(_float_back(e, dev, scale, zp) - real)) <= scale * e["step"] / 2 + 1e-12
    # a large drift gets a coarser step, never a clipped value
    far = real + 90 * scale * np.sign(rng.normal(size=500))
    e = viewer.encode_float(far, dev, scale, zp)
    assert e["step"] > viewer.FLOAT_STEP_LSB
    assert np.max(np.abs(_float_back(e, dev, scale, zp) - far)) <= scale * e["step"] / 2 + 1e-9


def test_tflm_is_left_out_only_where_it_equals_the_device() -> None:
    dev = np.arange(-10, 14, dtype=np.int8).reshape(2, 2, 3, 2)
    tflm = dev.copy()
    tflm[1, 0, 0, 0] += 1
    entry = viewer.payload([viewer.Layer(5, 0, "CONV_2D", "c", 0.1, 0, dev, tflm)],
                           [{}, {}], [0, 1])["layers"][0]
    assert entry["tflm"][0] == "same"
    assert np.array_equal(_decode_int8(entry["tflm"][1]), tflm[1].ravel())
    assert np.array_equal(_decode_int8(entry["device"][0]), dev[0].ravel())


def mobilenet_shapes() -> list[tuple[int, ...]]:
    """The 31 operator outputs of MobileNetV1 alpha 0.25 at 96x96x3 (Keras applications)."""
    shapes = [(48, 48, 8)]
    size, chans = 48, 8
    for out_ch, stride in [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1),
                           (128, 1), (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)]:
        size //= stride
        shapes += [(size, size, chans), (size, size, out_ch)]
        chans = out_ch
    return shapes + [(1, 1, 256), (1, 1, 2), (2,), (2,)]


def test_mobilenet_all_layers_three_images_fit_in_5_mb() -> None:
    rng = np.random.default_rng(2)
    n = 3
    layers = []
    for i, shape in enumerate(mobilenet_shapes()):
        dev = rng.integers(-128, 128, (n, *shape)).astype(np.int8)
        xnn = dev.copy()
        flat = xnn.reshape(-1)
        hit = rng.random(flat.size) < 0.03  # a few per cent differ after accumulation
        flat[hit] = np.clip(flat[hit].astype(np.int32) + rng.integers(-12, 13, hit.sum()),
                            -128, 127)
        flt = (dev.astype(np.float64) + rng.normal(0, 3, dev.shape)) * 0.05
        layers.append(viewer.Layer(100 + i, i, "CONV_2D", f"layer{i}", 0.05, 0, dev, dev.copy(),
                                   xnn, flt))
    assert len(layers) == 31
    data = viewer.payload(layers, [{}] * n, list(range(n)))
    size = len(json.dumps(data))
    assert size < 5_000_000, f"{size / 1e6:.2f} MB"
