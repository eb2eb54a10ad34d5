"""Draining and deactivation survive the master, on real processes with the default SQLite
registry: an agent drained with `corral agent drain` (its framework declines the inverse offer)
and another deactivated with `corral agent deactivate`; the master is killed -9 and started
again on the same work dir. The new master still shows both (v1 GET_AGENTS `deactivated` /
`drain_info`), offers nothing from them, asks the framework again for the draining agent, and
the agent ends DRAINED once the framework moves its task. A second restart still shows DRAINED.
"""
from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from click.testing import CliRunner

from corral.main import cli
from frameworks.scheduler import SchedulerDriver
from mesos_common import task_states as ts
from mesos_common.daemons import kill_task_processes
from tests.conftest import Cluster
from tests.helpers import TaskHolder, wait_for

pytestmark = pytest.mark.slow

AGENT = "cpus:1;mem:512;disk:512;ports:[{lo}-{hi}]"
# agents and the framework notice a silent master after 3 heartbeats: seconds, not a minute
MASTER_FLAGS = ("--allocation_interval=100ms", "--heartbeat_interval=2secs")


class Mover(TaskHolder):
    """One task; declines inverse offers until `move` is set, then kills its task (it has
    moved it). Offers are recorded with the `phase` the test is in."""

    def __init__(self) -> None:
        super().__init__(count=1, command="sleep 300")
        self.inverse: list[Any] = []
        self.offered: list[tuple[int, str]] = []
        self.phase = 0
        self.move = threading.Event()

    def resource_offers(self, driver: Any, offers: list[Any]) -> None:
        with self.lock:
            self.offered += [(self.phase, o.agent_id) for o in offers]
        super().resource_offers(driver, offers)

    def inverse_offers(self, driver: Any, inverse_offers: list[Any]) -> None:
        with self.lock:
            self.inverse += inverse_offers
        driver.decline_inverse_offers([io.id for io in inverse_offers])
        if self.move.is_set():
            driver.kill_task("t0")

    def offered_in(self, phase: int) -> list[str]:
        with self.lock:
            return [a for p, a in self.offered if p == phase]


def _agents(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """v1 GET_AGENTS, by agent id."""
    req = urllib.request.Request(f"http://{cluster.master_addr}/api/v1",
                                 data=json.dumps({"type": "GET_AGENTS"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = json.loads(r.read())
    return {a["agent_info"]["id"]["value"]: a for a in body["get_agents"]["agents"]}


def _corral(cluster: Cluster, *args: str) -> str:
    out = CliRunner().invoke(cli, ["--master", cluster.master_addr, "agent", *args])
    assert out.exit_code == 0, out.output
    return out.output


def _restart(cluster: Cluster, n: int) -> None:
    assert cluster.master is not None
    cluster.master.kill9()
    cluster.start_master(*MASTER_FLAGS)
    # registered again, deactivated ones included (those are not `active`, as in Mesos)
    wait_for(lambda: len(cluster.state()["slaves"]) == n, 90, what=f"{n} agents re-registered")


def _drain_state(cluster: Cluster, agent_id: str) -> str | None:
    return (_agents(cluster)[agent_id].get("drain_info") or {}).get("state")


def test_a_restarted_master_keeps_draining_and_deactivated_agents(cluster: Cluster) -> None:
    cluster.start_master(*MASTER_FLAGS)
    for i in range(3):
        lo = 31000 + 20 * i
        cluster.start_agent(AGENT.format(lo=lo, hi=lo + 19))
    cluster.wait_agents(3)
    sched = Mover()
    driver = SchedulerDriver(sched, "mover", cluster.master_addr)
    driver.start()
    try:
        wait_for(lambda: sched.states().get("t0") == ts.RUNNING, 30, what="t0 running")
        drained = sched.launched["t0"]
        idle = sorted(set(_agents(cluster)) - {drained})
        deactivated, other = idle
        assert f"agent {drained} draining" in _corral(cluster, "drain", drained)
        _corral(cluster, "deactivate", deactivated)
        wait_for(lambda: [io for io in sched.inverse if io.agent_id == drained], 30,
                 what="the inverse offer of the first master")
        assert _drain_state(cluster, drained) == "DRAINING"  # declined: the task stays

        sched.move.set()
        sched.phase = 1
        _restart(cluster, 3)
        agents = _agents(cluster)
        assert agents[drained]["deactivated"] is True and agents[drained]["active"] is False
        assert agents[drained]["drain_info"]["state"] in ("DRAINING", "DRAINED")
        assert agents[drained]["drain_info"]["config"] == {"mark_gone": False}
        assert agents[deactivated]["deactivated"] is True
        assert "drain_info" not in agents[deactivated]
        assert agents[other]["deactivated"] is False and agents[other]["active"] is True
        state = cluster.state()
        assert (state["activated_slaves"], state["deactivated_slaves"]) == (1.0, 2.0)

        # asked again by the new master, the framework moves its task: DRAINED
        wait_for(lambda: len([io for io in sched.inverse if io.agent_id == drained]) >= 2, 60,
                 what="the inverse offer of the new master")
        wait_for(lambda: sched.states().get("t0") == ts.KILLED, 30, what="t0 killed")
        wait_for(lambda: _drain_state(cluster, drained) == "DRAINED", 30, what="DRAINED")
        # several allocation cycles: offers from the active agent only
        wait_for(lambda: len(sched.offered_in(1)) >= 3, 30, what="offers from the new master")
        assert set(sched.offered_in(1)) == {other}

        sched.phase = 2
        _restart(cluster, 3)  # DRAINED is durable too
        agents = _agents(cluster)
        assert agents[drained]["deactivated"] is True
        assert agents[drained]["drain_info"]["state"] == "DRAINED"
        assert agents[deactivated]["deactivated"] is True
        _corral(cluster, "reactivate", deactivated)
        assert _agents(cluster)[deactivated]["deactivated"] is False
        wait_for(lambda: deactivated in sched.offered_in(2), 30,
                 what="an offer from the reactivated agent")
        assert drained not in sched.offered_in(2)
    finally:
        driver.stop()
        for work in cluster.agent_dirs:
            kill_task_processes(work)
