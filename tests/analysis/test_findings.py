"""What the report says first, as numbers: the worst layers, what to try, per-class accuracy."""

from __future__ import annotations

import numpy as np
from tinyscope.analysis import findings


def _row(index: int, op: str, name: str, acc: float, local: float, snr: float,
         channels: int = 8, clipped: float = 0.0) -> dict:
    return {"index": index, "op_index": index - 10, "op": op, "keras_layer": name,
            "shape": [1, 4, 4, channels],
            "device_vs_float": {"rmse_over_scale": acc, "snr_db": snr},
            "device_vs_float_local": {"rmse_over_scale": local, "snr_db": 40.0},
            "float_outside_int8_range": clipped}


def _manifest(per_channel: bool) -> dict:
    scales = [0.1] * 8 if per_channel else [0.1]
    return {
        "operators": [{"index": i, "op": "CONV_2D", "inputs": [100 + i, 200 + i],
                       "outputs": [10 + i]} for i in range(3)],
        "tensors": [{"index": 200 + i, "kind": "constant", "shape": [8, 3, 3, 8],
                     "scales": scales} for i in range(3)],
        "calibration": {"count": 50},
    }


def test_one_layer_adding_drift_is_named_with_what_to_try() -> None:
    rows = [_row(10, "CONV_2D", "a", 0.3, 0.29, 45), _row(11, "CONV_2D", "b", 2.5, 2.4, 25,
                                                          clipped=0.02),
            _row(12, "CONV_2D", "c", 2.6, 0.3, 24)]
    d = findings.drift_summary(_manifest(per_channel=False), rows)
    assert d["finding"] == "layer" and d["target"]["keras_layer"] == "b"
    assert d["worst_accumulated"]["keras_layer"] == "c"
    what = " | ".join(s["what"] + ": " + s["why"] for s in d["suggestions"])
    assert "per-channel quantization of b's weights" in what
    assert "2.0% of b's float values fall outside its int8 range" in what
    assert "calibration used 50 images" in what


def test_per_channel_weights_are_not_suggested_twice() -> None:
    rows = [_row(10, "CONV_2D", "a", 2.5, 2.4, 25)]
    d = findings.drift_summary(_manifest(per_channel=True), rows)
    assert not any("per-channel" in s["what"] for s in d["suggestions"])


def test_drift_that_only_adds_up_points_at_accumulation() -> None:
    rows = [_row(10 + i, "CONV_2D", f"l{i}", 1.0 + 3 * i, 0.3, 30 - 6 * i) for i in range(3)]
    d = findings.drift_summary(_manifest(per_channel=True), rows)
    assert d["finding"] == "accumulation" and d["target"]["keras_layer"] == "l2"
    assert any(s["what"] == "quantization-aware training" for s in d["suggestions"])


def test_a_clean_model_has_no_finding_and_no_advice() -> None:
    rows = [_row(10, "CONV_2D", "a", 0.3, 0.29, 45), _row(11, "SOFTMAX", "p", 0.5, 0.4, 40,
                                                          clipped=0.25)]
    d = findings.drift_summary(_manifest(per_channel=False), rows)
    assert d["finding"] == "none" and d["suggestions"] == []


def test_per_class_accuracy() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2])
    device = np.array([0, 1, 1, 1, 0, 2])
    flt = np.array([0, 0, 1, 1, 1, 1])
    out = findings.per_class(labels, device, flt, ["a", "b", "c", "d"])
    assert [c["n"] for c in out] == [2, 3, 1, 0]
    assert out[0]["device_accuracy"] == 0.5 and out[0]["float_accuracy"] == 1.0
    assert out[1]["device_accuracy"] == 2 / 3 and out[2]["float_accuracy"] == 0.0
    assert out[3]["device_accuracy"] is None
