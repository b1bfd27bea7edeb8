"""How far two saliency maps are apart: Spearman rank correlation and IoU of the top-k%."""

from __future__ import annotations

import numpy as np


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's correlation needs)."""
    v = np.asarray(values, np.float64).ravel()
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), np.float64)
    ranks[order] = np.arange(len(v), dtype=np.float64)
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rank(a), rank(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt(np.dot(ra, ra) * np.dot(rb, rb))
    return float(np.dot(ra, rb) / den) if den > 0 else 1.0 if np.array_equal(ra, rb) else 0.0


def top_k_mask(sal: np.ndarray, fraction: float) -> np.ndarray:
    """The ``fraction`` most salient pixels (ties at the threshold broken by position)."""
    flat = np.asarray(sal).ravel()
    k = max(1, int(round(fraction * flat.size)))
    mask = np.zeros(flat.size, bool)
    mask[np.argsort(-flat, kind="stable")[:k]] = True
    return mask.reshape(np.shape(sal))


def iou_top_k(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    ma, mb = top_k_mask(a, fraction), top_k_mask(b, fraction)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 1.0


def saliency_drift(a: np.ndarray, b: np.ndarray, fraction: float = 0.1,
                   flat_a=None, flat_b=None) -> dict:
    """How far saliency maps ``b`` are from ``a`` (both ``(N, ...)``): per image and mean.
    An image whose map is flat in either (``flat_a``/``flat_b``: per image, True where the
    score never changed) has no agreement (None) and is left out of the means, which are
    None when no image is left."""
    a, b = np.asarray(a), np.asarray(b)
    n = len(a)
    flat = [bool((flat_a or [False] * n)[i]) or bool((flat_b or [False] * n)[i])
            for i in range(n)]
    rho = [None if flat[i] else spearman(a[i], b[i]) for i in range(n)]
    iou = [None if flat[i] else iou_top_k(a[i], b[i], fraction) for i in range(n)]
    kept = [i for i in range(n) if not flat[i]]
    return {
        "spearman": rho, "iou_top_k": iou, "top_k_fraction": fraction,
        "mean_spearman": float(np.mean([rho[i] for i in kept])) if kept else None,
        "mean_iou_top_k": float(np.mean([iou[i] for i in kept])) if kept else None,
        "mean_abs_difference": float(np.mean(np.abs(a[kept] - b[kept]))) if kept else None,
        "flat_images": {"int8": [i for i in range(n) if (flat_b or [False] * n)[i]],
                        "float": [i for i in range(n) if (flat_a or [False] * n)[i]]},
    }
