"""Stage lines and times for ``tinyscope run``: ``==> stage: what`` when a stage starts,
``    stage 1.2 s`` when it ends, and one summary line of every stage's time at the end.

Progress bars are for people watching a terminal: :func:`show_progress` is false when stderr
(where the bars go) is not a terminal, so a piped or CI log gets one line per stage.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


def show_progress(disabled: bool, stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return not disabled and hasattr(stream, "isatty") and stream.isatty()


class Stages:
    """The time of each named stage of a run, in the order they ran."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.seconds: dict[str, float] = {}
        self.start = time.monotonic()

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    @contextmanager
    def stage(self, name: str, what: str = "") -> Iterator[None]:
        self._print(f"==> {name}" + (f": {what}" if what else ""))
        start = time.monotonic()
        try:
            yield
        finally:
            self.record(name, time.monotonic() - start)

    def record(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self._print(f"    {name} {seconds:.1f} s")

    def summary(self) -> str:
        parts = [f"{name} {s:.1f} s" for name, s in self.seconds.items()]
        return "stages: " + " · ".join(parts) + f" · total {time.monotonic() - self.start:.1f} s"
