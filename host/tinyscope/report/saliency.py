"""The output of ``tinyscope saliency``: per-image panels, a methods figure, ``saliency.json``."""

from __future__ import annotations

import json
from pathlib import Path

from tinyscope.analysis import references, saliency
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert.model import load_model
from tinyscope.data import dequantize, quantized_test_inputs
from tinyscope.errors import TinyscopeError
from tinyscope.report import figures as figures_mod


def run_saliency(build_dir, out: Path, n: int = 8, model_path=None, data=None) -> dict:
    """Saliency for ``n`` test images of a build: figures + ``saliency.json``."""
    man = manifest_mod.load(build_dir)
    tfl = manifest_mod.model_bytes(build_dir, man)
    src = model_path or manifest_mod.float_model_path(man)
    if not src or not Path(src).is_file():
        raise TinyscopeError(f"float model {src!r} not found; pass --model MODEL.keras")
    model = load_model(src)
    x, q, y = quantized_test_inputs(man, n, data)
    float_model = saliency.FloatModel(model)
    classes = float_model.predict_classes(x)
    maps = saliency.compute_all(float_model, tfl, x, classes, man["logits_tensor"],
                                255.0 * (man["input"].get("quantized_as") or man["input"])["scale"])
    drift = saliency.saliency_drift(maps["occlusion float"], maps["occlusion int8"])
    first = man["first_layer_output"]
    t = next(t for t in man["tensors"] if t["index"] == first)
    op = next((o for o in man["operators"] if o["outputs"][0] == first), {})
    first_name = op.get("keras_layer") or op.get("op", "first layer")
    refs = references.compute(tfl, q, kinds=("tflm",), cache_dir=build_dir)
    int8_maps = refs.require("tflm")[first]
    out.mkdir(parents=True, exist_ok=True)
    names = man.get("classes") or [str(i) for i in range(10)]
    paths = []
    for i in range(len(x)):
        feat = dequantize(int8_maps[i], t["scale"] if "scale" in t else t["scales"][0],
                          t["zero_points"][0])
        title = (f"test image {i}: label {names[int(y[i])]}, float model predicts "
                 f"{names[int(classes[i])]}")
        paths.append(figures_mod.save(
            figures_mod.panel(x[i], maps["vanilla gradient"][i], feat, title,
                        saliency_name="vanilla gradient (float)",
                        units=f"int8 {first_name} output (real value)"),
            out / f"panel_{i:02d}.png"))
        paths.append(figures_mod.save(
            figures_mod.saliency_methods(x[i], {k: v[i] for k, v in maps.items()},
                                   f"{title}: saliency of the pre-softmax score"),
            out / f"methods_{i:02d}.png"))
    result = {
        "n_images": len(x), "labels": y.tolist(), "classes": classes.tolist(),
        "occlusion_int8_vs_float": drift,
        "figures": [p.name for p in paths],
    }
    (out / "saliency.json").write_text(json.dumps(result, indent=1) + "\n")
    return result

