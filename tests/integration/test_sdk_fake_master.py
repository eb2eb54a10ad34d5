"""The scheduler SDK against a fake master speaking the real wire protocol.

The fake master (written here, not the real one) serves `/master/info` over aiohttp and a
ZeroMQ ROUTER with `mesos_common.codec`, in its own thread and event loop, and records every
message it receives. The real threaded SchedulerDriver and the example CLIs (as real
subprocesses) talk to it over loopback.

Ports: each test holds its listening sockets (bound to port 0) for its whole life and every
fake master serves on duplicates of them, so a restarted master gets the same port without
binding it again. Picking a free port, releasing it and binding it later (once per master
incarnation) let another bind to port 0 take it in between, e.g. the restarted master's own
ZeroMQ socket or another xdist worker (create_server failed with EADDRINUSE).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import zmq
from aiohttp import web

from frameworks.scheduler import DRIVER_STOPPED, Scheduler, SchedulerDriver, make_task
from mesos_common import messages as m
from mesos_common.resources import Resources
from mesos_common.transport import RouterTransport
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
HB = 0.25


class FakeMaster:
    """Subscribes any framework, offers `agents` once per subscription, answers heartbeats
    (ProtocolError for peers it does not know, like a restarted master) and, with
    `run_tasks`, plays the agent: RUNNING then FINISHED (or FAILED for `exit N`)."""

    def __init__(self, http: socket.socket, zmq_listener: socket.socket | None,
                 master_id: str = "master-1", agents: dict[str, str] | None = None,
                 run_tasks: bool = False) -> None:
        """`http`, `zmq_listener`: listening sockets the test holds (see the module
        docstring); `zmq_listener=None` binds a new ZeroMQ port (a master that moved)."""
        self.http, self.zmq_listener, self.master_id = http, zmq_listener, master_id
        self.http_port = http.getsockname()[1]
        self.agents = agents or {}
        self.run_tasks = run_tasks
        self.received: list[tuple[bytes, Any]] = []
        self.frameworks: dict[bytes, str] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._router: RouterTransport | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"fake-{master_id}", daemon=True)

    # ------------------------------------------------------------ test side

    def start(self) -> "FakeMaster":
        self._thread.start()
        assert self._ready.wait(10), "fake master did not start"
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def send(self, peer: bytes, msg: Any) -> None:
        assert self._loop is not None and self._router is not None
        self._loop.call_soon_threadsafe(self._router.send, peer, msg)

    def of(self, cls: type) -> list[Any]:
        return [msg for _, msg in list(self.received) if isinstance(msg, cls)]

    # ------------------------------------------------------------ master side

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._router = RouterTransport()
        runner: web.AppRunner | None = None
        try:
            port = 0
            if self.zmq_listener is not None:  # libzmq takes (and closes) a dup of it
                self._router.sock.setsockopt(zmq.USE_FD, self.zmq_listener.dup().detach())
                port = self.zmq_listener.getsockname()[1]
            endpoint = self._router.bind(f"tcp://127.0.0.1:{port}")
            info = {"id": self.master_id, "hostname": "localhost", "ip": "127.0.0.1",
                    "port": self.http_port, "zmq_endpoint": endpoint, "version": "fake"}
            app = web.Application()
            app.router.add_get("/master/info", lambda _req: web.json_response(info))
            runner = web.AppRunner(app)
            await runner.setup()
            await web.SockSite(runner, self.http.dup()).start()
            async with asyncio.TaskGroup() as tg:
                recv = tg.create_task(self._recv_loop(tg))
                self._ready.set()
                await self._stop.wait()
                recv.cancel()
        finally:
            self._router.close()
            if runner is not None:
                await runner.cleanup()

    async def _recv_loop(self, tg: asyncio.TaskGroup) -> None:
        assert self._router is not None
        while True:
            peer, msg = await self._router.recv()
            self.received.append((peer, msg))
            if isinstance(msg, m.Subscribe):
                self._subscribe(peer, msg)
            elif isinstance(msg, m.Heartbeat):
                self._router.send(peer, m.Heartbeat() if peer in self.frameworks else
                                  m.ProtocolError("framework is not subscribed", "Heartbeat"))
            elif isinstance(msg, m.Accept) and self.run_tasks:
                for op in msg.operations:
                    for task in op.tasks:
                        tg.create_task(self._run_task(peer, task))

    def _subscribe(self, peer: bytes, msg: m.Subscribe) -> None:
        assert self._router is not None
        fid = msg.framework_info.id or f"fw-{next(self._ids)}"
        self.frameworks[peer] = fid
        self._router.send(peer, m.Subscribed(fid, self.master_id, HB))
        offers = tuple(m.Offer(f"{self.master_id}-o{next(self._ids)}", fid, agent, f"host-{agent}",
                               Resources.parse(res)) for agent, res in self.agents.items())
        if offers:
            self._router.send(peer, m.Offers(offers))

    async def _run_task(self, peer: bytes, task: m.TaskInfo) -> None:
        assert self._router is not None and task.command is not None
        fid = self.frameworks[peer]
        match = re.search(r"exit (\d+)", task.command.value)
        code = int(match.group(1)) if match else 0
        for state in ("TASK_RUNNING", "TASK_FINISHED" if code == 0 else "TASK_FAILED"):
            await asyncio.sleep(0.02)
            message = "" if state == "TASK_RUNNING" else f"Command exited with status {code}"
            status = m.TaskStatus(task.task_id, state, agent_id=task.agent_id, message=message,
                                  uuid=os.urandom(16))
            self._router.send(peer, m.Update(status, fid))


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@pytest.fixture
def ports() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(http, zmq) listening sockets on free ports, held until the test ends."""
    socks = (_listener(), _listener())
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture
def masters() -> Iterator[list[FakeMaster]]:
    started: list[FakeMaster] = []
    try:
        yield started
    finally:
        for fm in started:
            fm.stop()


class Recorder(Scheduler):
    """Launches one task on the first offer; holds status_update until `release` is set."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.in_callback = threading.Event()
        self.release = threading.Event()

    def registered(self, driver: Any, framework_id: str, master_info: dict) -> None:
        self.events.append(("registered", framework_id, master_info["id"]))

    def reregistered(self, driver: Any, master_info: dict) -> None:
        self.events.append(("reregistered", master_info["id"]))

    def disconnected(self, driver: Any) -> None:
        self.events.append(("disconnected",))

    def resource_offers(self, driver: Any, offers: list[m.Offer]) -> None:
        if any(e[0] == "launched" for e in self.events):
            driver.decline_offer(offers)
            return
        task = make_task("t1", offers[0], "sleep 1", cpus=0.5, mem=64, ports=1)
        driver.launch_tasks(offers[0].id, [task])
        self.events.append(("launched", offers[0].id))

    def status_update(self, driver: Any, status: m.TaskStatus) -> None:
        self.in_callback.set()
        self.release.wait(10)
        self.events.append(("status", status.task_id, status.state))


@pytest.mark.parametrize("same_zmq_port", [True, False], ids=["forgotten", "silent"])
def test_driver_subscribes_launches_acks_heartbeats_and_resubscribes(
        ports: tuple[socket.socket, socket.socket], masters: list[FakeMaster],
        same_zmq_port: bool) -> None:
    http, zmq_listener = ports
    agents = {"agent-1": "cpus:2;mem:1024;ports:[31000-31010]"}
    fm = FakeMaster(http, zmq_listener, "master-1", agents)
    masters.append(fm.start())
    sched = Recorder()
    driver = SchedulerDriver(sched, m.FrameworkInfo(name="it", user="tester"),
                             f"127.0.0.1:{fm.http_port}")
    try:
        driver.start()
        wait_for(lambda: fm.of(m.Accept), what="Accept")
        assert sched.events[0] == ("registered", "fw-1", "master-1")
        (accept,) = fm.of(m.Accept)
        (task,) = accept.operations[0].tasks
        assert accept.framework_id == "fw-1" and accept.offer_ids == (sched.events[1][1],)
        assert task.resources == Resources.parse("cpus:0.5;mem:64;ports:[31000-31000]")
        assert fm.of(m.Subscribe)[0].framework_info == m.FrameworkInfo(name="it", user="tester")

        # implicit acknowledgement: only once the callback has returned
        peer = next(iter(fm.frameworks))
        fm.send(peer, m.Update(m.TaskStatus("t1", "TASK_RUNNING", agent_id="agent-1",
                                            uuid=b"\x01" * 16), "fw-1"))
        assert sched.in_callback.wait(10)
        time.sleep(0.2)  # 0.2 s inside the callback: no Acknowledge may go out before it returns
        assert fm.of(m.Acknowledge) == []
        sched.release.set()
        wait_for(lambda: fm.of(m.Acknowledge), what="Acknowledge")
        assert fm.of(m.Acknowledge) == [m.Acknowledge("fw-1", "agent-1", "t1", b"\x01" * 16)]
        assert ("status", "t1", "TASK_RUNNING") in sched.events

        # heartbeats every HB seconds
        n = len(fm.of(m.Heartbeat))
        wait_for(lambda: len(fm.of(m.Heartbeat)) >= n + 3, timeout=5, what="heartbeats")

        # restart the master: it has forgotten us (same endpoint) or moved (new endpoint)
        fm.stop()
        with pytest.raises(OSError):  # the port stays ours between incarnations
            socket.create_server(("127.0.0.1", fm.http_port)).close()
        if not same_zmq_port:
            zmq_listener.close()  # the old endpoint refuses connections, as a moved master's
        fm2 = FakeMaster(http, zmq_listener if same_zmq_port else None, "master-2", agents)
        masters.append(fm2.start())
        sub = wait_for(lambda: fm2.of(m.Subscribe), timeout=15, what="re-subscription")[0]
        assert sub.framework_info.id == "fw-1"
        wait_for(lambda: ("reregistered", "master-2") in sched.events, what="reregistered")
        assert sched.events.index(("disconnected",)) < sched.events.index(
            ("reregistered", "master-2"))
        assert driver.framework_id == "fw-1"
        wait_for(lambda: fm2.of(m.Decline), what="Decline of the new master's offer")
    finally:
        sched.release.set()
        status = driver.stop()
    assert status == DRIVER_STOPPED
    wait_for(lambda: masters[-1].of(m.Teardown), what="Teardown")
    assert masters[-1].of(m.Teardown) == [m.Teardown("fw-1")]


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Run an example CLI as a real subprocess; whatever is still running is killed."""
    procs: list[subprocess.Popen[str]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOS_")}
    env["PYTHONPATH"] = str(REPO)

    def run(module: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    try:
        yield run
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def test_batch_cli_packs_three_tasks_over_two_agents(
        ports: tuple[socket.socket, socket.socket], masters: list[FakeMaster],
        cli: Callable[..., Any]) -> None:
    fm = FakeMaster(*ports, agents={"agent-a": "cpus:0.2;mem:64",
                                                 "agent-b": "cpus:4;mem:4096"}, run_tasks=True)
    masters.append(fm.start())
    res = cli("frameworks.examples.batch", f"--master=127.0.0.1:{fm.http_port}",
              "--tasks=3", "--command=echo $TASK_INDEX", "--name=batch-it")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 4, res.stdout
    assert all(re.fullmatch(r"Task 'task-\d' TASK_FINISHED on agent 'agent-[ab]': "
                            r"Command exited with status 0", ln) for ln in lines[:3]), lines
    assert json.loads(lines[3]) == {
        "finished": 3, "failed": 0, "by_agent": {"agent-a": 2, "agent-b": 1},
        "tasks": {f"task-{i}": "TASK_FINISHED" for i in range(3)}}
    (accept_a, accept_b) = fm.of(m.Accept)
    assert [t.task_id for t in accept_a.operations[0].tasks] == ["task-0", "task-1"]
    assert [t.command.environment["TASK_INDEX"] for t in accept_b.operations[0].tasks] == ["2"]
    assert fm.of(m.Subscribe)[0].framework_info.name == "batch-it"
    assert len(fm.of(m.Acknowledge)) == 6 and fm.of(m.Suppress)
    wait_for(lambda: fm.of(m.Teardown), what="Teardown")


def test_batch_cli_exits_1_when_a_task_fails(
        ports: tuple[socket.socket, socket.socket], masters: list[FakeMaster],
        cli: Callable[..., Any], tmp_path: Path) -> None:
    fm = FakeMaster(*ports, agents={"agent-a": "cpus:1;mem:256"}, run_tasks=True)
    masters.append(fm.start())
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("# one fails\ntrue\nexit 3\n")
    res = cli("frameworks.examples.batch", f"--master=127.0.0.1:{fm.http_port}",
              f"--commands_file={jobs}")
    assert res.returncode == 1, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["finished"] == 1 and summary["failed"] == 1
    assert summary["tasks"] == {"task-0": "TASK_FINISHED", "task-1": "TASK_FAILED"}


def test_execute_cli_exits_with_the_task_status(
        ports: tuple[socket.socket, socket.socket], masters: list[FakeMaster],
        cli: Callable[..., Any]) -> None:
    fm = FakeMaster(*ports, agents={"agent-a": "cpus:1;mem:256"}, run_tasks=True)
    masters.append(fm.start())
    res = cli("frameworks.examples.execute", f"--master=127.0.0.1:{fm.http_port}",
              "--name=hello", "--command=exit 3", '--env={"A": "1"}')
    assert res.returncode == 3, res.stderr
    assert res.stdout.splitlines() == [
        "Subscribed with ID fw-1", "Submitted task 'hello' to agent 'agent-a'",
        "Received status update TASK_RUNNING for task 'hello'", "  source: SOURCE_EXECUTOR",
        "Received status update TASK_FAILED for task 'hello'",
        "  message: 'Command exited with status 3'", "  source: SOURCE_EXECUTOR"]
    (accept,) = fm.of(m.Accept)
    assert accept.operations[0].tasks[0].command.environment == {"A": "1"}
    wait_for(lambda: fm.of(m.Teardown), what="Teardown")
