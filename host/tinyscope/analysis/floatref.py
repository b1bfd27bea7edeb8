"""The float Keras model's value of every int8 activation tensor it maps to.

The operator <-> layer map comes from :mod:`tinyscope.convert.layermap` (by graph, not by
tensor names); :func:`float_tensors` runs the float model once per batch and returns, for
every activation tensor index it could map, the float values shaped like that tensor.
"""

from __future__ import annotations

import numpy as np

from tinyscope.convert.graph import graph
from tinyscope.convert.layermap import LayerMap, map_layers, shape_of
from tinyscope.convert.model import rebatch


def float_model_for(model, names: list[str]):
    """A batch-``None`` model with the same weights whose outputs are the layers ``names``."""
    import keras

    net = rebatch(model, None) if shape_of(model.inputs[0])[0] != -1 else model
    outs = [net.get_layer(n).output for n in names]
    return keras.Model(net.inputs[0] if len(net.inputs) == 1 else net.inputs, outs)


def float_tensors(
    model, model_bytes: bytes, float_inputs: np.ndarray, batch_size: int = 256,
    layer_map: LayerMap | None = None,
) -> dict[int, np.ndarray]:
    """Float values of every activation tensor that maps to the Keras model, by tensor index.

    Each array is ``(N, *tensor_shape[1:])`` for the ``N`` float inputs (batch axis first),
    e.g. ``{0: inputs, 8: conv1 output (N, 26, 26, 8), ...}``.
    """
    _, tensors, _, _ = graph(model_bytes)
    lmap = layer_map or map_layers(model, model_bytes)
    names = sorted(set(lmap.tensor_layer.values()))
    x = np.asarray(float_inputs, np.float32)
    net = float_model_for(model, names)
    chunks: list[list[np.ndarray]] = [[] for _ in names]
    for start in range(0, len(x), batch_size):
        outs = net(x[start : start + batch_size], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for i, o in enumerate(outs):
            chunks[i].append(np.asarray(o))
    by_name = {n: np.concatenate(c) for n, c in zip(names, chunks, strict=True)}
    result: dict[int, np.ndarray] = {}
    if lmap.input_tensor >= 0:
        result[lmap.input_tensor] = x.reshape(len(x), *tensors[lmap.input_tensor].shape[1:])
    for idx, name in lmap.tensor_layer.items():
        result[idx] = by_name[name].reshape(len(x), *tensors[idx].shape[1:])
    # pass-through ops (requantize / reshape) in execution order
    for idx, src in lmap.tensor_source.items():
        if src in result:
            result[idx] = result[src].reshape(len(x), *tensors[idx].shape[1:])
    return result


def stack(per_image: list[dict[int, np.ndarray]]) -> dict[int, np.ndarray]:
    """Reference results (one dict per image, batch-1 tensors) -> one ``(N, ...)`` array each."""
    if not per_image:
        return {}
    return {
        k: np.stack([d[k].reshape(d[k].shape[1:]) if d[k].shape[:1] == (1,) else d[k]
                     for d in per_image])
        for k in per_image[0]
    }
