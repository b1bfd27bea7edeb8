"""The help formatter every subcommand uses: defaults shown, except "None" ones."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``ArgumentDefaultsHelpFormatter`` without "(default: None)": an option whose default
    is None says in its own help what happens when it is left out."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)
