"""The rule for which containerizer can run a task (`support.refusal`)."""
from __future__ import annotations

from mesos_agent.containerizer.support import refusal
from mesos_common.messages import CommandInfo, ContainerInfo, DockerInfo, TaskInfo, Volume
from mesos_common.resources import Resources


def _task(container: ContainerInfo | None) -> TaskInfo:
    return TaskInfo(name="t", task_id="t", agent_id="A", resources=Resources.parse("cpus:1"),
                    command=CommandInfo("x"), container=container)


DOCKER = ContainerInfo("DOCKER", DockerInfo("img"))


def test_each_container_type_needs_its_containerizer() -> None:
    assert refusal(_task(None), {"mesos"}) is None
    assert refusal(_task(ContainerInfo("MESOS")), {"mesos", "docker"}) is None
    assert refusal(_task(DOCKER), {"docker", "mesos"}) is None
    assert refusal(_task(DOCKER), {"mesos"}) == (
        "DOCKER task on an agent without the docker containerizer: start a Docker engine or "
        "run the agent with --containerizers=docker,mesos")
    assert "without the mesos containerizer" in (refusal(_task(None), {"docker"}) or "")
    assert "APPC is not supported" in (refusal(_task(ContainerInfo("APPC")), {"mesos"}) or "")
    assert "without an image" in (refusal(_task(ContainerInfo("DOCKER")), {"docker"}) or "")


def test_fields_the_process_containerizer_cannot_honour_are_refused() -> None:
    image = refusal(_task(ContainerInfo("MESOS", DockerInfo("img"))), {"mesos", "docker"})
    assert image is not None and "'img'" in image and "use a DOCKER container" in image
    volumes = refusal(_task(ContainerInfo("MESOS", volumes=(Volume("/d", "/h"),))), {"mesos"})
    assert volumes is not None and "volumes need a DOCKER container" in volumes


def test_the_in_memory_containerizer_runs_anything() -> None:
    assert refusal(_task(DOCKER), {"sim"}) is None
    assert refusal(_task(ContainerInfo("APPC")), {"sim"}) is None
