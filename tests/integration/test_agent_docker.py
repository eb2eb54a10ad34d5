"""The agent's docker containerizer against the real Docker engine (started, with the
`corral/busybox:test` image, by scripts/install-system-deps.sh).

Each test's containers carry the agent's label (its work_dir); the `docker_cleanup` fixture
removes them whatever happens, and the agent fixtures kill every process they started.
"""
from __future__ import annotations

import os
import re
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import psutil
import pytest
import requests

from mesos_agent.containerizer.docker import LABEL_AGENT, LABEL_TASK
from mesos_common import task_states as ts
from mesos_common.messages import (
    AgentReregistered,
    CommandInfo,
    ContainerInfo,
    DockerInfo,
    HealthCheck,
    KillTask,
    PortMapping,
    ReregisterAgent,
    RunTask,
    StatusUpdate,
    TaskInfo,
)
from mesos_common.resources import Resources
from tests.helpers import wait_for
from tests.integration.test_agent_process import (
    FW,
    HB,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
    run_task,
    task_json,
)

IMAGE = "corral/busybox:test"


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    try:
        c = docker.from_env()
        c.ping()
        c.images.get(IMAGE)
    except Exception as e:
        pytest.fail(f"the Docker engine or {IMAGE} is missing ({e}); "
                    "run `scripts/install-system-deps.sh all`")
    yield c
    c.close()


@pytest.fixture
def ours(client: docker.DockerClient, tmp_path: Path) -> Iterator[Callable[[], list[Any]]]:
    """This test's containers (by the agent label); all removed at the end, even on failure."""
    label = f"{LABEL_AGENT}={os.path.abspath(tmp_path / 'work')}"

    def listed() -> list[Any]:
        return client.containers.list(all=True, filters={"label": label})
    yield listed
    for c in listed():
        c.remove(force=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker_task(task_id: str, command: str, mem: int = 32, network: str = "HOST",
                mappings: tuple[PortMapping, ...] = (), ports: str = "", image: str = IMAGE,
                **kw: Any) -> TaskInfo:
    res = Resources.parse(f"cpus:0.2;mem:{mem}" + (f";ports:[{ports}]" if ports else ""))
    return TaskInfo(name=task_id, task_id=task_id, agent_id="A1", resources=res,
                    command=CommandInfo(command),
                    container=ContainerInfo("DOCKER", DockerInfo(image, network, mappings)),
                    **kw)


def start_agent(factory: Callable[..., AgentProcess], port: int = 31000, *extra: str
                ) -> AgentProcess:
    return factory("--containerizers=mesos,docker",
                   f"--resources=cpus:2;mem:1024;disk:2048;ports:[{port}-{port}]", *extra)


def test_bridge_port_mapping_limits_logs_and_kill(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        ours: Callable[[], list[Any]]) -> None:
    port = free_port()
    agent = start_agent(agent_factory, port)
    register(master, agent)
    master.send(RunTask(FW, docker_task(
        "web", "echo to-stdout; echo to-stderr >&2; echo hello-corral > /www/index.html; "
               "exec httpd -f -p 8080 -h /www", mem=64, network="BRIDGE",
        mappings=(PortMapping(port, 8080),), ports=f"{port}-{port}", kill_grace_period=2.0)))
    expect_states(master, "web", [ts.STARTING, ts.RUNNING])
    body = wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2).text,
                    what="httpd answering on the host port")
    assert body == "hello-corral\n"

    [c] = ours()
    assert c.labels[LABEL_TASK] == "web"
    host = c.attrs["HostConfig"]
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 200_000_000
    assert c.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"] == str(port)
    sandbox = Path(task_json(agent, "web")["directory"])
    wait_for(lambda: "to-stdout" in (sandbox / "stdout").read_text(), what="stdout streamed")
    wait_for(lambda: "to-stderr" in (sandbox / "stderr").read_text(), what="stderr streamed")
    assert "to-stderr" not in (sandbox / "stdout").read_text()

    [stats] = agent.get("/monitor/statistics").json()
    assert stats["executor_id"] == "web"
    assert stats["statistics"]["mem_limit_bytes"] == 64 * 2**20
    assert stats["statistics"]["mem_rss_bytes"] > 0
    assert stats["statistics"]["cpus_user_time_secs"] >= 0
    master.send(KillTask("F1", "web"))
    [killed] = expect_states(master, "web", [ts.KILLED])
    assert "SIG" in killed.message
    wait_for(lambda: ours() == [], what="the container removed")
    assert agent.stop() == 0


def test_exit_code_oom_bad_port_and_image_pull_failure(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        ours: Callable[[], list[Any]]) -> None:
    agent = start_agent(agent_factory)
    register(master, agent)
    master.send(RunTask(FW, docker_task("exit3", "exit 3")))
    *_, failed = expect_states(master, "exit3", [ts.STARTING, ts.RUNNING, ts.FAILED])
    assert failed.message == "Command exited with status 3"

    master.send(RunTask(FW, docker_task(
        "oom", "busybox head -c 200000000 /dev/zero | busybox tail -c 150000000 >/dev/null",
        mem=16)))
    *_, oom = expect_states(master, "oom", [ts.STARTING, ts.RUNNING, ts.FAILED])
    assert oom.reason == "REASON_CONTAINER_LIMITATION_MEMORY", oom
    # the limit, and the peak use read from the container's cgroup at the engine's oom event
    assert re.match(r"Memory limit exceeded: the container's memory limit is 16 MB, "
                    r"used \d+ MB;", oom.message), oom.message

    master.send(RunTask(FW, docker_task("pull", "true", image="corral/no-such-image:1")))
    [st] = expect_states(master, "pull", [ts.FAILED])
    assert "Failed to pull image corral/no-such-image:1" in st.message
    assert st.reason == "REASON_CONTAINER_LAUNCH_FAILED"

    master.send(RunTask(FW, docker_task("badport", "true", network="BRIDGE",
                                        mappings=(PortMapping(31555, 80),))))
    [st] = expect_states(master, "badport", [ts.FAILED])
    assert "host port 31555 is not in the task's ports" in st.message
    wait_for(lambda: ours() == [], what="no container left")
    assert agent.stop() == 0


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _seven_tasks(master: FakeMaster, agent: AgentProcess) -> dict[str, int]:
    pids = {}
    for i in range(5):
        run_task(master, f"p{i}", "sleep 300", kill_grace_period=1.0)
    for i in range(2):
        master.send(RunTask(FW, docker_task(f"d{i}", "sleep 300", kill_grace_period=1.0)))
    # updates of the 7 tasks interleave: take them in any order, each task's in its order
    seen: dict[str, list[str]] = {}
    while sum(states == [ts.STARTING, ts.RUNNING] for states in seen.values()) < 7:
        st = master.expect(StatusUpdate, timeout=30).status
        master.ack(st)
        states = seen.setdefault(st.task_id, [])
        if not states or states[-1] != st.state:  # a resend of an update already seen
            states.append(st.state)
        assert states in ([ts.STARTING], [ts.STARTING, ts.RUNNING]), (st.task_id, states)
    for tid in seen:
        pids[tid] = task_json(agent, tid)["pid"]
    return pids


def _crash(master: FakeMaster, agent: AgentProcess) -> None:
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(5)
    master.forget_peers()


@pytest.mark.parametrize("mode", ["reconnect", "cleanup"])
def test_agent_kill9_with_processes_and_containers(
        mode: str, master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        ours: Callable[[], list[Any]]) -> None:
    agent = start_agent(agent_factory)
    register(master, agent)
    pids = _seven_tasks(master, agent)
    containers = {c.labels[LABEL_TASK]: c.id for c in ours()}
    assert set(containers) == {"d0", "d1"}
    _crash(master, agent)
    assert all(_alive(p) for p in pids.values())

    agent = start_agent(agent_factory, 31000, f"--recover={mode}")
    rereg = master.expect(ReregisterAgent, timeout=30)
    assert rereg.agent_id == "A1"
    states = {r.task.task_id: r.state for r in rereg.tasks}
    assert set(states) == set(pids)
    # cleanup kills at once, so a task may already be KILLED when we re-register
    allowed = {ts.RUNNING} if mode == "reconnect" else {ts.RUNNING, ts.KILLED}
    assert set(states.values()) <= allowed, states
    master.send(AgentReregistered("A1", "M1", HB))

    if mode == "reconnect":
        for tid, pid in pids.items():
            assert task_json(agent, tid)["pid"] == pid and _alive(pid), tid
            assert task_json(agent, tid)["state"] == ts.RUNNING
        assert {c.labels[LABEL_TASK]: c.id for c in ours() if c.status == "running"} \
            == containers
        # no update at all (certainly no TASK_LOST) unless an ack was in flight at the crash
        while True:
            try:
                st = master.expect(StatusUpdate, timeout=3).status
            except AssertionError:
                break
            assert st.state == ts.RUNNING, st
            master.ack(st)
        for tid in pids:  # still ours to kill
            master.send(KillTask("F1", tid))
        ended = _collect_terminal(master, len(pids))
    else:
        ended = _collect_terminal(master, len(pids))
    assert ended == {tid: ts.KILLED for tid in pids}
    wait_for(lambda: not any(_alive(p) for p in pids.values()), what="all tasks gone")
    wait_for(lambda: ours() == [], what="containers removed")
    assert agent.stop() == 0


def _collect_terminal(master: FakeMaster, n: int) -> dict[str, str]:
    ended: dict[str, str] = {}
    while len(ended) < n:
        st = master.expect(StatusUpdate, timeout=30).status
        assert st.state != ts.LOST, st
        master.ack(st)
        if ts.is_terminal(st.state):
            ended[st.task_id] = st.state
    return ended


def test_command_health_check_runs_inside_the_container(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        ours: Callable[[], list[Any]]) -> None:
    agent = start_agent(agent_factory)
    register(master, agent)
    # /tmp/up exists only inside the container: a check run on the host would fail
    check = HealthCheck("COMMAND", command=CommandInfo("test -f /tmp/up"), delay_seconds=0,
                        interval_seconds=0.3, timeout_seconds=5, consecutive_failures=2,
                        grace_period_seconds=30)
    master.send(RunTask(FW, docker_task("hc", "touch /tmp/up; sleep 300", health_check=check,
                                        kill_grace_period=1.0)))
    expect_states(master, "hc", [ts.STARTING, ts.RUNNING])
    st = master.update("hc", timeout=20)
    master.ack(st)
    assert (st.state, st.healthy) == (ts.RUNNING, True)
    master.send(KillTask("F1", "hc"))
    [killed] = expect_states(master, "hc", [ts.KILLED])
    assert killed.healthy is True
    wait_for(lambda: ours() == [], what="the container removed")
    assert agent.stop() == 0
