"""Stage 3: the numbers: desktop references, drift, device vs desktop, saliency."""
