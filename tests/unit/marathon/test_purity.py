"""Marathon's planner, step executor, launch queue and model import no IO."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
PURE = [ROOT / "marathon" / f for f in ("planner.py", "deployment.py", "launch_queue.py",
                                        "model.py", "schema.py", "tracker.py")]
PURE_DEPS = [ROOT / "frameworks" / "tasks.py"]  # imported by launch_queue
FORBIDDEN = {"asyncio", "zmq", "time", "socket", "subprocess", "docker", "kazoo", "sqlite3",
             "aiohttp", "threading", "os", "requests", "urllib", "http", "random"}


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE + PURE_DEPS, ids=lambda p: p.name)
def test_pure_module_imports_no_io(path: pathlib.Path) -> None:
    mods = _imports(path)
    assert not {m.split(".")[0] for m in mods} & FORBIDDEN, sorted(mods)
    assert not mods & {"marathon.service", "marathon.api", "marathon.health", "marathon.store",
                       "marathon.main", "frameworks.driver", "mesos_common.transport"}
