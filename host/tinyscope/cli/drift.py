"""``tinyscope drift``: float vs int8 drift of a build."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyscope.analysis.drift import DEFAULT_N, summary_lines
from tinyscope.cli.formatter import HelpFormatter
from tinyscope.convert import manifest as manifest_mod
from tinyscope.errors import TinyscopeError
from tinyscope.report.drift import run_drift


def _cmd_drift(args: argparse.Namespace) -> int:
    build = Path(args.build_dir)
    if args.float_model is None and (build / manifest_mod.MANIFEST_NAME).is_file():
        src = manifest_mod.float_model_path(manifest_mod.load(build))
        if not src:
            raise TinyscopeError(
                f"drift compares the int8 model with its float twin, and {build} has none "
                f"(it was converted from a .tflite): pass the float model with --float-model "
                f"F (.keras or .h5), e.g. 'tinyscope drift {build} --out {args.out} "
                "--float-model model.keras', or convert with --float-model F. Without it, "
                "'tinyscope saliency' runs occlusion on the int8 model and 'tinyscope run' "
                "compares the device with TFLM and LiteRT")
        if not Path(src).is_file():
            raise TinyscopeError(
                f"the float model {src} recorded in {build / manifest_mod.MANIFEST_NAME} is "
                "gone: pass it with --float-model F (.keras or .h5)")
    elif args.float_model is not None and not Path(args.float_model).is_file():
        raise TinyscopeError(f"--float-model {args.float_model} not found: give the .keras "
                             "or .h5 file the int8 model was made from")
    metrics = run_drift(args.build_dir, args.out, n=args.n, data=args.data,
                        model_path=args.float_model)
    print("\n".join(summary_lines(metrics)))
    print(f"wrote {args.out}/metrics.json and {len(metrics['figures'])} figures in {args.out}")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser(
        "drift",
        help="float vs int8 drift per tensor/channel, desktop int8 references, accuracy",
        description=(
            "Run the converted int8 model on N held-out images with TFLM (the reference the "
            "device must match), LiteRT BUILTIN_REF and LiteRT default (XNNPACK), and the "
            "float Keras model; write metrics.json (per tensor and per channel: max/mean "
            "|err|, RMSE, RMSE/scale, SNR, cosine, L2 relative error, LSB histograms; top-1 "
            "agreement and confusion matrices) and PNG figures to --out."
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("build_dir", help="a directory written by 'tinyscope convert'")
    p.add_argument("--out", required=True, help="directory for metrics.json and figures")
    p.add_argument("--n", type=int, default=DEFAULT_N, help="number of held-out test images")
    p.add_argument("--data", default=None,
                   help="'mnist' or an image folder (default: the data used by convert)")
    p.add_argument("--float-model", "--model", dest="float_model", default=None,
                   help="the float twin, .keras or .h5 (default: the one recorded in "
                   "manifest.json; a build from a .tflite has none)")
    p.set_defaults(func=_cmd_drift)
