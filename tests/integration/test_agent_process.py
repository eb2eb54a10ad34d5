"""The real `python -m mesos_agent` process against the tests' fake master (tests/fake_master.py:
`/master/info` and a ZeroMQ ROUTER on free ports, on its own loop in a thread), which
heartbeats every agent it has heard from and hands everything it receives to the test. Every
process (agent and tasks) is stopped by pid / process group in fixture finalizers.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mesos_common import codec, launch_log
from mesos_common import task_states as ts
from mesos_common.daemons import sweep_agent
from mesos_common.messages import (
    AgentRegistered,
    AgentReregistered,
    CommandInfo,
    FrameworkInfo,
    Heartbeat,
    KillTask,
    RegisterAgent,
    ReregisterAgent,
    RunTask,
    TaskInfo,
    TaskStatus,
)
from mesos_common.resources import Resources
from tests.fake_master import FakeMaster
from tests.helpers import group_members
from tests.helpers import wait_for as wait_until

ROOT = Path(__file__).resolve().parents[2]
HB = 1.0
FW = FrameworkInfo(name="fw", id="F1", user="root")


class AgentProcess:
    """`python -m mesos_agent` in its own session; stdout lines collected by a thread."""

    def __init__(self, master: FakeMaster, work_dir: Path, extra: tuple[str, ...] = ()) -> None:
        self.work_dir = work_dir
        self.lines: queue.Queue[str] = queue.Queue()
        self.log = open(work_dir.parent / "agent.log", "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mesos_agent", f"--master=127.0.0.1:{master.http_port}",
             f"--work_dir={work_dir}", "--port=0", "--ip=127.0.0.1", "--log_level=DEBUG",
             "--resources=cpus:2;mem:1024;disk:2048;ports:[31000-31009]",
             "--attributes=rack:r1;level:2", "--registration_backoff_factor=200ms",
             # the fake master leaves updates unacknowledged on purpose: resends in
             # seconds (2 s .. 1 min, the agent's old values), not Mesos's 10 s .. 10 min
             "--status_update_retry_interval_min=2secs",
             "--status_update_retry_interval_max=1mins", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
            text=True, start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()
        ready = self.line("mesos-agent: listening")
        self.http = ready.split("http=")[1].split()[0]

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def line(self, prefix: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"agent exited with {self.proc.returncode}"
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no stdout line {prefix!r} within {timeout}s")

    def get(self, endpoint: str, **params: Any) -> requests.Response:
        return requests.get(f"{self.http}{endpoint}", params=params, timeout=5)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode

    def kill_everything(self) -> None:
        """Finalizer: the agent's group, then every task group in its launch log, then
        the agent's cgroups (a kill -9ed agent leaves them)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(5)
        sweep_agent(self.work_dir)
        self.log.close()


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    m = FakeMaster(ping_every=HB).start()
    yield m
    m.stop()


@pytest.fixture
def agent_factory(master: FakeMaster, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(*extra: str) -> AgentProcess:
        a = AgentProcess(master, tmp_path / "work", extra)
        started.append(a)
        return a

    yield start
    for a in reversed(started):  # the live one first: its cgroups go once it is dead
        a.kill_everything()


def register(master: FakeMaster, agent: AgentProcess) -> RegisterAgent:
    reg = master.expect(RegisterAgent)
    master.send(AgentRegistered("A1", "M1", HB))
    assert agent.line("mesos-agent: registered") == "mesos-agent: registered id=A1 master=M1"
    return reg


def run_task(master: FakeMaster, task_id: str, command: str, **kw: Any) -> None:
    master.send(RunTask(FW, TaskInfo(name=task_id, task_id=task_id, agent_id="A1",
                                     resources=Resources.parse("cpus:0.1;mem:32"),
                                     command=CommandInfo(command), **kw)))


def expect_states(master: FakeMaster, task_id: str, states: list[str]) -> list[TaskStatus]:
    """Receive and ack `states` for the task, in this order."""
    out = []
    for state in states:
        st = master.update(task_id)
        assert st.state == state, (st.state, st.message)
        assert st.agent_id == "A1" and st.uuid
        master.ack(st)
        out.append(st)
    return out


def task_json(agent: AgentProcess, task_id: str) -> dict[str, Any]:
    state = agent.get("/state").json()
    for fw in state["frameworks"] + state["completed_frameworks"]:
        for t in fw["tasks"] + fw["completed_tasks"]:
            if t["id"] == task_id:
                return t
    raise AssertionError(f"task {task_id} not in /state")


def test_agent_against_a_fake_master(master: FakeMaster,
                                     agent_factory: Callable[[], AgentProcess]) -> None:
    agent = agent_factory()
    reg = register(master, agent)
    info = reg.agent_info
    assert info.port == int(agent.http.rsplit(":", 1)[1]) and info.hostname == "127.0.0.1"
    assert info.resources == Resources.parse("cpus:2;mem:1024;disk:2048;ports:[31000-31009]")
    assert info.attributes == {"rack": "r1", "level": 2.0}
    assert agent.get("/health").status_code == 200
    state = agent.get("/state").json()
    assert state["id"] == "A1" and state["resources"]["cpus"] == 2.0

    master.send_raw(b"\x93garbage")  # undecodable: logged, never fatal
    master.send_raw(codec.encode(Heartbeat())[:-1] + b"\x02")

    # echo hi: STARTING is resent until acked (after 2 s: the fixture's agents retry from
    # 2 s, not Mesos's 10 s), then RUNNING and FINISHED in order
    run_task(master, "t1", "echo hi")
    first = master.update("t1")
    assert first.state == ts.STARTING
    again = master.update("t1", timeout=10)
    assert (again.state, again.uuid) == (ts.STARTING, first.uuid)
    master.ack(first)
    running, finished = expect_states(master, "t1", [ts.RUNNING, ts.FINISHED])
    assert len({first.uuid, running.uuid, finished.uuid}) == 3
    assert finished.message == "Command exited with status 0"
    directory = task_json(agent, "t1")["directory"]
    assert "/slaves/A1/frameworks/F1/executors/t1/runs/" in directory
    r = agent.get("/files/read", path=f"{directory}/stdout", offset=0)
    assert r.status_code == 200 and r.json() == {"data": "hi\n", "offset": 0}
    assert agent.get("/files/read", path="/etc/passwd", offset=0).status_code == 403

    # a failing command
    run_task(master, "t2", "exit 3")
    *_, failed = expect_states(master, "t2", [ts.STARTING, ts.RUNNING, ts.FAILED])
    assert failed.message == "Command exited with status 3"

    # a long task survives a master restart and is re-registered with the agent's id
    run_task(master, "t3", "sleep 300 & (sleep 301 & wait) & wait", kill_grace_period=5.0)
    expect_states(master, "t3", [ts.STARTING, ts.RUNNING])
    pid = task_json(agent, "t3")["pid"]
    wait_until(lambda: len(group_members(pid)) >= 4)
    master.restart_socket("M2")
    rereg = master.expect(ReregisterAgent, timeout=20)
    assert rereg.agent_id == "A1" and rereg.frameworks == (FW,)
    assert [(r.task.task_id, r.state) for r in rereg.tasks] == [("t3", ts.RUNNING)]
    master.send(AgentReregistered("A1", "M2", HB))
    wait_until(lambda: agent.get("/state").json()["master_id"] == "M2")

    # KillTask: TASK_KILLED and the whole process group gone
    master.send(KillTask("F1", "t3"))
    [killed] = expect_states(master, "t3", [ts.KILLED])
    assert killed.message == "Command terminated by signal SIGTERM"
    wait_until(lambda: group_members(pid) == [])

    # unknown task
    master.send(KillTask("F1", "nope"))
    [lost] = expect_states(master, "nope", [ts.LOST])
    assert lost.message == "Cannot find task"

    assert agent.stop() == 0


def test_sigterm_kills_every_task_and_exits(master: FakeMaster,
                                            agent_factory: Callable[[], AgentProcess]) -> None:
    agent = agent_factory()
    register(master, agent)
    run_task(master, "t1", "sleep 300 & (sleep 301 & wait) & wait")
    expect_states(master, "t1", [ts.STARTING, ts.RUNNING])
    pid = task_json(agent, "t1")["pid"]
    wait_until(lambda: len(group_members(pid)) >= 4)
    assert launch_log.task_pids(str(agent.work_dir)) == {"t1": pid}
    started = time.monotonic()
    assert agent.stop() == 0
    assert time.monotonic() - started < 10
    assert group_members(pid) == []
    assert launch_log.task_pids(str(agent.work_dir)) == {}
    st = master.update("t1", timeout=5)  # best effort on the way out
    assert st.state == ts.KILLED
