"""Every pure core stays pure: no IO, clock, thread or process is reachable from it, even through
a helper module it imports (the walk follows our own imports transitively)."""
from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

#: The modules that take `(event, now)` and return effects, and the pure modules they call.
CORES = [
    "mesos_master.core", "mesos_master.state", "mesos_master.validation", "mesos_master.views",
    "mesos_master.allocator.hierarchical", "mesos_master.allocator.sorter",
    "mesos_master.allocator.filters", "mesos_master.registry.base", "mesos_master.api_v1.convert",
    "mesos_master.api_v1.operator_views",
    "mesos_agent.core", "mesos_agent.status", "mesos_agent.recovery", "mesos_agent.core_health",
    "mesos_agent.fetch_plan", "mesos_agent.core_executors", "mesos_master.core_executors",
    "mesos_common.v1_json", "mesos_common.v1_calls",
    "frameworks.core", "mesos_common.leadership",
    "marathon.core", "marathon.queries", "marathon.offer_log",
    "marathon.planner", "marathon.deployment", "marathon.launch_queue", "marathon.tracker",
    "marathon.model", "marathon.schema",
]
#: Top-level modules that do IO, read a clock or start threads/processes.
BANNED = frozenset({
    "asyncio", "zmq", "socket", "selectors", "subprocess", "threading", "multiprocessing",
    "concurrent", "sqlite3", "aiohttp", "kazoo", "docker", "requests", "urllib", "http",
    "psutil", "time", "os", "shutil", "tempfile", "pathlib",
})
OURS = ("mesos_common", "mesos_master", "mesos_agent", "frameworks", "marathon")

Source = Callable[[str], str]


def _real_source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin).read_text()


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _package_of(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None
    return module if spec.submodule_search_locations is not None else module.rpartition(".")[0]


def _imports(module: str, source: Source) -> tuple[set[str], list[str]]:
    """The modules `module` imports (absolute names, `from pkg import mod` resolved to the
    submodule), and the calls in it that do IO or read randomness without an injected rng."""
    tree = ast.parse(source(module), module)
    out: set[str] = set()
    calls: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None or (
                isinstance(node, ast.ImportFrom) and node.level):
            base = node.module or ""
            if node.level:
                pkg = _package_of(module).split(".")
                pkg = pkg[:len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            out.add(base)
            if base.startswith(OURS):
                out |= {f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")}
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in ("open", "input", "print"):
                calls.append(f"{f.id}()")
            elif (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                  and f.value.id == "random" and f.attr != "Random"):
                calls.append(f"random.{f.attr}()")
    return out, calls


def offences(roots: list[str], source: Source = _real_source) -> dict[str, list[str]]:
    """For each root module, what impure thing it reaches and by which path."""
    found: dict[str, list[str]] = {}
    for root in roots:
        seen: dict[str, str] = {root: root}
        todo = [root]
        bad: list[str] = []
        while todo:
            mod = todo.pop()
            imps, calls = _imports(mod, source)
            bad += [f"{seen[mod]} calls {c}" for c in calls]
            for imp in sorted(imps):
                if imp.split(".")[0] in BANNED:
                    bad.append(f"{seen[mod]} imports {imp}")
                elif imp.startswith(OURS) and imp not in seen and _is_module(imp):
                    seen[imp] = f"{seen[mod]} -> {imp}"
                    todo.append(imp)
        if bad:
            found[root] = bad
    return found


@pytest.mark.parametrize("core", CORES)
def test_core_reaches_no_io(core: str) -> None:
    assert _is_module(core), f"{core} is listed as a core but does not exist"
    assert offences([core]) == {}


def test_the_walk_follows_our_imports_transitively() -> None:
    """A core that imports a helper that imports asyncio is caught, naming the path."""
    helper = "mesos_common.resources"

    def planted(module: str) -> str:
        text = _real_source(module)
        return "import asyncio\n" + text if module == helper else text

    caught = offences(CORES, planted)
    reaches = [c for c in CORES if helper in _closure(c)]
    assert reaches, "no core reaches the helper: plant the import elsewhere"
    assert sorted(caught) == sorted(reaches)
    assert all(any(f"-> {helper} imports asyncio" in b for b in bad) for bad in caught.values())


@pytest.mark.parametrize("core", CORES)
def test_an_asyncio_import_planted_in_each_core_is_caught(core: str) -> None:
    def planted(module: str) -> str:
        text = _real_source(module)
        return "import asyncio\n" + text if module == core else text

    assert f"{core} imports asyncio" in offences([core], planted)[core]


def test_an_open_call_is_caught() -> None:
    core = CORES[0]

    def planted(module: str) -> str:
        text = _real_source(module)
        return text + "\n\ndef _leak():\n    return open('x')\n" if module == core else text

    assert f"{core} calls open()" in offences([core], planted)[core]


def _closure(root: str) -> set[str]:
    seen, todo = {root}, [root]
    while todo:
        for imp in _imports(todo.pop(), _real_source)[0]:
            if imp.startswith(OURS) and imp not in seen and _is_module(imp):
                seen.add(imp)
                todo.append(imp)
    return seen
