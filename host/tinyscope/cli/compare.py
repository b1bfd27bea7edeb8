"""``tinyscope compare``: a capture vs TFLM, LiteRT and the float model; the HTML report.

:func:`report_and_gate` is the tail that ``compare`` and ``run`` share: compare, write the
report, print the summary, apply the CI gates.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyscope.analysis.compare import DEFAULT_PANELS, GATE_EXIT_CODE, gate_exit_code
from tinyscope.cli.formatter import HelpFormatter
from tinyscope.cli.stages import Stages, show_progress
from tinyscope.report.comparison import run_compare
from tinyscope.report.console import print_summary


def report_and_gate(args: argparse.Namespace, run_dir: str | Path, out: str | Path | None,
                    build: str | Path | None, model: str | Path | None = None,
                    stages: Stages | None = None) -> int:
    """Compare the capture in RUN_DIR, write OUT/report.html and metrics.json, print the
    summary and the report's path; the exit code of the ``--max-lsb``/``--min-top1`` gates
    (options from :func:`add_report_options`). With ``stages`` the references' and the
    report's times are recorded there and the stage summary printed."""
    seconds: dict[str, float] = {}
    metrics, page = run_compare(run_dir, out, build, model, args.panels,
                                progress=show_progress(args.no_progress), seconds=seconds)
    if stages is not None:
        for name in ("references", "report"):
            stages.record(name, seconds[name])
    print()
    print_summary(metrics)
    print(f"\nreport: {page.resolve()}")
    if stages is not None:
        print(stages.summary())
    return gate_exit_code(metrics, args.max_lsb, args.min_top1)


def add_report_options(p: argparse.ArgumentParser) -> None:
    """The options of :func:`report_and_gate`: panels, the CI gates, progress bars."""
    p.add_argument("--panels", type=int, default=DEFAULT_PANELS,
                   help="images to draw feature-map and saliency panels for")
    p.add_argument("--max-lsb", type=int,
                   help=f"gate: exit {GATE_EXIT_CODE} if device vs TFLM differs by more LSB")
    p.add_argument("--min-top1", type=float,
                   help=f"gate: exit {GATE_EXIT_CODE} if top-1 agreement device vs float is "
                   "below this (0..1)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (also off when stderr is not a terminal)")


def _cmd_compare(args: argparse.Namespace) -> int:
    return report_and_gate(args, args.run_dir, args.out, args.build, args.model)


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
    add_report_options(p)
    p.set_defaults(func=_cmd_compare)
