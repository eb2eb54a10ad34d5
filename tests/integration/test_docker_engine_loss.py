"""The agent's connection to the Docker engine breaks (as when the engine restarts) while a
container exits: once the engine is reachable again the agent lists its containers and
reports the exit it did not hear about, and goes on with the others. The engine itself is
not touched: the agent reaches it through a unix-socket proxy that the test kills."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import docker
import pytest

from mesos_common import task_states as ts
from mesos_common.messages import KillTask, RunTask
from tests.helpers import wait_for
from tests.integration.test_agent_docker import client, docker_task, ours  # noqa: F401
from tests.integration.test_agent_process import (FW, ROOT, AgentProcess,  # noqa: F401
                                                  FakeMaster, agent_factory, expect_states,
                                                  master, register)

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
