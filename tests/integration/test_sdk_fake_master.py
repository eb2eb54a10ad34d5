"""The scheduler SDK against the tests' fake master (tests/fake_master.py), which speaks the
real wire protocol: the real threaded SchedulerDriver and the example CLIs (as real
subprocesses) talk to it over loopback.

Ports: each test holds its listening sockets (bound to port 0) for its whole life and every
fake master serves on duplicates of them, so a restarted master gets the same port.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frameworks.scheduler import DRIVER_STOPPED, Scheduler, SchedulerDriver, make_task
from mesos_common import messages as m
from mesos_common.resources import Resources
from tests.fake_master import FakeMaster
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
HB = 0.25


def framework_master(agents: dict[str, str]) -> dict[str, Any]:
    """A fake master that subscribes frameworks (heartbeats every HB) and offers `agents`."""
    return {"frameworks": True, "agents": agents, "heartbeat_interval": HB}


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
    fm = FakeMaster(http, zmq_listener, "master-1", **framework_master(agents))
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
        fm.send(m.Update(m.TaskStatus("t1", "TASK_RUNNING", agent_id="agent-1",
                                      uuid=b"\x01" * 16), "fw-1"), peer)
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
        fm2 = FakeMaster(http, zmq_listener if same_zmq_port else None, "master-2",
                         **framework_master(agents))
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
    fm = FakeMaster(*ports, **framework_master({"agent-a": "cpus:0.2;mem:64",
                                                "agent-b": "cpus:4;mem:4096"}), run_tasks=True)
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
    fm = FakeMaster(*ports, **framework_master({"agent-a": "cpus:1;mem:256"}), run_tasks=True)
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
    fm = FakeMaster(*ports, **framework_master({"agent-a": "cpus:1;mem:256"}), run_tasks=True)
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
