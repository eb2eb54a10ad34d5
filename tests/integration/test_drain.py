"""Draining an agent under a Marathon app, on real processes: the master sends Marathon an
inverse offer for the agent (drained with `corral agent drain`), Marathon starts a
replacement elsewhere and kills the instance there only once the replacement is healthy
(minimumHealthCapacity 1), and the agent ends DRAINED with nothing running. Five agents, one
instance per rack (`UNIQUE`): the fifth rack is where the replacement can go.
"""
from __future__ import annotations

import time
from datetime import datetime

import pytest
from click.testing import CliRunner

from corral.main import cli
from tests.helpers import wait_for
from tests.integration.marathon_helpers import MarathonApi, start_marathon
from tests.integration.test_marathon_e2e import HealthWatcher

pytestmark = pytest.mark.slow

AGENT = "cpus:1;mem:256;disk:64;ports:[{lo}-{hi}]"  # one address: ports of their own
WEB = {"id": "/web", "cmd": "python3 -m http.server $PORT0", "cpus": 0.2, "mem": 32,
       "instances": 4, "constraints": [["rack", "UNIQUE"]],
       "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
                         "intervalSeconds": 1, "timeoutSeconds": 5,
                         "gracePeriodSeconds": 30, "maxConsecutiveFailures": 3}],
       "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 0}}


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _healthy(api: MarathonApi) -> dict | None:
    app = api.app("/web")
    ok = (app["tasksHealthy"] == 4 and len(app["tasks"]) == 4 and not app["deployments"]
          and all(t["state"] == "TASK_RUNNING" for t in app["tasks"]))
    return app if ok else None


def test_drain_replaces_instances_before_killing_them(cluster, tmp_path):
    cluster.start_master()
    for i in range(5):
        lo = 31000 + 20 * i
        cluster.start_agent(AGENT.format(lo=lo, hi=lo + 19), f"--attributes=rack:r{i + 1}")
    cluster.wait_agents(5)
    marathon = start_marathon(tmp_path, cluster.master_addr)
    api = MarathonApi(marathon.field("http"))
    try:
        status, body = api.call("POST", "/v2/apps", WEB)
        assert status == 201, body
        app = wait_for(lambda: _healthy(api), 90, 0.2, "4 healthy instances")
        victim = app["tasks"][0]
        first_agents = {t["slaveId"] for t in app["tasks"]}
        agent_id = victim["slaveId"]
        watcher = HealthWatcher(api)
        watcher.start()
        time.sleep(0.5)
        out = CliRunner().invoke(cli, ["--master", cluster.master_addr, "agent", "drain",
                                       agent_id, "--max-grace-period", "5"])
        assert out.exit_code == 0 and f"agent {agent_id} draining" in out.output, out.output

        def drained() -> dict | None:
            s = cluster.state()
            (a,) = [a for a in s["slaves"] if a["id"] == agent_id]
            return a if (a.get("drain_info") or {}).get("state") == "DRAINED" else None
        agent = wait_for(drained, 90, 0.2, "the agent DRAINED")
        app = wait_for(lambda: _healthy(api), 60, 0.2, "4 healthy instances again")
        watcher.stop.set()
        watcher.join(10)

        assert agent["deactivated"] and agent["drain_info"]["config"] == {
            "mark_gone": False, "max_grace_period": {"nanoseconds": 5_000_000_000}}
        assert not any(agent["used_resources"].get(k) for k in ("cpus", "mem"))
        assert all(t["slaveId"] != agent_id for t in app["tasks"])
        assert victim["id"] not in {t["id"] for t in app["tasks"]}
        # what really answered (Marathon's own count may dip on a slow probe)
        assert watcher.samples and min(s for _, s in watcher.samples) >= 4, watcher.samples
        state = cluster.state()
        running_there = [t for f in state["frameworks"] for t in f["tasks"]
                         if t["slave_id"] == agent_id]
        assert not running_there, running_there
        killed = [t for f in state["frameworks"] for t in f["completed_tasks"]
                  if t["id"] == victim["id"]]
        assert killed and killed[0]["state"] == "TASK_KILLED", killed
        # the replacement (on the rack that had none) was healthy before the kill
        (new,) = [t for t in app["tasks"] if t["slaveId"] not in first_agents]
        healthy_at = _seconds(new["healthCheckResults"][0]["firstSuccess"])
        killed_at = min(s["timestamp"] for s in killed[0]["statuses"]
                        if s["state"] in ("TASK_KILLING", "TASK_KILLED"))
        assert healthy_at < killed_at, (new, killed)

        # deactivate / reactivate another agent; an unknown agent is refused
        other = new["slaveId"]
        for verb, flag in (("deactivate", True), ("reactivate", False)):
            out = CliRunner().invoke(cli, ["--master", cluster.master_addr, "agent", verb, other])
            assert out.exit_code == 0, out.output
            (a,) = [a for a in cluster.state()["slaves"] if a["id"] == other]
            assert a["deactivated"] is flag and a["active"] is not flag and "drain_info" not in a
        out = CliRunner().invoke(cli, ["--master", cluster.master_addr, "agent", "drain", "nope"])
        assert out.exit_code != 0 and "no agent" in out.output
    finally:
        marathon.stop()
