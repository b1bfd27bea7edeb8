"""The output of ``tinyscope saliency``: per-image panels, a methods figure, ``saliency.json``.

With a float model (``--float-model``, or the Keras model the build was converted from) every
method runs; without one (a build converted from a ``.tflite``) occlusion on the int8 model
runs alone, explaining the int8 model's own prediction, and the result says what was left out
and how to get it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tinyscope.analysis import references, saliency
from tinyscope.analysis.findings import cpu_seconds, explained
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert.model import load_model
from tinyscope.data import dequantize, quantized_test_inputs
from tinyscope.errors import TinyscopeError
from tinyscope.report import figures as figures_mod


def run_saliency(build_dir, out: Path, n: int = 8, model_path=None, data=None) -> dict:
    """Saliency for ``n`` test inputs of a build: figures + ``saliency.json``. The result's
    ``seconds`` has the time of each stage (``maps``: the saliency computation; ``figures``)
    and ``cpu_seconds`` the CPU time of both (this process and the int8 child)."""
    man = manifest_mod.load(build_dir)
    tfl = manifest_mod.model_bytes(build_dir, man)
    src = model_path or manifest_mod.float_model_path(man)
    if model_path and not Path(model_path).exists():
        raise TinyscopeError(f"float model {model_path} not found; pass --float-model with "
                             "the .keras or .h5 file the .tflite was made from")
    stage: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t0 = time.monotonic()
    model = load_model(src) if src and Path(src).is_file() else None
    stage["load float model"] = time.monotonic() - t0
    x, q, y = quantized_test_inputs(man, n, data)
    t0, c0 = time.monotonic(), cpu_seconds()
    refs = references.compute(tfl, q, kinds=("tflm",), cache_dir=build_dir)
    tflm = refs.require("tflm")
    float_model = saliency.FloatModel(model) if model is not None else None
    out_idx = man["output"]["index"]
    if float_model is not None:
        classes, target = float_model.predict_classes(x), float_model.target
    else:
        target = saliency.explained_target(tfl)[0]
        classes = (np.zeros(len(x), np.int64) if target == saliency.RECONSTRUCTION
                   else tflm[out_idx].reshape(len(x), -1).argmax(-1))
    seconds: dict[str, float] = {}
    info: dict = {}
    maps = saliency.compute_all(float_model, tfl, x, classes, man.get("logits_tensor"),
                                255.0 * manifest_mod.input_quant(man)["scale"], seconds, info)
    stage["maps"] = time.monotonic() - t0
    cpu["maps"] = cpu_seconds() - c0
    agreement = saliency.agreement(maps, info)
    t0, c0 = time.monotonic(), cpu_seconds()
    first = man["first_layer_output"]
    t = next(t for t in man["tensors"] if t["index"] == first)
    op = next((o for o in man["operators"] if o["outputs"][0] == first), {})
    first_name = manifest_mod.op_label(op) if op else "first layer"
    kind = figures_mod.input_form(man["input"]["shape"][1:])
    form = figures_mod.tensor_form(t["shape"][1:], kind)
    out.mkdir(parents=True, exist_ok=True)
    names = man.get("classes") or [str(i) for i in range(int(np.prod(
        man["output"]["shape"][1:])))]
    who = "float model" if float_model is not None else "int8 model"
    shown = next(k for k in ("vanilla gradient", "occlusion int8", *maps) if k in maps) \
        if maps else None
    paths = []
    for i in range(len(x)):
        feat = dequantize(tflm[first][i], t["scale"] if "scale" in t else t["scales"][0],
                          t["zero_points"][0])
        if form in (figures_mod.IMAGE, figures_mod.FEATURES):
            feat = feat[..., :16]
        label = names[int(y[i])] if int(y[i]) >= 0 else "–"
        title = (f"test input {i}: label {label}, the {who} predicts "
                 f"{names[int(classes[i])]}" if target == saliency.CLASS else
                 f"test input {i}: reconstruction error ({who})")
        if shown is None:
            continue
        paths.append(figures_mod.save(
            figures_mod.panel(x[i], maps[shown][i], feat, title,
                              saliency_name=f"{shown} ({who})",
                              units=f"int8 {first_name} output (real value)",
                              input_kind=kind, map_form=form),
            out / f"panel_{i:02d}.png"))
        paths.append(figures_mod.save(
            figures_mod.saliency_methods(x[i], {k: v[i] for k, v in maps.items()},
                                         f"{title}: saliency of {explained(target, False)}"
                                         if target != saliency.CLASS else
                                         f"{title}: saliency of the pre-softmax score",
                                         form=kind),
            out / f"methods_{i:02d}.png"))
    stage["figures"] = time.monotonic() - t0
    cpu["figures"] = cpu_seconds() - c0
    result = {
        "n_images": len(x), "labels": y.tolist(), "classes": np.asarray(classes).tolist(),
        "explained": explained(target, float_model is not None), "target": target,
        "methods": list(maps), "left_out": info.get("left_out", {}),
        "flat": info.get("flat", {}), "flat_note": saliency.flat_note(info.get("flat", {})),
        "occlusion_int8_vs_float": agreement.get("occlusion_int8_vs_float"),
        "method_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "seconds": {k: round(v, 3) for k, v in stage.items()},
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "figures": [p.name for p in paths],
    }
    (out / "saliency.json").write_text(json.dumps(result, indent=1) + "\n")
    return result
