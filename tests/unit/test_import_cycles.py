"""No module of ours imports a module that imports it back, directly or through others.

Every import counts: top-level, function-level and `if TYPE_CHECKING:` ones (a cycle hidden
in a function still couples the two modules both ways). Relative imports are resolved;
`from pkg import mod` is an import of the submodule `pkg.mod`. A package's own `__init__`
is not counted as imported by its submodules (Python's implicit parent import)."""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mesos_common", "mesos_master", "mesos_agent", "frameworks", "marathon", "corral")


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                subs = {f"{base}.{a.name}" for a in node.names} & modules.keys()
                edges |= subs
                if len(subs) < len(node.names):
                    edges.add(base)  # names defined in `base` itself
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a path back to its start), or None."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        return list(e.args[1])
    return None


def test_no_module_imports_one_that_imports_it_back() -> None:
    found = cycle(import_graph(_modules()))
    assert found is None, "import cycle: " + " -> ".join(found or ())


def test_the_check_finds_a_cycle_through_a_function_level_and_a_type_checking_import(
        tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.c import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from .a import y\n")
    (pkg / "d.py").write_text("import pkg.a\n")  # imports into the cycle, not part of it
    modules = {f"pkg.{p.stem}" if p.stem != "__init__" else "pkg": p for p in pkg.glob("*.py")}
    found = cycle(import_graph(modules))
    assert found is not None and found[0] == found[-1]
    assert sorted(set(found)) == ["pkg.a", "pkg.b", "pkg.c"]
