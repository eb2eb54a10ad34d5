"""--containerizers parsing and the composite's routing (with the in-memory containerizer)."""
from __future__ import annotations

import asyncio

import pytest

from mesos_agent.containerizer.base import LaunchError
from mesos_agent.containerizer.composite import CompositeContainerizer
from mesos_agent.containerizer.detect import parse
from mesos_agent.containerizer.sim import SimContainerizer
from mesos_common.messages import CommandInfo, ContainerInfo, DockerInfo, TaskInfo
from mesos_common.resources import Resources


def test_kinds() -> None:
    assert parse("mesos,docker") == {"mesos", "docker"}
    assert parse("process") == {"mesos"}
    assert parse(" auto ") is None
    for bad in ("", "docker,sim", "lxc", "auto,mesos"):
        with pytest.raises(ValueError):
            parse(bad)


def _task(tid: str, docker: bool) -> TaskInfo:
    return TaskInfo(name=tid, task_id=tid, agent_id="A", resources=Resources.parse("cpus:1"),
                    command=CommandInfo("x"),
                    container=ContainerInfo("DOCKER", DockerInfo("img")) if docker else None)


def test_routes_by_container_type_and_refuses_missing_kinds() -> None:
    async def go() -> None:
        proc, dock = SimContainerizer(), SimContainerizer()
        c = CompositeContainerizer({"mesos": proc, "docker": dock})
        await c.launch("p", "F", _task("p", False), "/s")
        await c.launch("d", "F", _task("d", True), "/s")
        assert proc.launched == ["p"] and dock.launched == ["d"]
        assert c.containers() == {"p", "d"}
        await c.kill("d", 0.0)
        assert await c.wait("d") == (None, 9)
        assert c.limitation("d") is None and c.containers() == {"p"}
        only = CompositeContainerizer({"mesos": SimContainerizer()})
        with pytest.raises(LaunchError, match="DOCKER task on an agent without the docker "
                                              "containerizer: start a Docker engine or run "
                                              "the agent with --containerizers=docker,mesos"):
            await only.launch("d", "F", _task("d", True), "/s")
    asyncio.run(go())
