"""``tinyscope convert`` and ``tinyscope inspect``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyscope import data as data_mod
from tinyscope.cli.formatter import HelpFormatter
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert.flow import (
    DEFAULT_CALIB,
    DEFAULT_NUM_INPUTS,
    MODEL_FILE,
    convert,
    format_manifest,
)
from tinyscope.convert.quantize import IO_TYPES


def add_data_options(p: argparse.ArgumentParser) -> None:
    """--data, --test-data, --input-range, --float-model (convert and run)."""
    p.add_argument(
        "--data", default=None,
        help="inputs: 'mnist', an image folder (one sub-folder per class; train/ and test/ "
        "sub-folders are used as the split), a .npy (N x input shape) or .npz (x, optional y "
        "and class_names) file, or 'random'. float arrays are real input values (quantized "
        "with the input scale and zero point; sent as float32 to a model whose input is "
        "float32), int8 arrays are used as they are. Default: "
        "mnist for a float model, random inputs for a .tflite",
    )
    p.add_argument(
        "--test-data", default=None, metavar="DIR|FILE",
        help="test inputs kept apart from --data (which then only calibrates)",
    )
    p.add_argument(
        "--input-range", default=None, choices=tuple(data_mod.INPUT_RANGES),
        help="what image pixels 0..255 become: 0,1 (default), -1,1 or 0,255 (0,255 is "
        "chosen when the model starts with a Rescaling layer)",
    )
    p.add_argument(
        "--float-model", default=None, metavar="F",
        help="the float twin (.keras/.h5) of a .tflite, for drift, the float column and "
        "gradient saliency",
    )


def _cmd_convert(args: argparse.Namespace) -> int:
    m = convert(
        args.model, args.out, data=args.data, calib=args.calib, num_inputs=args.num_inputs,
        allow_unsupported=args.allow_unsupported, seed=args.seed,
        float_model=args.float_model, test_data=args.test_data, input_range=args.input_range,
        io=args.io,
    )
    out = Path(args.out)
    print(
        f"wrote {out}/{{{MODEL_FILE}, model_data.cc, model_data.h, inputs.cc, inputs.h, "
        f"manifest.json}}: {m['model_bytes']} bytes, {len(m['operators'])} operators, "
        f"{m['total_macs']:,} MACs, {m['test_inputs']['count']} test inputs"
    )
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    m = manifest_mod.load(args.build_dir)
    manifest_mod.model_bytes(args.build_dir, m)  # checks the sha256
    print(format_manifest(m))
    return 0


def add_cli(sub) -> None:
    fmt = HelpFormatter
    p = sub.add_parser(
        "convert",
        help="a model (int8 .tflite, .keras, .h5, SavedModel) -> int8 .tflite, TFLM C arrays, "
        "test inputs, manifest.json",
        description=(
            "Bring a model in: an int8 .tflite is used byte for byte (its sha256 is the model "
            "hash); a Keras model (.keras or legacy .h5) or a SavedModel directory is quantized "
            "to full int8 (int8 input and output) with calibration inputs from --data. Writes "
            "BUILD_DIR/model_int8.tflite, model_data.cc/.h (the model as a C array), inputs.cc/.h "
            "(a few quantized test inputs) and manifest.json (operators, tensors, quantization, "
            "MACs, the layer of each op). Fails with a clear message if the model is not full "
            "int8 or an operator is outside the tinyscope runtime's set. "
            "The firmware build (make -C firmware MODEL_DIR=BUILD_DIR) sizes the arena from it."
        ),
        formatter_class=fmt,
    )
    p.add_argument("model", help="int8 .tflite, .keras, legacy .h5 or a SavedModel directory")
    p.add_argument("--out", required=True, help="build directory to write (created)")
    add_data_options(p)
    p.add_argument("--calib", type=int, default=DEFAULT_CALIB,
                   help="number of representative (calibration) images")
    p.add_argument("--num-inputs", type=int, default=DEFAULT_NUM_INPUTS,
                   help="number of test images written to inputs.cc")
    p.add_argument("--seed", type=int, default=data_mod.DEFAULT_SEED,
                   help="seed of the train/test split (use the one used for training)")
    p.add_argument("--io", default="int8", choices=IO_TYPES,
                   help="a Keras model's input and output: int8, or float (float32 edges "
                   "around the int8 body: the device quantizes the float32 input itself)")
    p.add_argument("--allow-unsupported", action="store_true",
                   help="convert even if the runtime lacks an operator (warn instead of fail)")
    p.set_defaults(func=_cmd_convert)

    q = sub.add_parser(
        "inspect",
        help="print a converted model's manifest as a table",
        description="Print BUILD_DIR/manifest.json as a table: operators, Keras layers, "
        "shapes, quantization, MACs and sizes (checks the .tflite hash too).",
        formatter_class=fmt,
    )
    q.add_argument("build_dir", help="a directory written by 'tinyscope convert'")
    q.set_defaults(func=_cmd_inspect)
