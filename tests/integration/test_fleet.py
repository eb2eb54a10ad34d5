"""The agent fleet: many real agent cores on real sockets in one process, driven by a real
master and the real batch framework."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from mesos_common.daemons import python_module, spawn
from mesos_master.ha_local import HaCluster
from tests.helpers import http_json, wait_for


def test_fleet_agents_register_and_run_a_batch(cluster):
    cluster.start_master("--allocation_interval=100ms")
    fleet = spawn("fleet", python_module(
        "mesos_agent.fleet", f"--master={cluster.master_addr}", "--agents=20",
        "--resources=cpus:1;mem:256;disk:100;ports:[31000-31001]"),
        cluster.root / "logs" / "fleet.log", "mesos-agent-fleet: started", timeout=60)
    try:
        state = cluster.wait_agents(20)
        assert {a["hostname"] for a in state["slaves"]} == {f"fleet-{i}" for i in range(20)}
        assert cluster.metrics()["master/cpus_total"] == 20.0
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOS_")}
        batch = subprocess.run(python_module(
            "frameworks.examples.batch", f"--master={cluster.master_addr}", "--tasks=60",
            "--cpus=0.5", "--mem=32", "--command=sleep 0.3"),
            capture_output=True, text=True, timeout=120, env=env)
        assert batch.returncode == 0, batch.stdout + batch.stderr
        summary = json.loads(batch.stdout.strip().splitlines()[-1])
        assert summary["finished"] == 60 and len(summary["by_agent"]) > 1
    finally:
        fleet.stop()


def _active_on_leader(ha: HaCluster, not_id: str | None = None) -> tuple[str, int] | None:
    """(leader id, active agents) from the master that says it leads (not `not_id`)."""
    found = ha.leader(timeout=0.5)
    if found is None or found[1].field("id") == not_id:
        return None
    state = http_json(f"http://{ha.http_of(found[1])}/master/state")
    return state["id"], sum(1 for a in state["slaves"] if a["active"])


@pytest.mark.slow
def test_fleet_follows_ha_masters_through_zookeeper(tmp_path, zookeeper):
    """zk:// detection and the LeaderWatch: after kill -9 of the leader every fleet agent
    re-registers with the newly elected one."""
    ha = HaCluster(tmp_path, zookeeper.url(), session_timeout=2.0, quorum=1,
                   master_flags=("--agent_ping_timeout=1secs", "--allocation_interval=100ms"),
                   log_level="WARNING")
    fleet = None
    try:
        for _ in range(2):
            ha.start_master()
        fleet = spawn("fleet", python_module(
            "mesos_agent.fleet", f"--master={zookeeper.url()}", "--agents=20",
            "--resources=cpus:1;mem:256;disk:100"),
            tmp_path / "logs" / "fleet.log", "mesos-agent-fleet: started", timeout=60)
        first, _ = wait_for(lambda: (s := _active_on_leader(ha)) and s[1] == 20 and s,
                            60, what="20 fleet agents on the first leader")
        slot = next(i for i, d in enumerate(ha.masters) if d and d.field("id") == first)
        ha.kill9(slot)
        second, n = wait_for(lambda: (s := _active_on_leader(ha, first)) and s[1] == 20 and s,
                             60, what="20 fleet agents on the new leader")
        assert second != first and n == 20
        assert fleet.alive()
    finally:
        if fleet is not None:
            fleet.stop()
        ha.stop()
