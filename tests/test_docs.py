"""The docs name files that exist: the module table of docs/pipeline.md, the package tree of
docs/architecture.md and every source path either doc quotes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "host" / "tinyscope"
DOCS = ("docs/pipeline.md", "docs/architecture.md")
SOURCE_SUFFIXES = (".py", ".c", ".h", ".md", ".mk", ".def", ".json", ".keras", ".sh", ".ld")
SEARCHED = ("host", "firmware", "tests", "docs", "models", "tools")


def _repo_paths() -> set[str]:
    """Every file and folder of the checkout's sources, relative to the root."""
    out = set()
    for top in SEARCHED:
        for p in (ROOT / top).rglob("*"):
            rel = p.relative_to(ROOT)
            if "build" in rel.parts or "__pycache__" in rel.parts:
                continue
            out.add(rel.as_posix() + ("/" if p.is_dir() else ""))
    return out


def _exists(path: str, known: set[str]) -> bool:
    """``path`` is a file or folder of the checkout, named from the root or from any folder
    (``analysis/drift.py``, ``kernels/ref/``, ``saliency/__init__.py``)."""
    return path in known or any(k.endswith("/" + path) for k in known)


def quoted_paths(text: str) -> list[str]:
    """The `quoted` tokens of ``text`` that are paths of a source file or a nested folder;
    not bare names (``manifest.json`` is an output), placeholders (``<op>``, ``...``), build
    outputs (``inputs.cc/.h``) or single folders (``test/`` of a user's data)."""
    out = []
    for token in re.findall(r"`([^`\s]+)`", text):
        if any(c in token for c in "<>*$") or "..." in token or "/." in token:
            continue
        if token.startswith(("/", "RUN_DIR", "BUILD_DIR", "OUT")):
            continue
        nested_dir = token.endswith("/") and token.count("/") >= 2
        if "/" in token and (token.endswith(SOURCE_SUFFIXES) or nested_dir):
            out.append(token)
    return out


def test_module_table_of_pipeline_md_names_the_package():
    text = (ROOT / "docs/pipeline.md").read_text()
    table = text.split("| module | concern |")[1].split("\n\n")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) > 15
    named = [p for row in rows for p in re.findall(r"`([^`]+)`", row.split("|")[1])]
    missing = [p for p in named if not (PACKAGE / p).exists()]
    assert not missing, f"docs/pipeline.md's module table names {missing}: not in host/tinyscope"
    stages = {p.split("/")[0] for p in named}
    assert {"convert", "analysis", "report", "device", "cli", "data.py"} <= stages


def test_package_tree_of_architecture_md_names_existing_modules():
    text = (ROOT / "docs/architecture.md").read_text()
    tree = text.split("```")[1]
    assert tree.lstrip().startswith("host/tinyscope/")
    host_part = tree.split("\nfirmware/")[0]
    missing, stage = [], PACKAGE
    for line in host_part.splitlines()[1:]:
        head = re.match(r"  (\w+)/\s", line)
        if head:
            stage = PACKAGE / head.group(1)
        elif re.match(r"  \w", line):
            stage = PACKAGE  # a top-level module's line
        for name in re.findall(r"\b(\w+\.py)\b", line):
            if not any(stage.rglob(name)) and not (PACKAGE / name).exists():
                missing.append(f"{stage.relative_to(PACKAGE)}/{name}")
    assert not missing, f"docs/architecture.md's tree names {missing}"
    modules = {p.name for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    unnamed = sorted(m for m in modules if m not in host_part and m != "__main__.py")
    # cli/ is described as "one module per command"; every other module is named
    assert not [m for m in unnamed if not (PACKAGE / "cli" / m).exists()], unnamed


def test_every_path_the_docs_quote_exists():
    known = _repo_paths()
    for doc in DOCS:
        paths = quoted_paths((ROOT / doc).read_text())
        assert paths, doc
        missing = [p for p in paths if not _exists(p, known)]
        assert not missing, f"{doc} names {missing}: no such file or folder"


def test_the_checks_can_fail():
    known = _repo_paths()
    assert quoted_paths("`analysis/gone.py` `kernels/none/` `test/` `<op>.c` `a/.h` `x.py`") == [
        "analysis/gone.py", "kernels/none/"]
    assert not _exists("analysis/gone.py", known) and _exists("analysis/drift.py", known)
    assert _exists("kernels/ref/", known) and not _exists("kernels/none/", known)
