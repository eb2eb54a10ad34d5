"""The real `python -m mesos_agent` process against a tiny fake master written here.

The fake master is an aiohttp app serving `/master/info` plus a ZeroMQ ROUTER, both on free
ports, run on an asyncio loop in a thread; it heartbeats every agent it has heard from and
hands everything it receives to the test through a queue. Every process (agent and tasks)
is stopped by pid / process group in fixture finalizers.
"""
from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
import zmq.asyncio
from aiohttp import web

from mesos_common import codec, launch_log
from mesos_common import task_states as ts
from mesos_common.messages import (AgentRegistered, AgentReregistered, CommandInfo,
                                   FrameworkInfo, Heartbeat, KillTask, RegisterAgent,
                                   ReregisterAgent, RunTask, StatusUpdate, StatusUpdateAck,
                                   TaskInfo, TaskStatus)
from mesos_common.daemons import sweep_agent
from mesos_common.resources import Resources
from mesos_common.transport import RouterTransport
from tests.helpers import group_members, wait_for as wait_until

ROOT = Path(__file__).resolve().parents[2]
HB = 1.0
FW = FrameworkInfo(name="fw", id="F1", user="root")


class FakeMaster:
    """Just enough master: tells its endpoint, heartbeats, records what agents send."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.inbox: queue.Queue[tuple[bytes, Any]] = queue.Queue()
        self.ctx = zmq.asyncio.Context()
        self.peers: set[bytes] = set()
        self.router: RouterTransport | None = None
        self.endpoint = ""
        self.http_port = 0
        self.master_id = "M1"
        self._tasks: list[asyncio.Task] = []

    # -- control from the test thread
    def start(self) -> None:
        self.thread.start()
        self._call(self._start())

    def restart_socket(self, master_id: str) -> None:
        """Close the ROUTER (agents lose us), bind a new one on a new port, forget peers."""
        self._call(self._restart(master_id))

    def forget_peers(self) -> None:
        """Drop known connections (the agent process died; its successor connects anew)."""
        self._call(self._forget())

    async def _forget(self) -> None:
        self.peers.clear()

    def send(self, msg: Any) -> None:
        self.send_raw(codec.encode(msg))

    def send_raw(self, body: bytes) -> None:
        assert len(self.peers) == 1, self.peers
        peer = next(iter(self.peers))
        self.loop.call_soon_threadsafe(lambda: self.router.send_raw(peer, body))  # type: ignore

    def expect(self, cls: type, timeout: float = 15.0,
               pred: Callable[[Any], bool] = lambda m: True) -> Any:
        """The next message of type `cls` matching `pred`; heartbeats and others skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {cls.__name__} within {timeout}s")
            try:
                _, msg = self.inbox.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(msg, cls) and pred(msg):
                return msg

    def update(self, task_id: str, timeout: float = 15.0) -> TaskStatus:
        upd = self.expect(StatusUpdate, timeout, lambda m: m.status.task_id == task_id)
        assert upd.framework_id == "F1"
        return upd.status

    def ack(self, status: TaskStatus) -> None:
        self.send(StatusUpdateAck("F1", "A1", status.task_id, status.uuid))

    def stop(self) -> None:
        try:
            self._call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.ctx.term()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    # -- on the fake master's loop
    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/master/info", self._info)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.http_port = self.runner.addresses[0][1]
        self._bind()
        self._tasks.append(asyncio.ensure_future(self._heartbeats()))

    def _bind(self) -> None:
        self.router = RouterTransport(self.ctx)
        self.endpoint = self.router.bind("tcp://127.0.0.1:0")
        self._tasks.append(asyncio.ensure_future(self._receive(self.router)))

    async def _receive(self, router: RouterTransport) -> None:
        while True:
            peer, msg = await router.recv()
            self.peers.add(peer)
            self.inbox.put((peer, msg))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HB)
            for peer in list(self.peers):
                assert self.router is not None
                self.router.send(peer, Heartbeat())

    async def _restart(self, master_id: str) -> None:
        self._tasks.pop().cancel()  # the receive loop of the old socket
        assert self.router is not None
        # What was sent before the restart (the test's last acks) still reaches the agent:
        # with linger 0 an ack libzmq had not written yet was dropped, and the agent rightly
        # resent that update after re-registering - not what the test checks.
        self.router.close(linger_ms=2000)
        self.peers.clear()
        self.master_id = master_id
        self._bind()

    async def _info(self, _: web.Request) -> web.Response:
        return web.json_response({"id": self.master_id, "hostname": "localhost",
                                  "ip": "127.0.0.1", "port": self.http_port,
                                  "zmq_endpoint": self.endpoint, "version": "test"})

    async def _stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.router is not None:
            self.router.close()
        await self.runner.cleanup()


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
    m = FakeMaster()
    m.start()
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
