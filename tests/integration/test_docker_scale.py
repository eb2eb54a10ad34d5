"""The docker containerizer at scale and with a hung engine (real dockerd, real agent).

- One agent runs one Marathon app of 500 busybox containers, all RUNNING, while its thread
  count stays bounded (no thread per container); every container is removed afterwards.
- A launch while the engine is paused (SIGSTOP dockerd, a few seconds, always SIGCONTed)
  fails within the agent's --docker_api_timeout with a message, the agent keeps answering
  /state meanwhile, launches work again once the engine is back, and the container the
  paused engine created late is removed.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any, Callable

import docker
import psutil
import pytest

from mesos_common import task_states as ts
from mesos_common.messages import RunTask
from tests.helpers import wait_for
from tests.integration.docker_marathon import docker_marathon
from tests.integration.test_agent_docker import (IMAGE, client, docker_task,  # noqa: F401
                                                 ours, start_agent)
from tests.integration.test_agent_process import (FW, AgentProcess, FakeMaster,  # noqa: F401
                                                  agent_factory, expect_states, master,
                                                  register)

pytestmark = pytest.mark.slow
INSTANCES = 500
THREADS_MAX = 20  # the agent's own threads (loop, ZeroMQ, checkpoint, ...): none per container


def test_one_agent_runs_500_containers_with_bounded_threads(cluster, client, tmp_path: Path):
    engine = client
    resources = (f"cpus:{INSTANCES * 0.01 + 2};mem:{INSTANCES * 16 + 1024};disk:1024;"
                 "ports:[31000-31010]")
    with docker_marathon(cluster, engine, tmp_path, resources) as dm:
        api, label, proc = dm.api, dm.label, psutil.Process(dm.agent.pid)
        status, body = api.call("POST", "/v2/apps", {
            "id": "/boxes", "instances": INSTANCES, "cpus": 0.01, "mem": 16,
            "cmd": "sleep 3600", "portDefinitions": [],
            "container": {"type": "DOCKER", "docker": {"image": IMAGE}}})
        assert status == 201, body
        threads: list[int] = []

        def all_running() -> bool:
            threads.append(proc.num_threads())
            return api.app("boxes")["tasksRunning"] == INSTANCES
        wait_for(all_running, 1200, 2.0, f"{INSTANCES} tasks running")
        running = engine.containers.list(filters={"label": label, "status": "running"})
        print(f"{len(running)} containers running; agent threads max {max(threads)}, "
              f"now {proc.num_threads()} (sampled {len(threads)} times)")
        assert len(running) == INSTANCES
        assert max(threads) <= THREADS_MAX, threads
        assert all(t["state"] == "TASK_RUNNING" for t in api.app("boxes")["tasks"])

        assert api.call("DELETE", "/v2/apps/boxes")[0] == 200
        wait_for(lambda: not engine.containers.list(all=True, filters={"label": label}), 600,
                 2.0, "every container removed")


def _dockerd() -> psutil.Process:
    [proc] = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "dockerd"]
    return proc


def test_launch_on_a_paused_engine_fails_within_its_deadline(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        ours: Callable[[], list[Any]], client: docker.DockerClient) -> None:
    agent = start_agent(agent_factory, 31000, "--docker_api_timeout=3")
    register(master, agent)
    master.send(RunTask(FW, docker_task("before", "sleep 300", kill_grace_period=1.0)))
    expect_states(master, "before", [ts.STARTING, ts.RUNNING])
    dockerd = _dockerd()
    dockerd.send_signal(signal.SIGSTOP)
    try:
        paused = time.monotonic()
        master.send(RunTask(FW, docker_task("paused", "sleep 300")))
        assert agent.get("/state").json()["id"] == "A1"  # the agent answers meanwhile
        [failed] = expect_states(master, "paused", [ts.FAILED])
        waited = time.monotonic() - paused
    finally:
        dockerd.send_signal(signal.SIGCONT)
    assert failed.reason == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "the Docker engine did not answer (create container) within 3 s" in failed.message
    print(f"failed after {waited:.1f} s: {failed.message}")
    assert agent.get("/state").json()["id"] == "A1"

    master.send(RunTask(FW, docker_task("after", "sleep 300", kill_grace_period=1.0)))
    expect_states(master, "after", [ts.STARTING, ts.RUNNING])
    # whatever the paused engine created for the failed launch is removed once it shows
    wait_for(lambda: sorted(c.labels["io.corral.task_id"] for c in ours())
             == ["after", "before"], 60, 0.5, "only the running tasks' containers")
    assert agent.stop() == 0
    wait_for(lambda: ours() == [], 30, 0.5, "containers removed")

