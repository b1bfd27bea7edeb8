"""Convert a Keras model: int8 TFLite + C arrays + test inputs + manifest (``tinyscope convert``),
and the manifest as a text table (``tinyscope inspect``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyscope import data as data_mod
from tinyscope.convert import carrays, check, layermap
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert import tflite as tflite_mod
from tinyscope.convert.graph import graph
from tinyscope.convert.model import (
    H5,
    KERAS,
    SAVED_MODEL,
    TFLITE,
    load_model,
    model_format,
    rebatch,
)
from tinyscope.convert.quantize import IO_TYPES, quantize_keras, quantize_saved_model
from tinyscope.errors import TinyscopeError, UnsupportedModelError

DEFAULT_CALIB = 200
DEFAULT_NUM_INPUTS = 10
MODEL_FILE = "model_int8.tflite"


class UnsupportedOpWarning(UserWarning):
    """The converted model has an operator the tinyscope runtime cannot run."""


def model_input_shape(model) -> tuple[int, ...]:
    """The Keras model's input shape without the batch axis (any rank, fixed sizes)."""
    if len(model.inputs) != 1:
        raise TinyscopeError(
            f"model {model.name!r} has {len(model.inputs)} inputs; tinyscope feeds one input")
    shape = tuple(model.inputs[0].shape)
    if len(shape) < 2 or any(s is None for s in shape[1:]):
        raise TinyscopeError(
            f"model {model.name!r} has input shape {shape}; tinyscope needs a fixed shape "
            "after the batch axis, e.g. (None, 96, 96, 3), (None, 49, 10, 1) or (None, 640)"
        )
    return tuple(int(s) for s in shape[1:])


def saved_model_input_shape(path: Path) -> tuple[int, ...]:
    """The input shape (without the batch axis) of a SavedModel's serving signature."""
    import tensorflow as tf

    from tinyscope.quiet import native_output

    try:
        with native_output():
            loaded = tf.saved_model.load(str(path))
        sigs = loaded.signatures
        sig = sigs.get("serving_default") or next(iter(sigs.values()))
    except StopIteration as err:
        raise TinyscopeError(f"SavedModel {path} has no signature to convert") from err
    except Exception as err:  # noqa: BLE001 - TF raises many types for bad directories
        raise TinyscopeError(f"cannot load the SavedModel {path}: {err}") from err
    specs = list(sig.structured_input_signature[1].values())
    if len(specs) != 1:
        raise TinyscopeError(
            f"SavedModel {path} has {len(specs)} inputs; tinyscope feeds one input")
    shape = specs[0].shape.as_list()
    if len(shape) < 2 or any(s is None for s in shape[1:]):
        raise TinyscopeError(
            f"SavedModel {path} has input shape {shape}; tinyscope needs a fixed shape after "
            "the batch axis")
    return tuple(int(s) for s in shape[1:])


def _unsupported_message(unsupported: list[dict], unknown: list[tuple[str, str]]) -> str:
    items = [
        f"operator {u['op_index']} {u['op']} ({u.get('name') or u['keras_layer'] or 'unknown'})"
        for u in unsupported
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


# Keras layers the layer map does not model that lower to nothing (or, at the input, fold
# into the int8 input's scale and zero point: Rescaling, Normalization). Anywhere else they
# leave an operator (MUL, ADD, ...) that the check after conversion names.
HARMLESS_UNKNOWN = {"InputLayer", "Dropout", "GaussianNoise", "GaussianDropout", "Rescaling",
                    "Normalization"}


# Layers with an equivalent the runtime runs: the refusal names it.
LAYER_FIXES = {
    "UpSampling2D": "Resizing(H, W, interpolation='nearest') for UpSampling2D (which becomes "
                    "TILE)",
    "GlobalMaxPooling2D": "MaxPooling2D(pool_size=(H, W)) + Flatten for GlobalMaxPooling2D "
                          "(which becomes REDUCE_MAX)",
    "GlobalMaxPooling1D": "MaxPooling1D(pool_size=L) + Flatten for GlobalMaxPooling1D "
                          "(which becomes REDUCE_MAX)",
}


def refuse_unknown_layers(model, allow_unsupported: bool,
                          path: str | Path = "the model") -> list[tuple[str, str]]:
    """Layers without a known lowering, refused *before* the TF converter runs on them (an
    LSTM can crash the converter); with ``allow_unsupported`` they are returned instead."""
    unknown = [(layer.name, type(layer).__name__) for layer in model.layers
               if layermap.layer_ops(layer) is None
               and type(layer).__name__ not in HARMLESS_UNKNOWN]
    fixes = sorted({LAYER_FIXES[k] for _, k in unknown if k in LAYER_FIXES})
    if unknown and not allow_unsupported:
        raise UnsupportedModelError(
            f"{path}: the tinyscope runtime cannot run these Keras layers: "
            + ", ".join(f"{n} ({k})" for n, k in unknown)
            + f". It runs {', '.join(manifest_mod.SUPPORTED_OPS)} (Conv2D, DepthwiseConv2D, "
            "Dense, pooling, their 1-D forms, Add, Concatenate, ZeroPadding2D, Flatten/Reshape, "
            "Softmax, ReLU/"
            "ReLU6 and BatchNormalization folded into them). Replace those layers"
            + (f" (use {'; '.join(fixes)})" if fixes else "")
            + ", or pass --allow-unsupported to convert anyway (the firmware will refuse the "
            "model)."
        )
    return unknown


def leading_rescaling(model) -> tuple[float, float] | None:
    """(scale, offset) of a ``Rescaling`` layer right after the input, if there is one."""
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind == "Rescaling":
            scale = np.asarray(layer.scale, np.float64).reshape(-1)
            offset = np.asarray(layer.offset, np.float64).reshape(-1)
            return float(scale[0]), float(offset[0])
        return None
    return None


def choose_input_range(model, given: str | None, data: str) -> str | None:
    """The --input-range for image folders: the user's, or 0,255 when the model rescales
    pixels itself (a leading ``Rescaling(1/255)`` or ``Rescaling(1/127.5, offset=-1)``)."""
    if given:
        return given
    if model is None:
        return None
    rescale = leading_rescaling(model)
    if rescale is not None and rescale[0] < 0.1:
        data_mod.note(
            f"the model starts with Rescaling(scale={rescale[0]:.4g}, offset={rescale[1]:g}): "
            f"it takes raw pixels, so images from {data} are fed in 0..255 (--input-range "
            "0,255; pass --input-range to override)")
        return "0,255"
    return None


def check_classes(ds: data_mod.Dataset, output_shape: list[int], where: str) -> None:
    """A classifier's outputs must match the number of classes of labeled data."""
    if not ds.labeled or not ds.class_names:
        return
    n_out = int(np.prod(output_shape[1:])) if len(output_shape) > 1 else int(output_shape[0])
    if n_out != len(ds.class_names):
        raise TinyscopeError(
            f"the model has {n_out} outputs but {where} {ds.source} has "
            f"{len(ds.class_names)} classes ({', '.join(ds.class_names[:8])}"
            f"{', ...' if len(ds.class_names) > 8 else ''}); give data with one class per "
            "model output (or the model trained on these classes)")


def check_float_accuracy(model, ds: data_mod.Dataset, input_range: str | None) -> float | None:
    """Float accuracy of ``model`` on labeled test data; warns when it is near chance."""
    if model is None or not ds.labeled or ds.quantized or len(ds.class_names) < 2:
        return None
    from tinyscope.quiet import native_output

    with native_output():
        scores = np.asarray(model.predict(ds.x[:256], batch_size=1 if
                                          model.inputs[0].shape[0] == 1 else 32, verbose=0))
    n = min(len(ds), 256)
    acc = float(np.mean(scores.reshape(n, -1).argmax(-1) == ds.y[:n]))
    chance = 1.0 / len(ds.class_names)
    if n >= 4 and acc <= 1.5 * chance:
        fed = f"--input-range {input_range}" if input_range else "the arrays as given"
        warnings.warn(
            f"the float model's accuracy on the {n} test inputs of {ds.source} is {acc:.0%}, "
            f"near chance ({chance:.0%}): check --input-range (fed: {fed}) and that the data "
            "is what the model was trained on", data_mod.DataWarning, stacklevel=2)
    return acc


@dataclass
class _Source:
    """What :func:`convert` learned about the model and its data before writing anything."""

    fmt: str
    tflite: bytes
    keras_model: object | None
    splits: data_mod.Splits
    calibration: dict | None


def _from_tflite(path: Path, data: str | None, test_data, input_range, seed,
                 float_model) -> _Source:
    """An int8 ``.tflite``, checked and used as it is; all of ``data`` is for testing."""
    tflite = path.read_bytes()
    summary = tflite_mod.summarize(tflite, path)
    tflite_mod.check_runnable(summary, path)
    keras_model = load_model(float_model) if float_model is not None else None
    data = data or data_mod.RANDOM
    input_range = choose_input_range(keras_model, input_range, data)
    splits = data_mod.load_splits(data, summary.input_shapes[0][1:], test_data=test_data,
                                  input_range=input_range, seed=seed, whole_for_test=True)
    return _Source(TFLITE, tflite, keras_model, splits, None)


def _quantized(path: Path, fmt: str, model, data: str | None, test_data, input_range, seed,
               calib: int, float_model, allow_unsupported: bool, io: str = "int8") -> _Source:
    """A Keras model or SavedModel, quantized to full int8 with calibration inputs."""
    if fmt == SAVED_MODEL:
        sample_shape = saved_model_input_shape(path)
        model = load_model(float_model) if float_model is not None else None
    else:
        model = model if model is not None else load_model(path)
        sample_shape = model_input_shape(model)
    data = data or data_mod.MNIST
    input_range = choose_input_range(model, input_range, data)
    splits = data_mod.load_splits(data, sample_shape, test_data=test_data,
                                  input_range=input_range, seed=seed)
    train = splits.train
    if train is None or train.quantized:
        raise TinyscopeError(
            f"--data {data}: calibrating a float model needs float inputs in its real domain; "
            "int8 arrays are for an int8 .tflite")
    if fmt == SAVED_MODEL:
        tflite = quantize_saved_model(path, train.x[:calib], io)
    else:
        if model.inputs[0].shape[0] != 1:
            model = rebatch(model, 1)  # a None batch adds SHAPE/STRIDED_SLICE/PACK ops
        refuse_unknown_layers(model, allow_unsupported, path)
        tflite = quantize_keras(model, train.x[:calib], io)
    calibration = {"count": min(calib, len(train)), "split": "train", "seed": seed}
    return _Source(fmt, tflite, model, splits, calibration)


def _layer_map(src: _Source, float_model, model_path: Path):
    """The float model's layer map onto the .tflite, or None; warns about what fails."""
    if src.keras_model is None:
        return None
    try:
        lmap = layermap.map_layers(src.keras_model, src.tflite)
    except Exception as err:  # noqa: BLE001 - a twin that does not line up at all
        warnings.warn(
            f"the float model {float_model or model_path} does not line up with the .tflite's "
            f"operators ({err}); going on without it", data_mod.DataWarning, stacklevel=3)
        src.keras_model = None
        return None
    if float_model is not None:
        ops, _, _, _ = graph(src.tflite)
        unmapped = [f"{op.index} {op.name}" for op in ops if lmap.op_layer.get(op.index) is None
                    and op.name not in layermap.PASS_THROUGH_OPS]
        if unmapped:
            warnings.warn(
                f"no layer of the float model {float_model} matches the .tflite's operators "
                f"{', '.join(unmapped)}: those have no float column", data_mod.DataWarning,
                stacklevel=3)
    return lmap


def convert(
    model_path: str | Path,
    out_dir: str | Path,
    data: str | None = None,
    calib: int = DEFAULT_CALIB,
    num_inputs: int = DEFAULT_NUM_INPUTS,
    allow_unsupported: bool = False,
    seed: int = data_mod.DEFAULT_SEED,
    model=None,
    *,
    float_model: str | Path | None = None,
    test_data: str | None = None,
    input_range: str | None = None,
    io: str = "int8",
) -> dict:
    """Bring a model into ``out_dir``; returns the manifest (also written there).

    ``model_path`` is an int8 ``.tflite`` (used byte for byte; ``float_model`` may name its
    float twin), a ``.keras``/``.h5`` Keras model or a SavedModel directory (quantized to
    full int8 with calibration inputs from ``data``; ``io="float"`` keeps its input and
    output float32 around the int8 body). ``data`` defaults to ``mnist`` for a
    float model and to seeded random inputs for a ``.tflite``.
    """
    if calib < 1 or num_inputs < 1:
        raise TinyscopeError("--calib and --num-inputs must be at least 1")
    if input_range is not None:
        data_mod.parse_input_range(input_range)
    model_path = Path(model_path)
    fmt = KERAS if model is not None else model_format(model_path)
    if io not in IO_TYPES:
        raise TinyscopeError(f"--io {io}: use one of {', '.join(IO_TYPES)}")
    if fmt == TFLITE:
        if io != "int8":
            raise TinyscopeError(f"--io {io}: a .tflite is used as it is (its own input and "
                                 "output types); --io is for a Keras model or SavedModel")
        src = _from_tflite(model_path, data, test_data, input_range, seed, float_model)
    else:
        src = _quantized(model_path, fmt, model, data, test_data, input_range, seed, calib,
                         float_model, allow_unsupported, io)
    data_mod.note(src.splits.description)
    test = src.splits.test
    lmap = _layer_map(src, float_model, model_path)
    probe = manifest_mod.build(src.tflite, lmap)
    if probe["unsupported"]:
        msg = _unsupported_message(probe["unsupported"], lmap.unknown_layers if lmap else [])
        if not allow_unsupported:
            raise UnsupportedModelError(msg)
        warnings.warn(msg, UnsupportedOpWarning, stacklevel=2)
    else:
        _check_runtime_accepts(src.tflite, model_path, allow_unsupported)
    check_classes(test, probe["output"]["shape"], "--test-data" if test_data else "--data")
    float_acc = check_float_accuracy(src.keras_model, test, test.input_range)
    float_src = float_model if float_model is not None else (
        model_path if fmt in (KERAS, H5) and model is None else None)
    n_in = min(num_inputs, len(test))
    extra = {
        "source_model": str(model_path),
        "source_format": fmt,
        "source_sha256": (
            manifest_mod.sha256(model_path.read_bytes()) if model_path.is_file() else None
        ),
        "float_model": str(float_src) if float_src is not None else None,
        "keras_model_name": getattr(src.keras_model, "name", None),
        "data": test.source if src.splits.rule != "folders" else str(data),
        "classes": list(test.class_names),
        "input_range": test.input_range,
        "dataset": src.splits.record(str(data or test.source), test_data, seed),
        "calibration": src.calibration,
        "float_accuracy_test": float_acc,
        "test_inputs": {"count": n_in, "split": "test", "seed": seed,
                        "labels": [int(v) for v in test.y[:n_in]]},
        "unknown_keras_layers": [{"name": n, "class": k}
                                 for n, k in (lmap.unknown_layers if lmap else [])],
    }
    return _write_build(Path(out_dir), src.tflite, lmap, extra, test.take(n_in))


def _write_build(out: Path, tflite: bytes, lmap, extra: dict, test: data_mod.Dataset) -> dict:
    """model_int8.tflite, model_data.cc/.h, inputs.cc/.h and manifest.json in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model_file = out / MODEL_FILE
    model_file.write_bytes(tflite)
    arena = manifest_mod.tflm_arena(model_file)
    manifest = manifest_mod.build(tflite, lmap, extra=extra, arena=arena)
    carrays.write_model(out, tflite, MODEL_FILE)
    # inputs.cc holds int8 images; for a float32 input, quantized as its QUANTIZE does
    # (the int8 tensor the model's body starts from).
    inp = manifest_mod.input_quant(manifest)
    q = data_mod.quantize_inputs(test, inp["scale"], inp["zero_point"])
    labels = np.where(test.y < 0, 255, test.y)  # 255: no label
    carrays.write_inputs(out, q.reshape(len(test), -1), labels, inp["scale"],
                         inp["zero_point"], test.class_names)
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


def _fmt_io(t: dict) -> str:
    """``#0 1x28x28x1 int8 scale 0.00392 zp -128``; a float32 edge names its int8 side."""
    text = f"#{t['index']} {_fmt_shape(t['shape'])} {t['dtype']}"
    edge = t.get("quantized_as") or t.get("dequantized_from")
    if edge:
        how = "QUANTIZE to" if "quantized_as" in t else "DEQUANTIZE from"
        return (f"{text} ({how} #{edge['index']} int8 scale {edge['scale']:.6g} zp "
                f"{edge['zero_point']})")
    return f"{text} scale {t['scale']:.6g} zp {t['zero_point']}"


def format_manifest(m: dict) -> str:
    """A readable text table of a manifest (what ``tinyscope inspect`` prints)."""
    tensors = {t["index"]: t for t in m["tensors"]}
    lines = [
        f"model   {m['model_file']}  {m['model_bytes']} bytes  sha256 {m['model_sha256'][:16]}",
        f"source  {m.get('source_model')}  data {m.get('data')}  classes "
        f"{len(m.get('classes', []))}",
        f"input   {_fmt_io(m['input'])}",
        f"output  {_fmt_io(m['output'])}",
        f"first layer output: tensor #{m['first_layer_output']} (op {m['first_layer_op']}); "
        f"logits: tensor #{m['logits_tensor']}",
        "",
    ]
    head = f"{'op':>3}  {'operator':<18} {'layer / name':<16} {'in':<10} {'out':>4} " \
           f"{'shape':<12} {'quantization':<24} {'MACs':>9}"
    lines += [head, "-" * len(head)]
    for op in m["operators"]:
        out = tensors[op["outputs"][0]]
        layer = manifest_mod.op_label(op)
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
