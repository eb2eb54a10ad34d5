"""The maintenance schedule on real processes: a window for the machine a task runs on sends
the framework an inverse offer (its answer shows in /maintenance/status); the machine taken
down loses its agent (the task is GONE) and an agent there may not register until the machine
is brought up again. The schedule is in the registry: a restarted master still has it.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from frameworks.scheduler import SchedulerDriver
from mesos_common import task_states as ts
from tests.helpers import TaskHolder, http_json, wait_for

pytestmark = pytest.mark.slow

AGENT = "cpus:1;mem:512;disk:512;ports:[{lo}-{hi}]"


class Holder(TaskHolder):
    """Declines every inverse offer, and remembers them."""

    def __init__(self) -> None:
        super().__init__(count=1, command="sleep 300")
        self.inverse: list = []
        self.ilock = threading.Lock()

    def inverse_offers(self, driver, inverse_offers):
        with self.ilock:
            self.inverse += inverse_offers
        driver.decline_inverse_offers([io.id for io in inverse_offers])


def _post(url: str, body: Any) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _start_agent(cluster, i: int, index: int | None = None):
    lo = 31000 + 20 * i
    return cluster.start_agent(AGENT.format(lo=lo, hi=lo + 19), f"--hostname=m{i + 1}",
                               index=index)


def test_schedule_inverse_offers_machine_down_and_up(cluster) -> None:
    cluster.start_master("--allocation_interval=100ms")
    for i in range(2):
        _start_agent(cluster, i)
    cluster.wait_agents(2)
    base = f"http://{cluster.master_addr}"
    sched = Holder()
    driver = SchedulerDriver(sched, "holder", cluster.master_addr)
    driver.start()
    try:
        wait_for(lambda: sched.states().get("t0") == ts.RUNNING, 30, what="t0 running")
        agent_id = sched.launched["t0"]
        (host,) = [a["hostname"] for a in cluster.state()["slaves"] if a["id"] == agent_id]
        start = time.time()
        schedule = {"windows": [{"machine_ids": [{"hostname": host}], "unavailability": {
            "start": {"nanoseconds": int(start * 1e9)},
            "duration": {"nanoseconds": 3600 * 10**9}}}]}
        assert _post(f"{base}/machine/down", [{"hostname": host}])[0] == 400  # not scheduled
        assert _post(f"{base}/maintenance/schedule", {"windows": [{}]})[0] == 400
        assert _post(f"{base}/maintenance/schedule", schedule)[0] == 200
        assert http_json(f"{base}/maintenance/schedule") == schedule

        (inv,) = wait_for(lambda: sched.inverse, 30, what="an inverse offer")
        assert inv.agent_id == agent_id and abs(inv.start - start) < 1e-3
        assert inv.duration == 3600

        def declined() -> dict | None:
            st = http_json(f"{base}/maintenance/status")
            ok = [s for d in st["draining_machines"] for s in d["statuses"]
                  if s["status"] == "DECLINE"]
            return st if ok else None
        status = wait_for(declined, 30, what="the decline in /maintenance/status")
        assert [d["id"] for d in status["draining_machines"]] == [{"hostname": host}]
        assert status["down_machines"] == []

        # v1 sees the same
        code, text = _post(f"{base}/api/v1", {"type": "GET_MAINTENANCE_SCHEDULE"})
        assert code == 200 and json.loads(text)["get_maintenance_schedule"]["schedule"] == \
            schedule

        assert _post(f"{base}/machine/down", [{"hostname": host}])[0] == 200
        # GONE, as a framework that is not partition-aware hears it: LOST
        wait_for(lambda: sched.states().get("t0") == ts.LOST, 30, what="t0 LOST")
        assert agent_id not in {a["id"] for a in cluster.state()["slaves"]}
        assert http_json(f"{base}/maintenance/status")["down_machines"] == [{"hostname": host}]
        code, text = _post(f"{base}/maintenance/schedule", {"windows": []})
        assert code == 400 and "down" in text  # a down machine stays scheduled

        # its agent, told to shut down, is refused when it tries again
        wait_for(lambda: "down for maintenance: refused" in
                 (cluster.root / "logs" / "master.log").read_text(), 30,
                 what="the agent refused")
        # a restarted master still has the schedule and the down machine
        cluster.master.stop()
        cluster.start_master("--allocation_interval=100ms")
        assert http_json(f"{base}/maintenance/schedule") == schedule
        wait_for(lambda: (cluster.root / "logs" / "master.log").read_text().count(
            "down for maintenance: refused") >= 2, 60, what="the new master refusing it")
        assert host not in {a["hostname"] for a in cluster.state()["slaves"]}
        assert _post(f"{base}/machine/up", [{"hostname": host}])[0] == 200
        assert http_json(f"{base}/maintenance/schedule") == {"windows": []}
        wait_for(lambda: host in {a["hostname"] for a in cluster.state()["slaves"]}, 90,
                 what="the agent admitted at its next attempt")
    finally:
        driver.stop()
