"""Containers outlive the agent's view of them: the connection to the Docker engine breaks (as
when the engine restarts) while a container exits, and once the engine is reachable again the
agent lists its containers and reports the exit it did not hear about (the engine itself is
not touched: the agent reaches it through a unix-socket proxy that the test kills); the agent
is killed -9 while a container writes, and the restarted agent goes on copying its output."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from mesos_common import task_states as ts
from mesos_common.messages import AgentReregistered, KillTask, ReregisterAgent, RunTask
from tests.helpers import wait_for
from tests.integration.test_agent_docker import docker_task
from tests.integration.test_agent_process import (
    FW,
    HB,
    ROOT,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
    task_json,
)

ENGINE = "/var/run/docker.sock"


class Proxy:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.unix_proxy", str(self.path), ENGINE],
            cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    p = Proxy(tmp_path / "engine.sock")
    p.start()
    yield p
    p.kill()


def test_an_exit_while_the_engine_is_unreachable_is_reported_when_it_is_back(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess], proxy: Proxy,
        ours: Callable[[], list[Any]], client: docker.DockerClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{proxy.path}")
    agent = agent_factory("--containerizers=mesos,docker")
    monkeypatch.delenv("DOCKER_HOST")
    register(master, agent)
    master.send(RunTask(FW, docker_task("short", "sleep 4")))
    master.send(RunTask(FW, docker_task("long", "sleep 300", kill_grace_period=1.0)))
    expect_states(master, "short", [ts.STARTING, ts.RUNNING])
    expect_states(master, "long", [ts.STARTING, ts.RUNNING])

    proxy.kill()  # the event stream breaks; reconnections fail while the proxy is down
    wait_for(lambda: [c.status for c in ours() if c.labels["io.corral.task_id"] == "short"]
             == ["exited"], 30, 0.3, "the short container exited")
    proxy.start()
    [finished] = expect_states(master, "short", [ts.FINISHED])
    assert finished.message == "Command exited with status 0"

    master.send(KillTask("F1", "long"))
    expect_states(master, "long", [ts.KILLED])
    wait_for(lambda: ours() == [], 30, 0.3, "containers removed")
    assert agent.stop() == 0


def test_output_copy_resumes_after_an_agent_restart(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        ours: Callable[[], list[Any]]) -> None:
    agent = agent_factory("--containerizers=mesos,docker")
    register(master, agent)
    master.send(RunTask(FW, docker_task(
        "talker", "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.2; done",
        kill_grace_period=1.0)))
    expect_states(master, "talker", [ts.STARTING, ts.RUNNING])
    stdout = Path(task_json(agent, "talker")["directory"]) / "stdout"

    def last() -> int:
        lines = stdout.read_text().split()
        return int(lines[-1][4:]) if lines else 0
    wait_for(lambda: last() >= 5, 30, 0.2, "output copied")
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(5)
    master.forget_peers()
    at_crash = last()

    agent = agent_factory("--containerizers=mesos,docker")
    assert master.expect(ReregisterAgent, timeout=30).agent_id == "A1"
    master.send(AgentReregistered("A1", "M1", HB))
    wait_for(lambda: last() >= at_crash + 10, 30, 0.2, "output copied again")
    numbers = [int(x[4:]) for x in stdout.read_text().split()]
    assert numbers == sorted(set(numbers)), "a line copied twice or out of order"
    master.send(KillTask("F1", "talker"))
    expect_states(master, "talker", [ts.KILLED])
    wait_for(lambda: ours() == [], 30, 0.3, "container removed")
    assert agent.stop() == 0
