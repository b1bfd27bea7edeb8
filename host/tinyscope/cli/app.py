"""The ``tinyscope`` command line: one subcommand per step of the pipeline.

Each module of :mod:`tinyscope.cli` registers its subcommand(s) through
``add_cli(subparsers)`` and holds only argparse code and a thin handler that calls the
library; :data:`COMMANDS` fixes the order in ``tinyscope --help``. A handler receives the
parsed ``argparse.Namespace`` and returns an exit code (0 on success).
"""

from __future__ import annotations

import argparse
import os
import sys

from tinyscope import __version__
from tinyscope.cli import capture, compare, convert, drift, flash, run, saliency, train
from tinyscope.errors import TinyscopeError

# Modules that provide subcommands, in the order a user meets them.
COMMANDS = (run, train, convert, drift, saliency, flash, capture, compare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyscope",
        description=(
            "See what your int8 CNN really computes on a microcontroller: quantize a Keras "
            "model, run it on a (real or emulated) Cortex-M board, capture its activations "
            "over serial and compare them with TFLite/LiteRT, the TFLM reference and the "
            "float model, with feature-map grids and saliency maps."
        ),
        epilog="Run 'tinyscope COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"tinyscope {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except TinyscopeError as err:
        if args.debug:
            raise
        print(f"tinyscope {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
