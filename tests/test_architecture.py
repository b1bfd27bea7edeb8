"""The shape of the host package, checked from its source with ``ast``: imports flow one way
through the stages (also imports inside functions), no import cycle, and every module and
function small enough to read (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "host" / "tinyscope"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
# Stages from the bottom up: a module may import its own stage and the stages below it.
LAYERS = (
    ("tinyscope", "tinyscope.errors", "tinyscope.fsutil"),
    ("tinyscope.data",),
    ("tinyscope.convert",),
    ("tinyscope.device",),
    ("tinyscope.analysis",),
    ("tinyscope.report",),
    ("tinyscope.cli", "tinyscope.bench", "tinyscope.bench_models"),
)
# Over the limits, each with the change that splits it; the test fails once a listed item is
# small enough, so the list only shrinks.
PENDING_SPLITS = {
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: dict[str, Path], name: str | None = None) -> set[str]:
    """The tinyscope modules ``path`` (module ``name``) imports anywhere in its body,
    functions included."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def layer(module: str) -> int:
    """The rank in LAYERS of the longest root that ``module`` is or lies under."""
    matches = [(len(root), rank) for rank, roots in enumerate(LAYERS) for root in roots
               if module == root or module.startswith(root + ".")]
    return max(matches)[1]


def test_imports_flow_down_the_stages():
    known = modules()
    wrong = [f"{m} imports {dep}" for m, p in known.items() for dep in sorted(imports(p, known))
             if layer(dep) > layer(m)]
    assert not wrong, "imports against the stage order:\n" + "\n".join(wrong)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports) as a path, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for dep in sorted(graph.get(m, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycle():
    known = modules()
    cycle = find_cycle({m: imports(p, known) for m, p in known.items()})
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_modules_and_functions_are_small():
    too_big = {}
    for name, path in modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_big[name] = f"{len(text.splitlines())} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_big[f"{name}.{node.name}"] = f"{lines} lines"
    new = {k: v for k, v in too_big.items() if k not in PENDING_SPLITS}
    assert not new, f"over {MAX_MODULE_LINES} lines per module / {MAX_FUNCTION_LINES} per " \
                    f"function: {new}"
    done = sorted(set(PENDING_SPLITS) - set(too_big))
    assert not done, f"small enough now, remove from PENDING_SPLITS: {done}"


def test_the_checks_see_function_local_imports_and_cycles(tmp_path):
    """The walker finds an import inside a function body (the kind that hid the cycles) and
    a relative import; the cycle finder reports a two-module cycle."""
    known = modules()
    src = tmp_path / "probe.py"
    src.write_text("def f():\n    from tinyscope.device import boards\n    from . import run\n")
    assert imports(src, known, "tinyscope.cli.probe") == {"tinyscope.device.boards",
                                                          "tinyscope.cli.run"}
    assert layer("tinyscope.device.boards") > layer("tinyscope.convert.manifest")
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
