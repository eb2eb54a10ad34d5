"""How a TaskInfo becomes `docker run` options (pure; the engine is exercised in
tests/integration/test_agent_docker.py)."""
from __future__ import annotations

import pytest

from mesos_agent.containerizer.base import LaunchError
from mesos_agent.containerizer.docker import LABEL_AGENT, LABEL_TASK, SANDBOX_MOUNT, run_options
from mesos_common.messages import (CommandInfo, ContainerInfo, DockerInfo, PortMapping, TaskInfo,
                                   Volume)
from mesos_common.resources import Resources


def task(docker: DockerInfo, command: CommandInfo | None = CommandInfo("echo hi"),
         res: str = "cpus:0.5;mem:64;ports:[31000-31001]", volumes=()) -> TaskInfo:
    return TaskInfo(name="t", task_id="t/1", agent_id="A1", resources=Resources.parse(res),
                    command=command, container=ContainerInfo("DOCKER", docker, volumes))


def opts(t: TaskInfo) -> dict:
    return run_options("t/1", "F1", t, "/w/box/run1", "/w", {"PATH": "/bin"})


def test_bridge_limits_labels_sandbox_and_shell_command() -> None:
    o = opts(task(DockerInfo("img:1", "BRIDGE", (PortMapping(31001, 80),), privileged=True,
                             parameters=(("label", "a=b"), ("env", "X=1"), ("hostname", "h"))),
                  volumes=(Volume("/data", "/srv", "RO"),)))
    assert o["image"] == "img:1" and o["name"].startswith("corral-t_1-")
    assert o["entrypoint"] == ["/bin/sh", "-c"] and o["command"] == ["echo hi"]
    assert o["network_mode"] == "bridge" and o["ports"] == {"80/tcp": 31001}
    assert o["mem_limit"] == "64m" and o["nano_cpus"] == 500_000_000 and o["cpu_shares"] == 512
    assert o["labels"] == {LABEL_AGENT: "/w", LABEL_TASK: "t/1", "io.corral.framework_id": "F1",
                           "a": "b"}
    assert o["environment"]["MESOS_SANDBOX"] == SANDBOX_MOUNT and o["environment"]["X"] == "1"
    assert o["volumes"] == {"/w/box/run1": {"bind": SANDBOX_MOUNT, "mode": "rw"},
                            "/srv": {"bind": "/data", "mode": "ro"}}
    assert o["privileged"] is True and o["hostname"] == "h"


def test_argv_command_and_host_network() -> None:
    o = opts(task(DockerInfo("img"), CommandInfo("", shell=False, arguments=("a", "b"))))
    assert o["command"] == ["a", "b"] and "entrypoint" not in o
    assert o["network_mode"] == "host"
    assert "command" not in opts(task(DockerInfo("img"), None))


@pytest.mark.parametrize("docker,text", [
    (DockerInfo("i", "BRIDGE", (PortMapping(32000, 80),)), "not in the task's ports"),
    (DockerInfo("i", "HOST", (PortMapping(31000, 80),)), "need network BRIDGE"),
    (DockerInfo("i", "WEIRD"), "unsupported docker network"),
    (DockerInfo("i", parameters=(("volumes-from", "x"),)), "unsupported docker parameter"),
])
def test_bad_container_infos_are_launch_errors(docker: DockerInfo, text: str) -> None:
    with pytest.raises(LaunchError, match=text):
        opts(task(docker))
