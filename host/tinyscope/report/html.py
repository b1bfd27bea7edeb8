"""One self-contained HTML page: headline, tables and PNG figures embedded as data URIs.

The page has no external references (no scripts, fonts or images from elsewhere), so it can
be attached to a CI run or mailed as one file.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
.ok { color: #08660d; font-weight: 600; } .bad { color: #b00020; font-weight: 600; }
figure { margin: 0.5em 0 1.5em; } figcaption { color: #555; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #eee; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 10em; }
.card b { display: block; font-size: 1.4em; }
p.note { background: #f8f8f0; border-left: 4px solid #cc9; padding: 0.5em 1em; }
"""


@dataclass
class Table:
    """A table: ``rows`` of cells; a cell may be a (text, css_class) pair."""

    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    caption: str = ""


@dataclass
class Figure:
    png: Path
    caption: str = ""


@dataclass
class Section:
    title: str
    text: str = ""
    items: list[Table | Figure | str] = field(default_factory=list)


def _cell(value: object, tag: str) -> str:
    css = ""
    if isinstance(value, tuple) and len(value) == 2:
        value, css = value
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    left = not isinstance(value, int | float)
    classes = " ".join(c for c in (css, "l" if left else "") if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<{tag}{attr}>{html.escape(text)}</{tag}>"


def _table(t: Table) -> str:
    head = "".join(_cell(c, "th") for c in t.columns)
    body = "".join("<tr>" + "".join(_cell(v, "td") for v in row) + "</tr>" for row in t.rows)
    caption = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    return f"<table>{caption}<tr>{head}</tr>{body}</table>"


def _figure(f: Figure) -> str:
    data = base64.b64encode(Path(f.png).read_bytes()).decode("ascii")
    caption = f"<figcaption>{html.escape(f.caption)}</figcaption>" if f.caption else ""
    alt = html.escape(f.caption or Path(f.png).name)
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{caption}</figure>'


def render(title: str, subtitle: str, cards: dict[str, str], sections: list[Section]) -> str:
    """The whole page as a string."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>",
        "<div class='cards'>",
        *(
            f"<div class='card'>{html.escape(k)}<b>{html.escape(v)}</b></div>"
            for k, v in cards.items()
        ),
        "</div>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p class='note'>{html.escape(s.text)}</p>")
        for item in s.items:
            if isinstance(item, Table):
                parts.append(_table(item))
            elif isinstance(item, Figure):
                parts.append(_figure(item))
            else:
                parts.append(f"<p>{html.escape(item)}</p>")
    parts.append("</body></html>")
    return "".join(parts)


def write(path: Path, page: str) -> Path:
    """Write atomically: a reader never sees half a report."""
    from tinyscope.fsutil import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, page)
