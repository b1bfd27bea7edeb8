"""``tinyscope convert`` and ``tinyscope inspect``."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from tinyscope import data as data_mod
from tinyscope.cli.formatter import HelpFormatter
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert.flow import (
    DEFAULT_CALIB,
    DEFAULT_NUM_INPUTS,
    MODEL_FILE,
    UnsupportedOpWarning,
    convert,
    format_manifest,
)


def _cmd_convert(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnsupportedOpWarning)
        m = convert(
            args.model, args.out, data=args.data, calib=args.calib, num_inputs=args.num_inputs,
            allow_unsupported=args.allow_unsupported, seed=args.seed,
        )
    for w in caught:
        if issubclass(w.category, UnsupportedOpWarning):
            print(f"tinyscope convert: warning: {w.message}", file=sys.stderr)
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
        help="Keras model -> int8 .tflite, TFLM C arrays, test inputs, manifest.json",
        description=(
            "Quantize a Keras model to full int8 (int8 input and output) with a representative "
            "dataset, and write BUILD_DIR/model_int8.tflite, model_data.cc/.h (the model as a C "
            "array), inputs.cc/.h (a few quantized test images with labels) and manifest.json "
            "(operators, tensors, quantization, MACs, Keras layer of each op). Fails with a "
            "clear message if an operator is outside the tinyscope runtime's set."
        ),
        formatter_class=fmt,
    )
    p.add_argument("model", help="the float Keras model (.keras), e.g. models/default.keras")
    p.add_argument("--out", required=True, help="build directory to write (created)")
    p.add_argument(
        "--data", default=data_mod.MNIST,
        help="'mnist' or a folder with one sub-folder per class of images (resized to the "
        "model input); used for calibration (train split) and test inputs (test split)",
    )
    p.add_argument("--calib", type=int, default=DEFAULT_CALIB,
                   help="number of representative (calibration) images")
    p.add_argument("--num-inputs", type=int, default=DEFAULT_NUM_INPUTS,
                   help="number of test images written to inputs.cc")
    p.add_argument("--seed", type=int, default=data_mod.DEFAULT_SEED,
                   help="seed of the train/test split (use the one used for training)")
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
