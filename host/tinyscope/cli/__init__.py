"""The ``tinyscope`` command line: one subcommand per step of the pipeline.

Each concern module registers its own subcommand(s) through ``add_cli(subparsers)``; the
list below fixes the order in ``tinyscope --help``. A module's handler receives the parsed
``argparse.Namespace`` and returns an exit code (0 on success).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tinyscope import __version__
from tinyscope.errors import TinyscopeError

# Modules that provide subcommands, in the order a user meets them.
COMMAND_MODULES: list[str] = [
    "pipeline", "model", "convert", "drift", "saliency", "link.boards", "link.capture", "compare",
]


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
    for name in COMMAND_MODULES:
        importlib.import_module(f"tinyscope.{name}").add_cli(sub)
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


if __name__ == "__main__":
    sys.exit(main())
