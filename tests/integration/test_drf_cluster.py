"""DRF on real processes: a cpu-heavy and a memory-heavy framework share two real agents.

Each framework (the SDK's threaded SchedulerDriver) launches one long task per offer it can
fit, gives the rest back without a filter, and declines offers its task does not fit for a
second. The master's allocator decides who gets each agent; once nothing fits any more, the
frameworks' dominant shares, read from /master/state, must be within one task's share.
"""
from __future__ import annotations

import threading
import time

import pytest

from frameworks.scheduler import Scheduler, SchedulerDriver
from frameworks.tasks import ResourcesLeft
from mesos_common import task_states
from mesos_common.daemons import kill_task_processes
from tests.helpers import http_json, wait_for

pytestmark = pytest.mark.slow

AGENT = "cpus:4;mem:4096;disk:1024;ports:[31000-31010]"
CPU_TASK = {"cpus": 1.0, "mem": 512.0}     # dominant: cpus, 1/8 of the cluster
MEM_TASK = {"cpus": 0.25, "mem": 1024.0}   # dominant: mem, 1/8 of the cluster
ONE_TASK_SHARE = 1 / 8


class Greedy(Scheduler):
    """Wants more than its fair share: one task per offer, for ever."""

    def __init__(self, name: str, shape: dict[str, float]) -> None:
        self.name, self.shape = name, shape
        self.launched = 0
        self.running: set[str] = set()
        self.lock = threading.Lock()

    def resource_offers(self, driver, offers):
        for offer in offers:
            left = ResourcesLeft(offer)
            task = left.take(f"{self.name}-{self.launched}", "sleep 300", **self.shape)
            if task is None:
                driver.decline_offer([offer.id], refuse_seconds=1)
                continue
            self.launched += 1
            driver.launch_tasks([offer.id], [task], refuse_seconds=0)

    def status_update(self, driver, status):
        with self.lock:
            if status.state == task_states.RUNNING:
                self.running.add(status.task_id)
            else:
                self.running.discard(status.task_id)


def _shares(state: dict) -> dict[str, float]:
    total = {r: sum(a["resources"][r] for a in state["slaves"]) for r in ("cpus", "mem")}
    return {f["name"]: max(f["used_resources"][r] / total[r] for r in ("cpus", "mem"))
            for f in state["frameworks"]}


def test_cpu_and_memory_heavy_frameworks_converge_to_drf_shares(cluster):
    cluster.start_master("--allocation_interval=100ms")
    cluster.start_agent(AGENT)
    cluster.start_agent(AGENT)
    cluster.wait_agents(2)
    cpu, mem = Greedy("cpu", CPU_TASK), Greedy("mem", MEM_TASK)
    drivers = [SchedulerDriver(cpu, "cpu", cluster.master_addr),
               SchedulerDriver(mem, "mem", cluster.master_addr)]
    for d in drivers:
        d.start()
    try:
        history: list[tuple[float, tuple[int, ...]]] = []  # (when, tasks per framework)

        def settled():  # same task counts for 3 s: nothing fits any more
            s = cluster.state()
            counts = tuple(sum(1 for t in f["tasks"] if t["state"] == task_states.RUNNING)
                           for f in sorted(s["frameworks"], key=lambda f: f["name"]))
            history.append((time.monotonic(), counts))
            old = [c for t, c in history if t <= history[-1][0] - 3.0]
            return s if old and old[-1] == counts and len(counts) == 2 and min(counts) else None

        state = wait_for(settled, 90, interval=0.5, what="task counts to settle")
        shares = _shares(state)
        print("dominant shares:", shares)
        assert set(shares) == {"cpu", "mem"}
        assert abs(shares["cpu"] - shares["mem"]) <= ONE_TASK_SHARE + 1e-6, shares
        assert min(shares.values()) >= 0.5, shares  # both got a real part of the cluster
        used = {r: sum(a["used_resources"][r] for a in state["slaves"]) for r in ("cpus", "mem")}
        roles = http_json(f"http://{cluster.master_addr}/master/roles")["roles"]
        (star,) = [r for r in roles if r["name"] == "*"]
        assert sorted(star["frameworks"]) == sorted(f["id"] for f in state["frameworks"])
        assert star["allocated"]["cpus"] >= used["cpus"]  # tasks (and any open offers)
        for agent in state["slaves"]:  # saturated: no agent fits another task of either shape
            free = {r: agent["resources"][r] - agent["used_resources"][r] for r in ("cpus", "mem")}
            for shape in (CPU_TASK, MEM_TASK):
                assert any(free[r] < shape[r] for r in shape), (agent["id"], free, used)
    finally:
        for d in drivers:
            d.stop()
        for work in cluster.agent_dirs:
            kill_task_processes(work)
