"""The report page described as data (answers, sections of tables, figures, notes and the layer
viewer), rendered by one Jinja2 template into one self-contained HTML file.

Nothing here computes a number: callers pass text already formatted. The page has no external
reference (scripts, styles and images are inlined), so it works from ``file://`` and can be
attached to a CI run or mailed as one file.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal


@dataclass
class Cell:
    text: str
    css: str = ""  # "ok", "bad", "warn", "l" (left-aligned)
    title: str = ""  # tooltip


@dataclass
class Row:
    cells: list[Cell]
    css: str = ""  # "worst" highlights the row


@dataclass
class Table:
    columns: list[str]
    rows: list[Row]
    caption: str = ""
    kind: Literal["table"] = "table"


@dataclass
class Figure:
    """A PNG (bytes or a file) with a caption written for people."""

    png: bytes | Path
    caption: str = ""

    @property
    def data(self) -> str:
        raw = self.png if isinstance(self.png, bytes) else Path(self.png).read_bytes()
        return base64.b64encode(raw).decode("ascii")


@dataclass
class Figures:
    figures: list[Figure]
    kind: Literal["figures"] = "figures"


@dataclass
class Note:
    text: str
    kind: Literal["note"] = "note"


@dataclass
class Text:
    text: str
    kind: Literal["text"] = "text"


@dataclass
class Viewer:
    """The layer viewer; ``data`` is :func:`tinyscope.report.viewer.payload`."""

    data: dict
    kind: Literal["viewer"] = "viewer"


Item = Table | Figures | Note | Text | Viewer


@dataclass
class Section:
    title: str
    caption: str = ""
    items: list[Item] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass
class Answer:
    """One of the questions at the top of the page."""

    question: str
    verdict: str
    status: Literal["ok", "warn", "bad"]
    details: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    layer: int | None = None  # a tensor index the viewer can show
    view: str = ""  # the viewer's view for that layer


@dataclass
class Page:
    title: str
    subtitle: str = ""
    answers: list[Answer] = field(default_factory=list)
    cards: dict[str, str] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)


def _asset(name: str) -> str:
    return resources.files("tinyscope.report").joinpath("templates", name).read_text("utf-8")


def render(page: Page) -> str:
    """The whole page as one string."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _asset(name)),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(
        page=page, css=_asset("report.css"), script=_asset("viewer.js"),
        sections=[s for s in page.sections if s.items],
    )


def write(path: Path, page: Page) -> Path:
    """Render and write atomically: a reader never sees half a report."""
    from tinyscope.fsutil import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, render(page))
