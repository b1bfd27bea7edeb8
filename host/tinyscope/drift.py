"""placeholder"""
from __future__ import annotations

import math

import numpy as np


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``real = m * 2**(shift - 31)`` with ``m`` in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    m = round(mantissa * (1 << 31))
    if m == 1 << 31:
        m //= 2
        shift += 1
    return m, shift


def requantize(acc: np.ndarray, real_multiplier: float, rounding: str = "double") -> np.ndarray:
    """Scale int32 accumulators by ``real_multiplier`` with integer maths (no zero point added).

    ``"double"``: TFLM reference kernels (SaturatingRoundingDoublingHighMul, then
    RoundingDivideByPOT); ``"single"``: one rounding shift of the 64-bit product, as TFLite's
    optimized kernels (and, measured here, LiteRT's BUILTIN_REF FULLY_CONNECTED).
    """
    acc = np.asarray(acc, np.int64)
    m, shift = quantize_multiplier(real_multiplier)
    if rounding == "single":
        total = 31 - shift
        return (acc * m + (1 << (total - 1))) >> total
    if rounding != "double":
        raise ValueError(f"rounding must be 'double' or 'single', not {rounding!r}")
    x = acc * (1 << max(shift, 0))
    prod = x * m
    nudge = np.where(prod >= 0, 1 << 30, 1 - (1 << 30))
    s = prod + nudge
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))  # division truncating toward zero
    right = max(-shift, 0)
    if right == 0:
        return high
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def lsb_stats(a: np.ndarray, b: np.ndarray, max_bins: int = 8) -> dict:
    """Compare two int8 tensors element by element, in LSB (quantization steps)."""
    d = np.asarray(a, np.int32) - np.asarray(b, np.int32)
    values, counts = np.unique(d, return_counts=True)
    n = int(d.size)
    n_diff = int(np.count_nonzero(d))
    return {
        "n": n,
        "n_different": n_diff,
        "fraction_equal": (n - n_diff) / n if n else 1.0,
        "max_lsb": int(np.abs(d).max()) if n else 0,
        "histogram": {int(v): int(c) for v, c in zip(values, counts, strict=True)},
    }
