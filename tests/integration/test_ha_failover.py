"""HA master end to end: a real private ZooKeeper, 3 masters, 3 agents, the real SDK.

kill -9 of the leader (10 times in a row), a leader cut off from ZooKeeper, and framework
failover within and past its failover_timeout.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from functools import partial
from pathlib import Path

import psutil
import pytest

from frameworks.scheduler import SchedulerDriver
from mesos_common import launch_log
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.daemons import Daemon
from mesos_master.ha_local import HaCluster
from tests.helpers import TaskHolder, http_json, wait_for

pytestmark = pytest.mark.slow

SMALL = "cpus:1;mem:512;disk:512;ports:[31000-31010]"
SESSION = 2.0
MASTER_FLAGS = ("--agent_ping_timeout=0.5secs", "--max_agent_ping_timeouts=6",
                "--allocation_interval=100ms", "--agent_reregister_timeout=20secs")


class Holder(TaskHolder):
    """TaskHolder that also records which masters it (re)registered with."""

    def __init__(self, count: int) -> None:
        super().__init__(count, "sleep 600")
        self.masters: list[str] = []

    def registered(self, driver, framework_id, master_info):
        self.masters.append(master_info.get("id", ""))

    def reregistered(self, driver, master_info):
        self.masters.append(master_info.get("id", ""))

    def agent_lost(self, driver, agent_id):
        """Tasks on a lost agent: ask the master what it knows (explicit reconciliation)."""
        driver.reconcile_tasks([m.ReconcileTask(t, a) for t, a in self.launched.items()
                                if a == agent_id])

    def all_running(self) -> bool:
        s = self.states()
        return len(s) == self.count and all(v == ts.RUNNING for v in s.values())


def task_pids(cluster: HaCluster) -> dict[str, int]:
    """task id -> process-group id, from the agents' launch logs."""
    out = {}
    for work in cluster.agent_dirs:
        out.update(launch_log.task_pids(str(work)))
    return out


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def settled(cluster: HaCluster, fw_id: str, tasks: int, not_id: str | None = None):
    """The leader's state once all 3 agents and the framework are back with every task."""
    found = cluster.leader()
    if found is None or found[1].field("id") == not_id:
        return None
    state = http_json(f"http://{cluster.http_of(found[1])}/master/state")
    agents = [a for a in state["slaves"] if a["active"]]
    fws = [f for f in state["frameworks"] if f["id"] == fw_id and f["active"]]
    if len(agents) != len(cluster.agents) or not fws:
        return None
    running = [t for t in fws[0]["tasks"] if t["state"] == ts.RUNNING]
    return (found, state) if len(running) == tasks else None


@pytest.fixture
def ha(zookeeper, tmp_path: Path):
    cluster = HaCluster(tmp_path, zookeeper.url(), session_timeout=SESSION, quorum=2,
                        master_flags=MASTER_FLAGS)
    try:
        yield cluster
    finally:
        cluster.stop()


def assert_history_clean(sched: Holder) -> None:
    """Per task: the states seen only move forward; after RUNNING nothing but RUNNING."""
    by_task: dict[str, list[str]] = {}
    for u in sched.updates:
        by_task.setdefault(u.task_id, []).append(u.state)
    assert set(by_task) == set(sched.launched)
    for task, states in by_task.items():
        assert states[-1] == ts.RUNNING, (task, states)
        first = states.index(ts.RUNNING)
        assert set(states[first:]) == {ts.RUNNING}, (task, states)
        assert set(states) <= {ts.STAGING, ts.STARTING, ts.RUNNING}, (task, states)


def test_kill_leader_ten_times_tasks_keep_running(ha: HaCluster):
    for _ in range(3):
        ha.start_master()
    for _ in range(3):
        ha.start_agent(SMALL)
    sched = Holder(count=6)
    info = m.FrameworkInfo(name="holder", failover_timeout=120.0)
    driver = SchedulerDriver(sched, info, ha.zk_url)
    driver.start()
    try:
        wait_for(sched.all_running, 60, what="6 running tasks")
        fw_id = driver.framework_id
        assert fw_id is not None
        pids = wait_for(lambda: (p := task_pids(ha)) and len(p) == 6 and p, 10, what="pids")
        for round_ in range(10):
            slot, old = wait_for(lambda: settled(ha, fw_id, 6), 30,
                                 what=f"a settled cluster before kill {round_}")[0]
            old_id = old.field("id")
            ha.kill9(slot)
            (new_slot, new), state = wait_for(partial(settled, ha, fw_id, 6, not_id=old_id),
                                              30, what=f"failover {round_}")
            assert new_slot != slot
            assert state["id"] == new.field("id") != old_id
            ha.start_master(slot)  # back as a standby for the next round
            assert task_pids(ha) == pids
            assert all(alive(p) for p in pids.values())
            assert sched.all_running(), sched.states()
            new_id = new.field("id")

            def with_new_leader(new_id: str = new_id) -> bool:
                return bool(sched.masters) and sched.masters[-1] == new_id
            wait_for(with_new_leader, 15, what="the framework re-registered with the new leader")
        # reconciliation with the last leader: explicit (listed) and implicit (empty)
        before = len(sched.updates)
        driver.reconcile_tasks(["t0", "t5"])
        driver.reconcile_tasks([])
        wait_for(lambda: len(sched.updates) >= before + 2 + 6, 15, what="reconciliation")
        answers = sched.updates[before:]
        assert {u.task_id for u in answers} == set(sched.launched)
        assert all(u.state == ts.RUNNING for u in answers)
        assert_history_clean(sched)
    finally:
        driver.abort()


class Proxy:
    """A TCP relay to ZooKeeper that a test can cut: the master behind it loses its session."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = []
        self.cut_ = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_:
                client.close()
                return
            upstream = socket.create_connection(self.target)
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.cut_ = True
        self.listener.close()
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def test_leader_cut_from_zookeeper_stops_and_another_takes_over(ha: HaCluster, zookeeper):
    ha.quorum = 1  # two masters: the survivor must be able to lead alone
    proxy = Proxy(("127.0.0.1", zookeeper.port))
    try:
        first = ha.start_master(zk_url=f"zk://127.0.0.1:{proxy.port}/corral")
        ha.start_master()
        ha.start_agent(SMALL)
        ha.start_agent(SMALL)
        ha.start_agent(SMALL)
        sched = Holder(count=3)
        driver = SchedulerDriver(sched, m.FrameworkInfo(name="h", failover_timeout=60.0),
                                 ha.zk_url)
        driver.start()
        try:
            wait_for(sched.all_running, 60, what="3 running tasks")
            fw_id = driver.framework_id
            assert fw_id is not None
            (slot, leader), _ = wait_for(lambda: settled(ha, fw_id, 3), 30, what="settled")
            assert leader is first
            pids = task_pids(ha)
            cut_at = time.monotonic()
            proxy.cut()
            # fenced at once (no offers, no registry writes), gone once the session is over
            wait_for(lambda: not first.alive(), SESSION + 3, what="the cut-off leader exits")
            assert time.monotonic() - cut_at <= SESSION + 3
            assert first.proc.returncode == 1
            log = first.log_path.read_text()
            assert "fenced" in log and "lost leadership" in log
            (_, new), _ = wait_for(lambda: settled(ha, fw_id, 3, not_id=first.field("id")), 30,
                                   what="the other master leads")
            assert task_pids(ha) == pids and all(alive(p) for p in pids.values())
            assert_history_clean(sched)
        finally:
            driver.abort()
    finally:
        proxy.cut()


def test_framework_failover_within_and_past_failover_timeout(ha: HaCluster):
    ha.quorum = 1
    ha.start_master()
    ha.start_master()
    ha.start_agent(SMALL)
    sched = Holder(count=2)
    info = m.FrameworkInfo(name="fo", failover_timeout=4.0)
    driver = SchedulerDriver(sched, info, ha.zk_url)
    driver.start()
    wait_for(sched.all_running, 60, what="2 running tasks")
    fw_id = driver.framework_id
    assert fw_id is not None
    pids = wait_for(lambda: (p := task_pids(ha)) and len(p) == 2 and p, 10, what="pids")
    driver.stop(failover=True)  # the process "dies" without tearing the framework down

    # back within the failover timeout, with the same id: the tasks are still ours
    again = Holder(count=2)
    again.launched = dict(sched.launched)
    d2 = SchedulerDriver(again, m.FrameworkInfo(name="fo", id=fw_id, failover_timeout=4.0),
                         ha.zk_url)
    d2.start()
    try:
        wait_for(lambda: settled(ha, fw_id, 2), 20, what="the framework back with its tasks")
        wait_for(lambda: again.masters, 10, what="re-registered callback")
        assert d2.framework_id == fw_id
        d2.reconcile_tasks([])
        wait_for(again.all_running, 15, what="reconciled RUNNING")
        assert task_pids(ha) == pids and all(alive(p) for p in pids.values())
    finally:
        d2.stop(failover=True)
    # gone for longer than the timeout: torn down, its tasks killed
    wait_for(lambda: not any(alive(p) for p in pids.values()), 30,
             what="tasks killed after the failover timeout")
    found = wait_for(ha.leader, 10, what="leader")
    state = http_json(f"http://{ha.http_of(found[1])}/master/state")
    assert fw_id not in [f["id"] for f in state["frameworks"]]
    assert fw_id in [f["id"] for f in state["completed_frameworks"]]
    for p in pids.values():  # belt and braces: nothing left behind even if the assert failed
        if alive(p):
            os.killpg(p, signal.SIGKILL)


def test_batch_framework_over_zk_finishes_across_a_leader_kill(ha: HaCluster):
    import subprocess

    from mesos_common.daemons import python_module
    for _ in range(3):
        ha.start_master()
    for _ in range(3):
        ha.start_agent(SMALL)
    batch = subprocess.Popen(
        python_module("frameworks.examples.batch", f"--master={ha.zk_url}", "--tasks=12",
                      "--cpus=0.25", "--mem=16", "--command=sleep 6"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        def running() -> tuple[int, Daemon] | None:
            found = ha.leader()
            if found is None:
                return None
            state = http_json(f"http://{ha.http_of(found[1])}/master/state")
            return found if sum(1 for f in state["frameworks"] for t in f["tasks"]
                                if t["state"] == ts.RUNNING) == 12 else None
        slot, _ = wait_for(running, 60, what="12 running batch tasks")
        ha.kill9(slot)
        out, _ = batch.communicate(timeout=90)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
            batch.wait(10)
    summary = json.loads(out.strip().splitlines()[-1])
    assert batch.returncode == 0, out[-3000:]
    assert summary["finished"] == 12 and summary["failed"] == 0


def test_agent_not_back_after_failover_is_unreachable_and_its_tasks_reported(ha: HaCluster):
    ha.master_flags = MASTER_FLAGS + ("--agent_reregister_timeout=3secs",)
    for _ in range(3):
        ha.start_master()
    for _ in range(3):
        ha.start_agent(SMALL)
    sched = Holder(count=6)
    driver = SchedulerDriver(sched, m.FrameworkInfo(name="u", failover_timeout=60.0), ha.zk_url)
    driver.start()
    try:
        wait_for(sched.all_running, 60, what="6 running tasks")
        fw_id = driver.framework_id
        assert fw_id is not None
        (slot, leader), state = wait_for(lambda: settled(ha, fw_id, 6), 30, what="settled")
        victim_id = sorted(set(sched.launched.values()))[0]  # an agent that holds tasks
        victim = next(a for a in ha.agents
                      if http_json(f"{a.field('http')}/state")["id"] == victim_id)
        on_victim = {t for t, a in sched.launched.items() if a == victim_id}
        assert on_victim
        victim.kill9()  # the agent dies together with the leader
        ha.kill9(slot)
        wait_for(lambda: all(sched.states()[t] in (ts.LOST, ts.UNREACHABLE) for t in on_victim),
                 30, what="the missing agent's tasks reported")
        found = wait_for(ha.leader, 10, what="leader")
        state = http_json(f"http://{ha.http_of(found[1])}/master/state")
        metrics = http_json(f"http://{ha.http_of(found[1])}/metrics/snapshot")
        assert victim_id not in [a["id"] for a in state["slaves"]]
        assert metrics["master/slaves_unreachable"] == 1.0
        others = set(sched.launched) - on_victim
        assert all(sched.states()[t] == ts.RUNNING for t in others)
    finally:
        driver.abort()


def test_paused_zookeeper_fences_the_leader_and_a_standby_takes_over_after(ha: HaCluster,
                                                                          zookeeper):
    ha.quorum = 1
    first = ha.start_master()
    wait_for(lambda: ha.leader(), 30, what="a first leader")
    ha.start_master()
    agent = ha.start_agent(SMALL)
    wait_for(lambda: (f := ha.leader()) and f[1] is first and http_json(
        f"http://{ha.http_of(first)}/master/state")["slaves"], 30, what="agent registered")
    paused_at = time.monotonic()
    zookeeper.pause()
    try:
        wait_for(lambda: not first.alive(), SESSION + 4, what="the leader gives up")
        assert time.monotonic() - paused_at <= SESSION + 4
        assert first.proc.returncode == 1 and "fenced" in first.log_path.read_text()
    finally:
        zookeeper.resume()
    agent_id = http_json(f"{agent.field('http')}/state")["id"]
    found = wait_for(lambda: (f := ha.leader()) and f[1] is not first and f, 40,
                     what="the standby leads")
    wait_for(lambda: [a["id"] for a in http_json(
        f"http://{ha.http_of(found[1])}/master/state")["slaves"] if a["active"]] == [agent_id],
        30, what="the agent re-registered with its id")
