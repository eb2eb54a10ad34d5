"""Checkpoint and recovery of process tasks: the real agent is kill -9ed and restarted.

Same fake master as test_agent_process. Every task process is killed by the fixtures'
finalizers (pid files under meta/), whatever happens.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Callable

import psutil

from frameworks.scheduler import SchedulerDriver
from mesos_common import task_states as ts
from mesos_common.messages import AgentReregistered, KillTask, ReregisterAgent, StatusUpdate
from tests.helpers import TaskHolder, http_json, wait_for
from tests.integration.test_agent_process import (
    HB,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
    run_task,
    task_json,
)
from tests.integration.test_cluster_e2e import SMALL

SLEEP = "sleep 300"


def _crash(master: FakeMaster, agent: AgentProcess) -> None:
    """kill -9 the agent process only (its tasks live in their own sessions)."""
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(5)
    master.forget_peers()


def _start_tasks(master: FakeMaster, agent: AgentProcess, n: int) -> dict[str, int]:
    pids = {}
    for i in range(n):
        run_task(master, f"p{i}", SLEEP, kill_grace_period=1.0)
        expect_states(master, f"p{i}", [ts.STARTING, ts.RUNNING])
        pids[f"p{i}"] = task_json(agent, f"p{i}")["pid"]
    return pids


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_reconnect_keeps_tasks_running_and_resends_updates(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess]) -> None:
    agent = agent_factory()
    register(master, agent)
    pids = _start_tasks(master, agent, 5)
    # t_unacked: its RUNNING is never acknowledged before the crash
    run_task(master, "t_unacked", SLEEP)
    expect_states(master, "t_unacked", [ts.STARTING])
    unacked = master.update("t_unacked")
    assert unacked.state == ts.RUNNING
    # t_dies: ends while the agent is down
    run_task(master, "t_dies", SLEEP)
    expect_states(master, "t_dies", [ts.STARTING, ts.RUNNING])
    dies_pid = task_json(agent, "t_dies")["pid"]

    _crash(master, agent)
    assert all(_alive(p) for p in pids.values())
    os.killpg(dies_pid, signal.SIGKILL)
    wait_for(lambda: not _alive(dies_pid), what="t_dies gone")

    agent = agent_factory()
    rereg = master.expect(ReregisterAgent, timeout=20)
    assert rereg.agent_id == "A1"
    states = {r.task.task_id: r.state for r in rereg.tasks}
    assert {k: states[k] for k in pids} == {k: ts.RUNNING for k in pids}
    assert states["t_unacked"] == ts.RUNNING
    master.send(AgentReregistered("A1", "M1", HB))
    assert agent.line("mesos-agent: registered") == "mesos-agent: registered id=A1 master=M1"

    # The unacked update comes again, same uuid; the death while down is reported.
    # (An ack still in flight at the crash makes that update come again too: at least once.)
    seen: dict = {}
    while "t_unacked" not in seen or not ts.is_terminal(seen.get("t_dies", unacked).state):
        st = master.expect(StatusUpdate).status
        assert st.state != ts.LOST, st
        seen.setdefault(st.task_id, st)
        if st.task_id == "t_dies":
            seen["t_dies"] = st
        master.ack(st)
    assert (seen["t_unacked"].state, seen["t_unacked"].uuid) == (ts.RUNNING, unacked.uuid)
    assert seen["t_dies"].state == ts.FAILED
    assert "while the agent was down" in seen["t_dies"].message

    for tid, pid in pids.items():  # same processes, still running, known to the agent
        assert _alive(pid) and task_json(agent, tid)["pid"] == pid
        assert task_json(agent, tid)["state"] == ts.RUNNING

    # A reattached task is killed as usual; its end is seen without being our child.
    master.send(KillTask("F1", "p0"))
    expect_states(master, "p0", [ts.KILLED])
    wait_for(lambda: not _alive(pids["p0"]), what="p0 gone")
    # ... and a reattached task that exits on its own is reported too
    os.killpg(pids["p1"], signal.SIGKILL)
    st = master.update("p1")
    assert st.state == ts.FAILED and st.state != ts.LOST
    master.ack(st)
    assert agent.stop() == 0
    assert not any(_alive(p) for p in pids.values())


def test_cleanup_kills_and_reports_every_task(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess]) -> None:
    agent = agent_factory()
    register(master, agent)
    pids = _start_tasks(master, agent, 5)
    _crash(master, agent)
    assert all(_alive(p) for p in pids.values())

    agent = agent_factory("--recover=cleanup")
    rereg = master.expect(ReregisterAgent, timeout=20)
    assert rereg.agent_id == "A1"
    master.send(AgentReregistered("A1", "M1", HB))
    ended: dict[str, str] = {}
    while len(ended) < len(pids):
        st = master.expect(StatusUpdate).status
        master.ack(st)
        if ts.is_terminal(st.state):
            ended[st.task_id] = st.state
    assert ended == {tid: ts.KILLED for tid in pids}
    wait_for(lambda: not any(_alive(p) for p in pids.values()), what="all tasks gone")
    assert agent.stop() == 0


def test_real_master_takes_back_a_restarted_agent_and_its_tasks(cluster) -> None:
    """kill -9 of a real agent under a real master and SDK framework, then a restart on the
    same work_dir: same agent id, same task processes, no TASK_LOST."""
    cluster.start_master("--allocation_interval=100ms")
    agent = cluster.start_agent(SMALL)
    cluster.wait_agents(1)
    sched = TaskHolder(count=3, command="sleep 300")
    driver = SchedulerDriver(sched, "holder", cluster.master_addr)
    driver.start()
    try:
        wait_for(lambda: len(sched.states()) == 3 and all(
            s == ts.RUNNING for s in sched.states().values()), 30, what="3 running tasks")
        before = http_json(f"{agent.field('http')}/state")
        pids = {t["id"]: t["pid"] for fw in before["frameworks"] for t in fw["tasks"]}
        agent.kill9()
        assert all(_alive(p) for p in pids.values())
        agent = cluster.start_agent(SMALL, index=0)
        after = wait_for(lambda: (s := http_json(f"{agent.field('http')}/state"))["state"]
                         == "RUNNING" and s, 30, what="the agent re-registered")
        assert after["id"] == before["id"]
        assert {t["id"]: t["pid"] for fw in after["frameworks"] for t in fw["tasks"]} == pids
        master = wait_for(lambda: (s := cluster.state()) and any(
            a["id"] == before["id"] and a["active"] for a in s["slaves"]) and s, 30,
            what="the master has the agent active")
        running = {t["id"] for fw in master["frameworks"] for t in fw["tasks"]
                   if t["state"] == ts.RUNNING}
        assert running == set(pids)
        assert all(_alive(p) for p in pids.values())
        assert not [u for u in sched.updates if u.state == ts.LOST]
    finally:
        driver.stop()
