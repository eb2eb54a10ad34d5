"""How a TaskInfo becomes the engine's create-container request (pure; the engine is exercised
in tests/integration/test_agent_docker.py)."""
from __future__ import annotations

import pytest

from mesos_agent.containerizer.base import LaunchError
from mesos_agent.containerizer.docker_options import (
    LABEL_AGENT,
    LABEL_TASK,
    SANDBOX_MOUNT,
    create_request,
    size_bytes,
)
from mesos_common.messages import (
    CommandInfo,
    ContainerInfo,
    DockerInfo,
    PortMapping,
    TaskInfo,
    Volume,
)
from mesos_common.resources import Resources

ECHO = CommandInfo("echo hi")


def task(docker: DockerInfo, command: CommandInfo | None = ECHO,
         res: str = "cpus:0.5;mem:64;ports:[31000-31001]", volumes=()) -> TaskInfo:
    return TaskInfo(name="t", task_id="t/1", agent_id="A1", resources=Resources.parse(res),
                    command=command, container=ContainerInfo("DOCKER", docker, volumes))


def request(t: TaskInfo) -> tuple[str, dict]:
    return create_request("t/1", "F1", t, "/w/box/run1", "/w", {"PATH": "/bin"})


def body(t: TaskInfo) -> dict:
    return request(t)[1]


def test_bridge_limits_labels_sandbox_and_shell_command() -> None:
    name, b = request(task(DockerInfo(
        "img:1", "BRIDGE", (PortMapping(31001, 80),), privileged=True,
        parameters=(("label", "a=b"), ("env", "X=1"), ("hostname", "h"))),
        volumes=(Volume("/data", "/srv", "RO"),)))
    host = b["HostConfig"]
    assert b["Image"] == "img:1" and name.startswith("corral-t_1-")
    assert b["Entrypoint"] == ["/bin/sh", "-c"] and b["Cmd"] == ["echo hi"]
    assert host["NetworkMode"] == "bridge" and b["ExposedPorts"] == {"80/tcp": {}}
    assert host["PortBindings"] == {"80/tcp": [{"HostPort": "31001"}]}
    assert host["Memory"] == 64 * 2**20 and host["NanoCpus"] == 500_000_000
    assert host["CpuShares"] == 512
    assert b["Labels"] == {LABEL_AGENT: "/w", LABEL_TASK: "t/1", "io.corral.framework_id": "F1",
                           "a": "b"}
    assert f"MESOS_SANDBOX={SANDBOX_MOUNT}" in b["Env"] and "X=1" in b["Env"]
    assert host["Binds"] == [f"/w/box/run1:{SANDBOX_MOUNT}:rw", "/srv:/data:ro"]
    assert host["Privileged"] is True and b["Hostname"] == "h"


def test_argv_command_user_and_host_network() -> None:
    b = body(task(DockerInfo("img"), CommandInfo("", shell=False, arguments=("a", "b"),
                                                 user="nobody")))
    assert b["Cmd"] == ["a", "b"] and "Entrypoint" not in b  # the image's entrypoint + args
    assert b["User"] == "65534:65534"  # this agent's nobody, whatever the image's passwd says
    assert b["HostConfig"]["NetworkMode"] == "host"
    assert "Cmd" not in body(task(DockerInfo("img"), None))
    assert body(task(DockerInfo("img"), CommandInfo("x", user="1234")))["User"] == "1234"


def test_named_and_sandbox_relative_volumes() -> None:
    binds = body(task(DockerInfo("img"), volumes=(
        Volume("/cache", "cachevol", "RW"), Volume("/d", "data/sub", "RO"))))["HostConfig"]["Binds"]
    assert binds[1:] == ["cachevol:/cache:rw", "/w/box/run1/data/sub:/d:ro"]


def test_parameters_map_to_the_engine_api() -> None:
    b = body(task(DockerInfo("img", parameters=(
        ("memory-swap", "128m"), ("cap-add", "NET_ADMIN"), ("cap-add", "SYS_TIME"),
        ("user", "1000:1000"), ("volume", "/a:/b:ro"), ("ulimit", "nofile=1024:2048"),
        ("add-host", "db:10.0.0.1"), ("sysctl", "net.core.somaxconn=1024"),
        ("init", "true"), ("shm-size", "1g")))))
    host = b["HostConfig"]
    assert host["MemorySwap"] == 128 * 2**20 and host["ShmSize"] == 2**30
    assert host["CapAdd"] == ["NET_ADMIN", "SYS_TIME"] and b["User"] == "1000:1000"
    assert "/a:/b:ro" in host["Binds"] and host["ExtraHosts"] == ["db:10.0.0.1"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"} and host["Init"] is True


def test_sizes() -> None:
    assert size_bytes("512m") == 512 * 2**20 and size_bytes("2G") == 2 * 2**30
    assert size_bytes("100") == 100 and size_bytes("-1") == -1 and size_bytes("1kb") == 1024
    with pytest.raises(LaunchError, match="bad size"):
        size_bytes("lots")


@pytest.mark.parametrize("docker,volumes,text", [
    (DockerInfo("i", "BRIDGE", (PortMapping(32000, 80),)), (), "not in the task's ports"),
    (DockerInfo("i", "HOST", (PortMapping(31000, 80),)), (), "need network BRIDGE"),
    (DockerInfo("i", "WEIRD"), (), "unsupported docker network"),
    (DockerInfo("i", parameters=(("volumes-from", "x"),)), (),
     "unsupported docker parameter 'volumes-from'"),
    (DockerInfo("i", parameters=(("pids-limit", "many"),)), (), "pids-limit='many'"),
    (DockerInfo("i"), (Volume("/x", "../../etc", "RO"),), "leaves the sandbox"),
    (DockerInfo("i"), (Volume("/x", "", "RO"),), "no hostPath"),
    (DockerInfo("i"), (Volume("/x", "/y", "RX"),), "mode must be RO or RW"),
])
def test_bad_container_infos_are_launch_errors(docker: DockerInfo, volumes, text: str) -> None:
    with pytest.raises(LaunchError, match=text):
        body(task(docker, volumes=volumes))
