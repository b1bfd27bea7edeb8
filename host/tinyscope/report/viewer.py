"""The layer viewer's data: every captured tensor of a few images, packed for one HTML page.

The report embeds this as JSON; ``viewer.js`` draws it on canvases. Sizes are kept small:

* int8 tensors (device, desktop TFLM) as base64 bytes, one string per image; TFLM is left
  out (``"same"``) where it equals the device bit for bit, which is the expected case;
* XNNPACK - device as sparse (positions, LSB) when few values differ, else dense int8;
* the float model's value as its drift from the device, one int8 per value, in steps of a
  quarter LSB (coarser, ``max |drift| / 127``, where the drift is larger than 31 LSB):
  ``real = ((q - zero_point) + d * step) * scale``; a quarter of the size of float32.

Tensors are shown in one of three layouts: ``image`` (``H x W x C``: one tile per channel),
``matrix`` (``T x C``: one heat map with axes) and ``vector`` (``N`` values: a line plot).
A ``1 x 1 x C`` tensor (global pooling) is a vector.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FLOAT_STEP_LSB = 0.25  # the finest step of the float drift
SPARSE_FRACTION = 0.1  # below this fraction of differing values a diff is stored sparse
VALUE_CMAP = "viridis"
DIFF_CMAP = "RdBu_r"


@dataclass
class Layer:
    """One captured tensor with its references, batch axis first (``(N, ...)``)."""

    tensor: int
    op_index: int | None
    op: str
    name: str
    scale: float
    zero_point: int
    device: np.ndarray  # int8
    tflm: np.ndarray | None = None  # int8
    xnnpack: np.ndarray | None = None  # int8
    float: np.ndarray | None = None  # real values


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def layout(shape: Sequence[int]) -> tuple[str, list[int]]:
    """The display layout and display shape of a tensor shape without its batch axis."""
    s = [int(v) for v in shape]
    if len(s) == 3 and s[0] * s[1] == 1:
        return "vector", [s[2]]
    if len(s) == 3:
        return "image", s
    if len(s) == 2 and s[0] > 1:
        return "matrix", s
    n = int(np.prod(s)) if s else 1
    return "vector", [n]


def encode_diff(diff: np.ndarray) -> dict:
    """An integer difference tensor: ``{"sparse": [positions b64 uint32, values b64 int8]}``
    when few values differ, else ``{"dense": b64 int8}``; values clipped to int8."""
    flat = np.clip(np.asarray(diff).ravel(), -128, 127).astype(np.int8)
    nz = np.flatnonzero(flat)
    if len(nz) <= SPARSE_FRACTION * flat.size:
        return {"sparse": [b64(nz.astype("<u4")), b64(flat[nz])]}
    return {"dense": b64(flat)}


def encode_float(real: np.ndarray, device: np.ndarray, scale: float, zero_point: int) -> dict:
    """The float values as drift from the device's: ``{"step": LSB, "drift": b64 int8}``."""
    drift = np.asarray(real, np.float64) / scale - (device.astype(np.float64) - zero_point)
    worst = float(np.abs(drift).max()) if drift.size else 0.0
    step = max(FLOAT_STEP_LSB, worst / 127.0)
    q = np.clip(np.round(drift / step), -127, 127).astype(np.int8)
    return {"step": step, "drift": b64(q)}


def colormap_b64(name: str) -> str:
    """A matplotlib colour map as 256 RGB triples (768 bytes), base64."""
    from matplotlib import colormaps

    rgb = colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3]
    return b64(np.round(rgb * 255).astype(np.uint8))


def _layer_entry(layer: Layer, images: Sequence[int]) -> dict:
    kind, shape = layout(layer.device.shape[1:])
    dev = layer.device[list(images)]
    entry: dict = {
        "tensor": layer.tensor, "op_index": layer.op_index, "op": layer.op, "name": layer.name,
        "shape": [int(v) for v in layer.device.shape[1:]], "display_shape": shape,
        "layout": kind, "scale": float(layer.scale), "zero_point": int(layer.zero_point),
        "device": [b64(d.astype(np.int8)) for d in dev],
    }
    if layer.tflm is not None:
        tflm = layer.tflm[list(images)]
        entry["tflm"] = ["same" if np.array_equal(t, d) else b64(t.astype(np.int8))
                         for t, d in zip(tflm, dev, strict=True)]
    if layer.xnnpack is not None:
        x = layer.xnnpack[list(images)].astype(np.int32)
        entry["xnnpack_minus_device"] = [encode_diff(a - d) for a, d in
                                         zip(x, dev.astype(np.int32), strict=True)]
        entry["xnnpack_max_lsb"] = int(np.abs(x - dev).max()) if x.size else 0
    if layer.float is not None:
        entry["float"] = [encode_float(f, d, layer.scale, layer.zero_point)
                          for f, d in zip(layer.float[list(images)], dev, strict=True)]
    return entry


def payload(layers: Sequence[Layer], images: Sequence[dict], image_indices: Sequence[int],
            input_layer: Layer | None = None, selected: int | None = None,
            marked: int | None = None) -> dict:
    """Everything ``viewer.js`` draws. ``images`` describes each shown image (``index``,
    ``label``, ``float_prediction``, ``device_prediction``); ``selected`` is the tensor
    index shown first (default: the first layer); ``marked`` a tensor the layer list flags
    as the one adding the most drift."""
    entries = [_layer_entry(layer, image_indices) for layer in layers]
    return {
        "format": 1,
        "images": list(images),
        "input": _layer_entry(input_layer, image_indices) if input_layer is not None else None,
        "layers": entries,
        "selected": selected if selected is not None else (entries[0]["tensor"] if entries
                                                            else None),
        "marked": marked,
        "colormaps": {"value": colormap_b64(VALUE_CMAP), "diff": colormap_b64(DIFF_CMAP)},
    }


def layers_from(manifest: dict, device: dict[int, np.ndarray],
                references: dict[str, dict[int, np.ndarray]]) -> list[Layer]:
    """One :class:`Layer` per captured tensor, in operator order, with the references that
    exist for it (``references``: ``"tflm"``, ``"xnnpack"``, ``"float"`` -> tensor -> array).
    The viewer draws int8 tensors: a float-I/O model's float32 edges are left out (the
    report's tables compare them bit for bit)."""
    ops = {o["outputs"][0]: o for o in manifest["operators"]}
    info = {t["index"]: t for t in manifest["tensors"]}
    out = []
    for idx in sorted(device, key=lambda i: ops[i]["index"] if i in ops else -1):
        op, t = ops.get(idx), info[idx]
        if device[idx].dtype != np.int8 or not t["scales"]:
            continue
        out.append(Layer(
            tensor=idx, op_index=op["index"] if op else None, op=op["op"] if op else "INPUT",
            name=str(op.get("keras_layer") or "") if op else "input",
            scale=float(t["scales"][0]), zero_point=int(t["zero_points"][0]),
            device=device[idx],
            tflm=references.get("tflm", {}).get(idx),
            xnnpack=references.get("xnnpack", {}).get(idx),
            float=references.get("float", {}).get(idx),
        ))
    return out


def input_layer(manifest: dict, inputs: np.ndarray) -> Layer:
    inp = manifest["input"]
    if inputs.dtype != np.int8 and inp.get("quantized_as"):
        # a float32 input: shown as the int8 values its QUANTIZE gives the model's body
        from tinyscope.data import quantize

        q = inp["quantized_as"]
        return Layer(tensor=int(inp["index"]), op_index=None, op="INPUT", name="input",
                     scale=float(q["scale"]), zero_point=int(q["zero_point"]),
                     device=quantize(inputs, q["scale"], q["zero_point"]))
    return Layer(tensor=int(inp["index"]), op_index=None, op="INPUT", name="input",
                 scale=float(inp["scale"]), zero_point=int(inp["zero_point"]), device=inputs)
