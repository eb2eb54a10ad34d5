"""Which port an agent-run health check probes on the host (`health.on_host`)."""
from __future__ import annotations

from mesos_agent.health import on_host
from mesos_common.messages import (
    CommandInfo,
    ContainerInfo,
    DockerInfo,
    HealthCheck,
    PortMapping,
    TaskInfo,
)
from mesos_common.resources import Resources


def _task(network: str, *mappings: PortMapping) -> TaskInfo:
    return TaskInfo(name="t", task_id="t", agent_id="A", resources=Resources.parse("cpus:1"),
                    command=CommandInfo("x"), container=ContainerInfo(
                        "DOCKER", DockerInfo("img", network=network, port_mappings=mappings)))


def test_a_bridge_containers_own_port_is_probed_where_it_is_published() -> None:
    task = _task("BRIDGE", PortMapping(31005, 8000), PortMapping(31006, 31005))
    assert on_host(HealthCheck("HTTP", port=8000), task).port == 31005
    assert on_host(HealthCheck("TCP", port=31005), task).port == 31005  # a host port stays
    assert on_host(HealthCheck("HTTP", port=9999), task).port == 9999
    check = HealthCheck("HTTP", port=8000)
    assert on_host(check, _task("HOST")) is check
    assert on_host(HealthCheck("COMMAND", command=CommandInfo("true")), task).port is None
