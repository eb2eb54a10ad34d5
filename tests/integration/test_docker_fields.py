"""A Docker task's fields take effect in the real engine: RO/RW host volumes, Docker named
volumes, the task's user, `parameters`, argv commands with the image's entrypoint, and the
kill grace period (SIGTERM, SIGKILL after the grace)."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from mesos_common import task_states as ts
from mesos_common.messages import (
    CommandInfo,
    ContainerInfo,
    DockerInfo,
    KillTask,
    RunTask,
    TaskInfo,
    Volume,
)
from mesos_common.resources import Resources
from tests.helpers import wait_for
from tests.integration.test_agent_docker import IMAGE, start_agent
from tests.integration.test_agent_process import (
    FW,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
    task_json,
)


def task(task_id: str, command: CommandInfo, volumes: tuple[Volume, ...] = (),
         parameters: tuple[tuple[str, str], ...] = (), **kw: Any) -> TaskInfo:
    return TaskInfo(name=task_id, task_id=task_id, agent_id="A1",
                    resources=Resources.parse("cpus:0.1;mem:32"), command=command,
                    container=ContainerInfo("DOCKER", DockerInfo(IMAGE, parameters=parameters),
                                            volumes), **kw)


def stdout(agent: AgentProcess, task_id: str) -> str:
    return (Path(task_json(agent, task_id)["directory"]) / "stdout").read_text()


def run_to_end(master: FakeMaster, agent: AgentProcess, t: TaskInfo,
               end: str = ts.FINISHED) -> str:
    master.send(RunTask(FW, t))
    *_, last = expect_states(master, t.task_id, [ts.STARTING, ts.RUNNING, end])
    assert last.state == end, last.message
    return stdout(agent, t.task_id)


def test_volumes_user_parameters_and_args(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        ours: Callable[[], list[Any]], client: docker.DockerClient, tmp_path: Path) -> None:
    agent = start_agent(agent_factory)
    register(master, agent)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("from-the-host\n")

    out = run_to_end(master, agent, task("ro", CommandInfo(
        "cat /ro/file; if echo x > /ro/new; then echo WRITABLE; else echo READONLY; fi"),
        volumes=(Volume("/ro", str(shared), "RO"),)))
    assert out == "from-the-host\nREADONLY\n" and not (shared / "new").exists()
    run_to_end(master, agent, task("rw", CommandInfo("echo written > /rw/new"),
                                   volumes=(Volume("/rw", str(shared), "RW"),)))
    assert (shared / "new").read_text() == "written\n"

    volume = f"corral-test-{uuid.uuid4().hex[:8]}"
    try:
        run_to_end(master, agent, task("put", CommandInfo("echo kept > /cache/x"),
                                       volumes=(Volume("/cache", volume),)))
        assert run_to_end(master, agent, task("get", CommandInfo("cat /cache/x"),
                                              volumes=(Volume("/cache", volume),))) == "kept\n"
    finally:
        try:
            client.volumes.get(volume).remove(force=True)
        except docker.errors.NotFound:
            pass

    # the image has no passwd: "nobody" is this agent's user, as uid:gid
    uid = run_to_end(master, agent, task("nobody", CommandInfo(
        "busybox id -u; touch $MESOS_SANDBOX/mine && echo sandbox-writable", user="nobody")))
    assert uid == "65534\nsandbox-writable\n"

    assert run_to_end(master, agent, task("params", CommandInfo("echo $GREETING"),
                                          parameters=(("env", "GREETING=hi"),
                                                      ("cap-drop", "ALL")))) == "hi\n"
    # no shell: the arguments go to the image's entrypoint (none here: they are the command)
    assert run_to_end(master, agent, task("argv", CommandInfo(
        "", shell=False, arguments=("echo", "from-args", "$NOT_EXPANDED")))) \
        == "from-args $NOT_EXPANDED\n"

    # a chatty container: copied while it runs and at its end, every line once, in order
    out = run_to_end(master, agent, task("chatty", CommandInfo(
        "busybox seq 1 50000; sleep 2; busybox seq 50001 100000")))
    assert out == "".join(f"{i}\n" for i in range(1, 100001))

    master.send(RunTask(FW, task("bad", CommandInfo("true"),
                                 parameters=(("volumes-from", "other"),))))
    [failed] = expect_states(master, "bad", [ts.FAILED])
    assert failed.reason == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "unsupported docker parameter 'volumes-from'" in failed.message
    wait_for(lambda: ours() == [], 30, 0.3, "containers removed")
    assert agent.stop() == 0


@pytest.mark.parametrize("command,grace,expected", [
    # the task handles SIGTERM within its grace: it ends on its own terms
    ("trap 'echo got-term; exit 0' TERM; while true; do sleep 0.2; done", 10.0, "got-term"),
    # the task ignores SIGTERM: SIGKILL after the grace period
    ("trap '' TERM; echo ignoring; while true; do sleep 0.2; done", 1.0, "SIGKILL"),
])
def test_kill_grace_period(command: str, grace: float, expected: str,
                           master: FakeMaster, agent_factory: Callable[..., AgentProcess],
                           ours: Callable[[], list[Any]]) -> None:
    agent = start_agent(agent_factory)
    register(master, agent)
    master.send(RunTask(FW, task("graceful", CommandInfo(command), kill_grace_period=grace)))
    expect_states(master, "graceful", [ts.STARTING, ts.RUNNING])
    wait_for(lambda: ours() and ours()[0].status == "running", 30, 0.2, "container running")
    master.send(KillTask("F1", "graceful"))
    [killed] = expect_states(master, "graceful", [ts.KILLED])
    if expected == "SIGKILL":
        assert "SIGKILL" in killed.message, killed.message
    else:
        assert "got-term" in stdout(agent, "graceful")
    wait_for(lambda: ours() == [], 30, 0.3, "container removed")
    assert agent.stop() == 0
