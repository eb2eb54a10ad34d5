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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import psutil
import pytest

from mesos_agent.containerizer.docker import LABEL_AGENT, LABEL_TASK
from mesos_common import task_states as ts
from mesos_common.messages import RunTask, StatusUpdate, TaskStatus
from tests.helpers import wait_for
from tests.integration.docker_marathon import docker_marathon
from tests.integration.test_agent_docker import IMAGE, docker_task
from tests.integration.test_agent_process import (
    FW,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
)

pytestmark = pytest.mark.slow
INSTANCES = 500
PAUSED_LAUNCHES = 24  # more than the agent lets talk to the engine at once
THREADS_MAX = 20  # the agent's own threads (loop, ZeroMQ, checkpoint, ...): none per container


@pytest.mark.timeout(1500)  # 500 containers take minutes on a shared 2-core machine
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


def _sweep(listed: Callable[[], list[Any]]) -> None:
    """Remove the test's containers, including any the resumed engine creates late for a
    request it got while paused (whatever happened to the test)."""
    for _ in range(3):
        for c in listed():
            try:
                c.remove(force=True)
            except docker.errors.APIError:  # gone already, or being removed by the agent
                pass
        time.sleep(1)


def _dockerd() -> psutil.Process:
    [proc] = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "dockerd"]
    return proc


def test_launch_on_a_paused_engine_fails_within_its_deadline(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        client: docker.DockerClient) -> None:
    agent = agent_factory("--containerizers=mesos,docker", "--docker_api_timeout=3",
                          "--resources=cpus:8;mem:2048;disk:2048;ports:[31000-31000]")
    label = f"{LABEL_AGENT}={agent.work_dir.resolve()}"

    def listed() -> list[Any]:  # sparse: no inspect of containers the agent is removing
        return client.containers.list(all=True, sparse=True, filters={"label": label})

    def tasks() -> list[str]:
        return sorted(c.attrs["Labels"][LABEL_TASK] for c in listed())
    try:
        register(master, agent)
        master.send(RunTask(FW, docker_task("before", "sleep 300", kill_grace_period=1.0)))
        expect_states(master, "before", [ts.STARTING, ts.RUNNING])
        dockerd = _dockerd()
        dockerd.send_signal(signal.SIGSTOP)
        failed: dict[str, TaskStatus] = {}
        try:
            paused = time.monotonic()
            for i in range(PAUSED_LAUNCHES):
                master.send(RunTask(FW, docker_task(f"paused{i}", "sleep 300")))
            assert agent.get("/state").json()["id"] == "A1"  # the agent answers meanwhile
            while len(failed) < PAUSED_LAUNCHES:
                st = master.expect(StatusUpdate, timeout=30).status
                master.ack(st)
                failed[st.task_id] = st
            waited = time.monotonic() - paused
        finally:
            dockerd.send_signal(signal.SIGCONT)
        assert {st.state for st in failed.values()} == {ts.FAILED}
        assert {st.reason for st in failed.values()} == {"REASON_CONTAINER_LAUNCH_FAILED"}
        messages = {st.message.split(": ", 2)[-1] for st in failed.values()}
        # those talking to the engine waited out the deadline; those queued behind them asked
        # the engine briefly and did not wait a deadline each
        assert messages == {"the Docker engine did not answer (create container) within 3 s",
                            "the Docker engine is not answering (a call timed out after 3 s); "
                            "not attempted"}, messages
        print(f"{PAUSED_LAUNCHES} launches failed after {waited:.1f} s")
        assert agent.get("/state").json()["id"] == "A1"

        master.send(RunTask(FW, docker_task("after", "sleep 300", kill_grace_period=1.0)))
        expect_states(master, "after", [ts.STARTING, ts.RUNNING])
        # whatever the paused engine created for the failed launches is removed once it shows
        wait_for(lambda: tasks() == ["after", "before"], 60, 0.5,
                 "only the running tasks' containers")
        assert agent.stop() == 0
        wait_for(lambda: tasks() == [], 30, 0.5, "containers removed")
    finally:
        _sweep(listed)

