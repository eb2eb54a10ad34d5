"""The agent's cores stay pure: no IO, clock, threads or processes, even transitively."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PURE = ["mesos_agent.core", "mesos_agent.status", "mesos_agent.events", "mesos_agent.config",
        "mesos_agent.records", "mesos_agent.paths", "mesos_agent.recovery",
        "mesos_agent.core_health"]
BANNED = {"asyncio", "zmq", "time", "socket", "subprocess", "docker", "kazoo", "sqlite3",
          "aiohttp", "threading", "os", "psutil"}
OURS = ("mesos_agent", "mesos_common")


def imports(module: str) -> set[str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    tree = ast.parse(Path(spec.origin).read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names
                    if importlib.util.find_spec(node.module) is not None
                    and node.module.startswith(OURS)
                    and _is_module(f"{node.module}.{a.name}")}
    return out


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def test_agent_cores_import_no_io() -> None:
    seen: set[str] = set()
    todo = list(PURE)
    offenders = []
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        for imp in imports(mod):
            if imp.split(".")[0] in BANNED:
                offenders.append(f"{mod} imports {imp}")
            elif imp.startswith(OURS) and _is_module(imp):
                todo.append(imp)
    assert not offenders, offenders
    assert "mesos_common.messages" in seen  # the walk really followed our imports
