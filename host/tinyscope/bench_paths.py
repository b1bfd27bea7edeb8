"""Optimized-kernel paths that an operator's shapes do not tell, read from its builtin
options (the manifest has shapes, not dilation or pool windows): ``make bench``'s
``kernel_path`` column. Conditions as the kernels' headers state them
(firmware/runtime/src/kernels/cm4/conv.c, depthwise_conv.c, pooling.c)."""

from __future__ import annotations

import math

ADD_TABLE_MIN = 256  # add.c's TABLE_MIN
POOL_2X2 = ("filterHeight", "filterWidth", "strideH", "strideW")


DW_ANY_TAPS = 64  # depthwise_conv.c's ANY_TAPS
DW_ANY = "fast: any-kernel NHWC loop (4 channels per word)"


def depthwise_path(i: list[int], f: list[int], dilated: bool = False) -> str:
    """depthwise_conv.c's path for input shape ``i`` and filter shape ``f`` (1, kh, kw,
    out_c) off its 3x3 routines (another kernel size, or ``dilated``): the 4-channel NHWC
    loop (dw_any) for depth multiplier 1, depth % 4 == 0 and at most 64 taps, else the plain
    loop nest."""
    why = "dilated" if dilated else "kernel not 3x3"
    if len(i) == len(f) == 4 and i[3] == f[3] and f[3] % 4 == 0 and f[1] * f[2] <= DW_ANY_TAPS:
        return f"{DW_ANY}, {why}"
    return f"fallback: plain loop ({why}; not depth multiplier 1, depth % 4 == 0, <= 64 taps)"


def options_path(op: dict, opts: dict, shapes: dict) -> str | None:
    """The path of ``op`` (a manifest operator) that its shapes alone do not tell, or None:
    a dilated CONV_2D (``dilation_w != 1``) runs the plain loop, a dilated DEPTHWISE_CONV_2D
    the 4-channel NHWC loop or the plain loop (depthwise_path); a MAX_POOL_2D off
    pooling.c's row path (2x2, stride 2, depth % 4 == 0, every window inside the input) runs
    its windowed 4-channel loop; an ADD that broadcasts (a Rescaling's offset) or has fewer
    than 256 outputs runs the reference kernel in the optimized firmware too."""
    name = op["op"]
    dil_w, dil_h = opts.get("dilationWFactor", 1), opts.get("dilationHFactor", 1)
    if name == "CONV_2D" and dil_w != 1:
        return "fallback: plain loop (dilation_w != 1)"
    if name == "DEPTHWISE_CONV_2D" and (dil_w, dil_h) != (1, 1):
        return depthwise_path(*(shapes.get(t, []) for t in op["inputs"][:2]), dilated=True)
    if name == "MAX_POOL_2D" and opts:
        i, o = shapes.get(op["inputs"][0], []), shapes.get(op["outputs"][0], [])
        fast = ([opts.get(k) for k in POOL_2X2] == [2, 2, 2, 2] and len(i) == len(o) == 4
                and i[3] % 4 == 0 and 2 * o[1] <= i[1] and 2 * o[2] <= i[2])
        if not fast:
            return "fast: cm4 kernel (windowed loop, 4 channels per word)"
    if name == "ADD" and len(op["inputs"]) == 2:
        a, b = (shapes.get(t) for t in op["inputs"])
        n = math.prod(shapes.get(op["outputs"][0], [0]))
        if a != b or n < ADD_TABLE_MIN:  # add.c: same shapes, at least TABLE_MIN outputs
            return "ref (broadcast or fewer than 256 outputs: add.c runs the reference)"
    return None
