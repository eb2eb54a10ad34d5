"""Partitions on a real network: every daemon on a host of its own (network namespaces on a
bridge, tests/hosts), faults made with `ip link` and iptables.

1. An agent cut off past its ping timeout: its task turns TASK_UNREACHABLE, Marathon replaces
   it; healed, the agent re-registers, the returning surplus is killed, the app ends at its
   instance count and was never above instances + maximumOverCapacity.
2. The leading master cut off from ZooKeeper stops leading; another master leads, the
   agents and Marathon follow it and the tasks survive.
3. A leading master that can send but not receive never leaves two masters leading at once.
4. Marathon's leader cut off from ZooKeeper steps down, another takes over, and every app
   change acknowledged to the client through the whole time is there.
5. An agent an hour ahead and masters an hour behind (wall clocks) change nothing.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_master.ha_local import zk_available
from tests.helpers import wait_for
from tests.hosts import netns
from tests.hosts.checks import (
    MarathonClient,
    books_unbalanced,
    converged,
    lost_changes,
    running_on_agents,
    unknown_tasks,
)
from tests.hosts.cluster import HostCluster

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    bool(netns.available()) or not zk_available(),
    reason=netns.available() or "ZooKeeper is not installed")]

WEB: dict[str, Any] = {
    "id": "/web", "cmd": "echo ok > index.html && exec busybox httpd -f -p $PORT0",
    "cpus": 0.1, "mem": 16, "instances": 3, "portDefinitions": [{"port": 0}],
    "constraints": [["hostname", "UNIQUE"]],
    "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
                      "intervalSeconds": 1, "timeoutSeconds": 1,
                      "gracePeriodSeconds": 10, "maxConsecutiveFailures": 2}],
    "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 0},
    "unreachableStrategy": {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 120}}


@pytest.fixture
def hosts(tmp_path: Path, request) -> Iterator[HostCluster]:
    c = HostCluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(c.dump_logs())
        c.stop()


def _one(names: list[str], what: str) -> str:
    assert len(names) == 1, f"{what}: {names}"
    return names[0]


def _deploy(client: MarathonClient, app: dict, timeout: float = 60) -> dict:
    wait_for(lambda: client.cluster.leading_marathons(), 60, 0.2, "a Marathon leader")
    assert client.change("POST", "/v2/apps", app["id"], app)
    return wait_for(lambda: (a := client.app(app["id"])) and converged(a) and a,
                    timeout, 0.3, f"{app['id']} running")


class Sampler(threading.Thread):
    """Samples a function of the cluster every `period` until stopped; errors are skipped."""

    def __init__(self, fn, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.fn, self.period, self.done = fn, period, threading.Event()
        self.samples: list[Any] = []

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.samples.append(self.fn())
            except Exception:
                pass
            time.sleep(self.period)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(10)


def test_partitioned_agent_is_replaced_and_its_surplus_killed_on_return(hosts):
    client = MarathonClient(hosts)
    app = _deploy(client, WEB)
    victim_task = app["tasks"][0]
    victim = hosts.agent_of_ip(victim_task["host"])
    assert victim is not None
    cap = WEB["instances"] * (1 + WEB["upgradeStrategy"]["maximumOverCapacity"])

    with Sampler(lambda: running_on_agents(hosts)) as on_agents:
        hosts.net.link(victim, up=False)
        # 1. past the ping timeout the master calls the agent unreachable, Marathon its task
        wait_for(lambda: any(t["id"] == victim_task["id"] and t["state"] == "TASK_UNREACHABLE"
                             for t in (client.app("/web") or {}).get("tasks", [])),
                 30, 0.2, "the cut-off task TASK_UNREACHABLE")
        # ... and replaces it on the agents it can still reach
        wait_for(lambda: (a := client.app("/web")) and sum(
            1 for t in a["tasks"] if t["state"] == "TASK_RUNNING"
            and t["host"] != victim_task["host"]) == 3 and a["tasksHealthy"] == 3,
            60, 0.3, "three healthy tasks away from the cut-off agent")
        hosts.net.link(victim, up=True)
        # 2. healed: the agent is back, the returning task is the surplus and is killed
        wait_for(lambda: sum(1 for s in hosts.master_state()["slaves"] if s["active"]) == 4,
                 60, 0.3, "all four agents registered again")
        final = wait_for(lambda: (a := client.app("/web")) and converged(a)
                         and len(running_on_agents(hosts)) == 3 and a, 60, 0.3,
                         "the app back at three tasks, the surplus killed")
    # which of the four dies is Marathon's killSelection (YOUNGEST_FIRST): one of them did
    assert set(running_on_agents(hosts)) == {t["id"] for t in final["tasks"]}
    # the agents never ran more than instances + maximumOverCapacity ... plus the task that
    # was cut off with its agent (it runs on, unseen, until the agent is back)
    assert max(len(s) for s in on_agents.samples) <= cap + 1, on_agents.samples
    assert unknown_tasks(hosts, [final]) == []
    wait_for(lambda: not books_unbalanced(hosts), 30, 0.5, "the master's books balanced")


def test_leading_master_cut_from_zookeeper_is_replaced(hosts):
    client = MarathonClient(hosts)
    app = _deploy(client, dict(WEB, id="/steady", instances=2))
    before = sorted(t["id"] for t in app["tasks"])
    old = _one(wait_for(hosts.leading_masters, 30, 0.2, "a leading master"), "leaders")

    with Sampler(hosts.leading_masters) as leaders:
        hosts.net.block(old, "both", peers=[hosts.ip("zk")])
        new = _one(wait_for(lambda: [m for m in hosts.leading_masters() if m != old],
                            60, 0.2, "another master leading"), "new leaders")
        assert old not in hosts.leading_masters()
        # agents and Marathon follow the new leader; the tasks run on untouched
        wait_for(lambda: sum(1 for s in hosts.master_state()["slaves"] if s["active"]) == 4,
                 60, 0.3, "all agents registered with the new leader")
        after = wait_for(lambda: (a := client.app("/steady")) and converged(a) and a,
                         60, 0.3, "the app still running")
        hosts.net.heal(old)
        time.sleep(3)  # 3 s healed, sampled: the old leader must not lead again
    assert sorted(t["id"] for t in after["tasks"]) == before
    assert _one(hosts.leading_masters(), "leaders after healing") == new
    assert all(len(s) <= 1 for s in leaders.samples), [s for s in leaders.samples if len(s) > 1]
    wait_for(lambda: not books_unbalanced(hosts), 30, 0.5, "the master's books balanced")


def test_one_way_partition_of_the_leading_master_never_leaves_two_leaders(hosts):
    client = MarathonClient(hosts)
    _deploy(client, dict(WEB, id="/steady", instances=2))
    old = _one(wait_for(hosts.leading_masters, 30, 0.2, "a leading master"), "leaders")

    with Sampler(hosts.leading_masters, period=0.1) as leaders:
        hosts.net.block(old, "in")  # it sends; nothing it is sent arrives
        wait_for(lambda: [m for m in hosts.leading_masters() if m != old],
                 60, 0.2, "another master leading")
        wait_for(lambda: (a := client.app("/steady")) and converged(a), 60, 0.3,
                 "the app running under the new leader")
        hosts.net.heal(old)
        time.sleep(3)  # 3 s healed, sampled: never two leaders at once
    both = [s for s in leaders.samples if len(s) > 1]
    assert both == [], both
    assert len(hosts.leading_masters()) == 1


def test_marathon_leader_cut_from_zookeeper_steps_down_and_loses_no_change(hosts):
    client = MarathonClient(hosts)
    wait_for(hosts.leading_marathons, 60, 0.2, "a Marathon leader")
    old = _one(hosts.leading_marathons(), "Marathon leaders")
    stop = threading.Event()

    def drive() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            client.change("PUT", f"/v2/apps/c/app{n % 5}?force=true", f"/c/app{n % 5}",
                          {"cmd": f"sleep {1000 + n}", "instances": 0, "cpus": 0.1, "mem": 16})
            time.sleep(0.1)

    with Sampler(hosts.leading_marathons) as leaders:
        t = threading.Thread(target=drive, daemon=True)
        t.start()
        try:
            time.sleep(2)  # 2 s of changes (about 20) before the cut
            hosts.net.block(old, "both", peers=[hosts.ip("zk")])
            new = _one(wait_for(lambda: [m for m in hosts.leading_marathons() if m != old],
                                60, 0.2, "another Marathon leading"), "new Marathon leaders")
            assert old not in hosts.leading_marathons()
            time.sleep(3)  # 3 s cut off, sampled: the old leader stays a standby
            hosts.net.heal(old)
            time.sleep(3)  # 3 s healed, sampled: still one leader
        finally:
            stop.set()
            t.join(10)
    assert new in hosts.leading_marathons()
    assert all(len(s) <= 1 for s in leaders.samples), [s for s in leaders.samples if len(s) > 1]
    assert len(client.acked) > 20
    assert lost_changes(client) == []


def test_skewed_clocks_on_an_agent_and_the_masters_change_nothing(hosts):
    """Wall time crosses hosts in status timestamps and the registry; an agent restarted an
    hour ahead recovers its task, masters restarted one by one an hour behind (failovers
    among them) keep everything."""
    client = MarathonClient(hosts)
    app = _deploy(client, dict(WEB, id="/skew", instances=2))
    before = {t["id"] for t in app["tasks"]}
    victim = hosts.agent_of_ip(app["tasks"][0]["host"])
    assert victim is not None
    hosts.skew_clock(victim, 3600)
    for m in hosts.master_hosts:  # one at a time, so that a quorum always runs
        hosts.skew_clock(m, -3600)
        wait_for(hosts.leading_masters, 60, 0.2, "a leading master")
    wait_for(lambda: (a := client.app("/skew")) and converged(a)
             and {t["id"] for t in a["tasks"]} == before, 90, 0.3,
             "the same tasks running and healthy")
    assert client.change("PUT", "/v2/apps/skew?force=true", "/skew", {"instances": 4})
    final = wait_for(lambda: (a := client.app("/skew")) and converged(a) and a, 90, 0.3,
                     "the app scaled to four")
    assert {t["id"] for t in final["tasks"]} == set(running_on_agents(hosts))
    wait_for(lambda: not books_unbalanced(hosts), 30, 0.5, "the master's books balanced")
