"""unreachableStrategy and killSelection on a real cluster: an agent killed with kill -9
(its tasks live on) is unreachable once the master's pings time out; Marathon replaces its
task after `inactiveAfterSeconds`. Restarted on the same work_dir, the agent recovers the
task, and Marathon kills the surplus instance chosen by `killSelection`; never more than
`instances` run afterwards."""
from __future__ import annotations

import time

import pytest

from mesos_common.daemons import free_port
from tests.conftest import Cluster
from tests.helpers import http_json, wait_for
from tests.integration.marathon_helpers import MarathonApi

pytestmark = pytest.mark.slow


def _resources() -> str:
    ports = ",".join(f"{p}-{p}" for p in sorted({free_port() for _ in range(3)}))
    return f"cpus:1;mem:256;disk:64;ports:[{ports}]"


def _running(cluster: Cluster) -> set[str]:
    return {t["id"] for fw in cluster.state()["frameworks"] for t in fw["tasks"]
            if t["state"] == "TASK_RUNNING"}


@pytest.mark.parametrize("selection", ["YOUNGEST_FIRST", "OLDEST_FIRST"])
def test_unreachable_task_replaced_then_surplus_killed_by_kill_selection(
        cluster: Cluster, selection: str) -> None:
    cluster.start_master("--agent_ping_timeout=0.5secs", "--max_agent_ping_timeouts=2")
    resources = [_resources(), _resources()]
    agents = [cluster.start_agent(r) for r in resources]
    cluster.wait_agents(2)
    ids = [http_json(f"{a.field('http')}/state")["id"] for a in agents]
    marathon = cluster.start_marathon(0, "--scale_apps_interval=0.5",
                                      "--decline_offer_duration=1secs")
    api = MarathonApi(marathon.field("http"))
    status, body = api.call("POST", "/v2/apps", {
        "id": "/away", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 1,
        "killSelection": selection,
        "unreachableStrategy": {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 600}})
    assert status == 201, body
    wait_for(lambda: not api.deployments(), 60, 0.2, "the app running")
    (first,) = api.app("/away")["tasks"]
    i = ids.index(first["slaveId"])

    agents[i].kill9()
    states = wait_for(lambda: (ts := {t["id"]: t["state"] for t in api.app("/away")["tasks"]})
                      and len(ts) == 2 and "TASK_RUNNING" in ts.values() and ts,
                      60, 0.2, "a replacement next to the unreachable task")
    assert states[first["id"]] == "TASK_UNREACHABLE", states
    (replacement,) = set(states) - {first["id"]}
    assert next(t for t in api.app("/away")["tasks"]
                if t["id"] == replacement)["slaveId"] == ids[1 - i]

    cluster.start_agent(resources[i], index=i)
    survivor, victim = ((first["id"], replacement) if selection == "YOUNGEST_FIRST"
                        else (replacement, first["id"]))
    wait_for(lambda: [t["id"] for t in api.app("/away")["tasks"]] == [survivor], 60, 0.2,
             f"{selection}: only {survivor} left")
    for _ in range(10):  # and it stays so: no relaunch, no second instance
        assert _running(cluster) == {survivor}
        time.sleep(0.3)
    state = cluster.state()
    done = {t["id"]: t["state"] for fw in state["frameworks"]
            for t in fw.get("completed_tasks", [])}
    assert done.get(victim) == "TASK_KILLED", done
    app = api.app("/away")
    assert app["tasksRunning"] == 1 and not api.deployments()
