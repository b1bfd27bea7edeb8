"""``tinyscope drift``: float vs int8 drift of a build."""

from __future__ import annotations

import argparse

from tinyscope.analysis.drift import DEFAULT_N, summary_lines
from tinyscope.cli.formatter import HelpFormatter
from tinyscope.report.drift import run_drift


def _cmd_drift(args: argparse.Namespace) -> int:
    metrics = run_drift(args.build_dir, args.out, n=args.n, data=args.data,
                        model_path=args.model)
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
    p.add_argument("--model", default=None,
                   help="float .keras model (default: the one recorded in manifest.json)")
    p.set_defaults(func=_cmd_drift)
