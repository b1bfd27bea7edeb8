"""Convert a Keras model: int8 TFLite + C arrays + test inputs + manifest (``tinyscope convert``),
and the manifest as a text table (``tinyscope inspect``)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from tinyscope import data as data_mod
from tinyscope.convert import carrays, check, layermap
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert.model import load_model, rebatch
from tinyscope.convert.quantize import quantize_keras
from tinyscope.errors import TinyscopeError, UnsupportedModelError

DEFAULT_CALIB = 200
DEFAULT_NUM_INPUTS = 10
MODEL_FILE = "model_int8.tflite"


class UnsupportedOpWarning(UserWarning):
    """The converted model has an operator the tinyscope runtime cannot run."""


def model_input_shape(model) -> tuple[int, int, int]:
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or any(s is None for s in shape[1:]):
        raise TinyscopeError(
            f"model {model.name!r} has input shape {shape}; tinyscope needs one image input "
            "(batch, height, width, channels) with fixed height, width and channels"
        )
    return tuple(int(s) for s in shape[1:])  # type: ignore[return-value]


def _unsupported_message(unsupported: list[dict], unknown: list[tuple[str, str]]) -> str:
    items = [
        f"operator {u['op_index']} {u['op']} (from Keras layer "
        f"{u['keras_layer'] or 'unknown'!r})" for u in unsupported
    ]
    msg = "the tinyscope runtime cannot run " + "; ".join(items)
    if unknown:
        msg += ". Keras layers tinyscope does not know: " + ", ".join(
            f"{n} ({c})" for n, c in unknown
        )
    return msg + (
        f". Supported operators: {', '.join(manifest_mod.SUPPORTED_OPS)}. Replace those "
        "layers, or pass --allow-unsupported to convert anyway (the desktop references will "
        "work, the firmware will refuse the model)."
    )


def _check_runtime_accepts(tflite: bytes, model_path: str | Path,
                           allow_unsupported: bool) -> None:
    """Refuse (or with ``allow_unsupported`` warn about) a model the runtime's prepare
    refuses: the device would refuse it, and the TFLM reference would abort on it."""
    try:
        refusal = check.check_model(tflite)
    except TinyscopeError as err:
        warnings.warn(f"could not check the model with the native runtime: {err}",
                      UnsupportedOpWarning, stacklevel=3)
        return
    if refusal is None:
        return
    msg = (f"{model_path}: the tinyscope runtime refuses the converted model: "
           f"{refusal.describe()}. The device would refuse it and TFLM's reference kernels "
           "cannot prepare it either")
    msg += f". What to do: {refusal.advice}." if refusal.advice else "."
    if not allow_unsupported:
        raise UnsupportedModelError(msg)
    warnings.warn(msg, UnsupportedOpWarning, stacklevel=3)


def convert(
    model_path: str | Path,
    out_dir: str | Path,
    data: str = data_mod.MNIST,
    calib: int = DEFAULT_CALIB,
    num_inputs: int = DEFAULT_NUM_INPUTS,
    allow_unsupported: bool = False,
    seed: int = data_mod.DEFAULT_SEED,
    model=None,
) -> dict:
    """Convert a Keras model into ``out_dir``; returns the manifest (also written there)."""
    if model is None:
        model = load_model(model_path)
    h, w, c = model_input_shape(model)
    if model.inputs[0].shape[0] != 1:
        model = rebatch(model, 1)  # a None batch adds SHAPE/STRIDED_SLICE/PACK ops
    ds = data_mod.load(data, (h, w), c)
    train, test = data_mod.split(ds, seed=seed)
    if calib < 1 or num_inputs < 1:
        raise TinyscopeError("--calib and --num-inputs must be at least 1")
    pre_map_unknown = [
        (layer.name, type(layer).__name__)
        for layer in model.layers if layermap.layer_ops(layer) is None
    ]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter's "Saved artifact" chatter
            tflite = quantize_keras(model, train.x[:calib])
    except TinyscopeError as err:
        if pre_map_unknown:
            raise UnsupportedModelError(
                f"{err} Layers tinyscope does not know: "
                + ", ".join(f"{n} ({k})" for n, k in pre_map_unknown)
            ) from err
        raise
    lmap = layermap.map_layers(model, tflite)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_file = out / MODEL_FILE
    n_in = min(num_inputs, len(test))
    extra = {
        "source_model": str(model_path),
        "source_sha256": (
            manifest_mod.sha256(Path(model_path).read_bytes())
            if Path(model_path).is_file() else None
        ),
        "keras_model_name": model.name,
        "data": ds.source,
        "classes": list(ds.class_names),
        "calibration": {"count": min(calib, len(train)), "split": "train", "seed": seed},
        "test_inputs": {
            "count": n_in, "split": "test", "seed": seed,
            "labels": [int(v) for v in test.y[:n_in]],
        },
        "unknown_keras_layers": [{"name": n, "class": k} for n, k in lmap.unknown_layers],
    }
    probe = manifest_mod.build(tflite, lmap)
    if probe["unsupported"]:
        msg = _unsupported_message(probe["unsupported"], lmap.unknown_layers)
        if not allow_unsupported:
            raise UnsupportedModelError(msg)
        warnings.warn(msg, UnsupportedOpWarning, stacklevel=2)
    else:
        _check_runtime_accepts(tflite, model_path, allow_unsupported)
    model_file.write_bytes(tflite)
    arena = manifest_mod.tflm_arena(model_file)
    manifest = manifest_mod.build(tflite, lmap, extra=extra, arena=arena)

    carrays.write_model(out, tflite, MODEL_FILE)
    inp = manifest["input"]
    q = data_mod.quantize(test.x[:n_in], inp["scale"], inp["zero_point"])
    carrays.write_inputs(
        out, q.reshape(n_in, -1), test.y[:n_in], inp["scale"], inp["zero_point"],
        ds.class_names,
    )
    manifest_mod.write(out / manifest_mod.MANIFEST_NAME, manifest)
    return manifest


def _fmt_shape(shape) -> str:
    return "x".join(str(s) for s in shape)


def _fmt_q(t: dict) -> str:
    scales, zps = t["scales"], t["zero_points"]
    if not scales:
        return "-"
    if len(scales) == 1:
        return f"s={scales[0]:.4g} zp={zps[0]}"
    return f"{len(scales)} ch s={min(scales):.3g}..{max(scales):.3g} zp={zps[0]}"


def format_manifest(m: dict) -> str:
    """A readable text table of a manifest (what ``tinyscope inspect`` prints)."""
    tensors = {t["index"]: t for t in m["tensors"]}
    lines = [
        f"model   {m['model_file']}  {m['model_bytes']} bytes  sha256 {m['model_sha256'][:16]}",
        f"source  {m.get('source_model')}  data {m.get('data')}  classes "
        f"{len(m.get('classes', []))}",
        f"input   #{m['input']['index']} {_fmt_shape(m['input']['shape'])} "
        f"{m['input']['dtype']} scale {m['input']['scale']:.6g} zp {m['input']['zero_point']}",
        f"output  #{m['output']['index']} {_fmt_shape(m['output']['shape'])} "
        f"{m['output']['dtype']} scale {m['output']['scale']:.6g} zp "
        f"{m['output']['zero_point']}",
        f"first layer output: tensor #{m['first_layer_output']} (op {m['first_layer_op']}); "
        f"logits: tensor #{m['logits_tensor']}",
        "",
    ]
    head = f"{'op':>3}  {'operator':<18} {'keras layer':<16} {'in':<10} {'out':>4} " \
           f"{'shape':<12} {'quantization':<24} {'MACs':>9}"
    lines += [head, "-" * len(head)]
    for op in m["operators"]:
        out = tensors[op["outputs"][0]]
        layer = op["keras_layer"] or "-"
        if op["fused_layers"]:
            layer += "+" + "+".join(op["fused_layers"])
        flag = "" if op.get("supported", True) else "  UNSUPPORTED"
        ins = ",".join(str(i) for i in op["inputs"] if i >= 0)
        lines.append(
            f"{op['index']:>3}  {op['op']:<18} {layer:<16} {ins:<10} {out['index']:>4} "
            f"{_fmt_shape(out['shape']):<12} {_fmt_q(out):<24} {op['macs']:>9,}{flag}"
        )
    s = m["sizes"]
    arena = s.get("tflm_arena") or {}
    lines += [
        "",
        f"total MACs {m['total_macs']:,}   weights+biases {s['constant_bytes']:,} B   "
        f"largest activation {s['largest_activation_bytes']:,} B   "
        f"all activations {s['activation_bytes_total']:,} B",
    ]
    if arena:
        lines.append(
            "TFLM arena: " + ", ".join(f"{k} {v:,} B" for k, v in sorted(arena.items()))
        )
    if m.get("unsupported"):
        lines.append(
            "UNSUPPORTED by the tinyscope runtime: "
            + ", ".join(f"op {u['op_index']} {u['op']}" for u in m["unsupported"])
        )
    return "\n".join(lines)
