"""No module of marathon/ imports from a module that imports it back, directly or through
others (imports under TYPE_CHECKING count too: a cycle is a design smell either way)."""
from __future__ import annotations

import ast
import graphlib
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "marathon"


def _module(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the marathon modules it imports."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    g: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != name:
                    g[name].add(t)
    return g


def test_marathon_has_no_import_cycles() -> None:
    try:
        tuple(graphlib.TopologicalSorter(_graph()).static_order())
    except graphlib.CycleError as e:
        raise AssertionError(f"import cycle: {' -> '.join(e.args[1])}") from None


def test_the_graph_sees_imports_and_cycles() -> None:
    g = _graph()
    assert "marathon.core_events" in g["marathon.core"]
    assert "marathon.http.apps" in g["marathon.http.app"]
    g["marathon.core_events"].add("marathon.core")  # a cycle, as a test of the test
    try:
        tuple(graphlib.TopologicalSorter(g).static_order())
    except graphlib.CycleError:
        return
    raise AssertionError("the cycle was not found")
