"""The pure modules import no IO: no sockets, clocks, threads, processes or disks."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3] / "mesos_master"
PURE = sorted([*ROOT.glob("core*.py"), ROOT / "state.py", ROOT / "validation.py",
               ROOT / "views.py", *ROOT.glob("allocator/*.py"), ROOT / "registry" / "base.py"])
FORBIDDEN = {"asyncio", "zmq", "time", "socket", "subprocess", "docker", "kazoo", "sqlite3",
             "aiohttp", "threading", "os", "requests", "urllib", "http"}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_no_io(path: pathlib.Path) -> None:
    assert path.exists()
    bad = _imports(path) & FORBIDDEN
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_pure_modules_do_not_import_the_runtime() -> None:
    for path in PURE:
        mods = {n for n in _imports_full(path)}
        assert not mods & {"mesos_master.server", "mesos_master.http", "mesos_master.main",
                           "mesos_master.registry.sqlite", "mesos_common.transport",
                           "mesos_common.leader"}, path.name


def _imports_full(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out
