"""Fixtures that start real Corral daemons on free ports in temp dirs and always stop them."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from mesos_common.daemons import LocalCluster
from tests.helpers import http_json, wait_for
from tests.zk_server import zookeeper

__all__ = ["cluster", "zookeeper"]

# Shared, noisy machines: no per-example deadlines or speed health checks (never timings in
# pass/fail tests); the example counts stay as each test sets them.
settings.register_profile("corral", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("corral")


class Cluster(LocalCluster):
    """LocalCluster plus the HTTP look-ups tests make."""

    def state(self) -> dict:
        return http_json(f"http://{self.master_addr}/master/state")

    def metrics(self) -> dict:
        return http_json(f"http://{self.master_addr}/metrics/snapshot")

    def wait_agents(self, n: int, timeout: float = 30.0) -> dict:
        def ready():
            s = self.state()
            return s if len([a for a in s["slaves"] if a.get("active")]) == n else None
        return wait_for(ready, timeout, what=f"{n} active agents")

    def dump_logs(self) -> str:
        out = []
        for p in sorted((self.root / "logs").glob("*.log")):
            out.append(f"===== {p.name}\n" + "".join(p.read_text().splitlines(True)[-60:]))
        return "\n".join(out)


@pytest.fixture
def cluster(tmp_path: Path, request) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    # pytest's temp dirs are 0700: agents' work dirs go where tasks run as nobody (their
    # default user) can walk to their sandboxes, as under mesos-local's own temp dir
    c.agents_root = Path(tempfile.mkdtemp(prefix="corral-agents-"))
    c.agents_root.chmod(0o711)
    try:
        yield c
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(c.dump_logs())
        c.stop()
        shutil.rmtree(c.agents_root, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
