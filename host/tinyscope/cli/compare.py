"""``tinyscope compare``: a capture vs TFLM, LiteRT and the float model; the HTML report."""

from __future__ import annotations

import argparse

from tinyscope.analysis.compare import (
    DEFAULT_PANELS,
    GATE_EXIT_CODE,
    gate_exit_code,
    print_summary,
)
from tinyscope.cli.formatter import HelpFormatter
from tinyscope.report.comparison import run_compare


def _cmd_compare(args: argparse.Namespace) -> int:
    metrics, page = run_compare(args.run_dir, args.out, args.build, args.model, args.panels,
                                progress=not args.no_progress)
    print_summary(metrics)
    print(f"report: {page}")
    return gate_exit_code(metrics, args.max_lsb, args.min_top1)


def add_cli(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare a capture with TFLM, LiteRT and the float model; HTML report",
        description="Dequantize the device's tensors in RUN_DIR and compare them per layer and "
        "per channel with TFLM (expect 0 LSB), LiteRT BUILTIN_REF, LiteRT default (XNNPACK: "
        "a few 1-LSB rounding differences are expected) and the float Keras model. Writes "
        "metrics.json, PNG figures and a self-contained report.html. With --max-lsb or "
        f"--min-top1 it exits {GATE_EXIT_CODE} when a gate fails (for CI).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("run_dir", help="a directory written by 'tinyscope capture'")
    p.add_argument("--out", help="output directory (default: RUN_DIR/report)")
    p.add_argument("--build", help="the build dir (default: the one recorded in run.json)")
    p.add_argument("--model", help="float .keras model (default: the one in manifest.json)")
    p.add_argument("--panels", type=int, default=DEFAULT_PANELS,
                   help="images to draw feature-map and saliency panels for")
    p.add_argument("--max-lsb", type=int, help="fail if device vs TFLM differs by more LSB")
    p.add_argument("--min-top1", type=float,
                   help="fail if top-1 agreement device vs float is below this (0..1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compare)
