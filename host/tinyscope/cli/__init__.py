"""The ``tinyscope`` command line (argparse only): one module per command, each a thin
handler calling the library; :func:`main` is the console script's entry point."""

from tinyscope.cli.app import main

__all__ = ["main"]
