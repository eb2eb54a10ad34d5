"""A master, one agent with the docker containerizer and Marathon, for the Docker end-to-end
tests; every container of the agent is removed afterwards, whatever happened."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from attrs import frozen

from mesos_agent.containerizer.docker import LABEL_AGENT
from mesos_common.daemons import Daemon
from tests.integration.marathon_helpers import MarathonApi, start_marathon


@frozen
class DockerMarathon:
    agent: Daemon
    api: MarathonApi
    label: str  # the agent's containers: `filters={"label": label}`


@contextmanager
def docker_marathon(cluster, engine: docker.DockerClient, tmp_path: Path,
                    resources: str) -> Iterator[DockerMarathon]:
    cluster.start_master()
    agent = cluster.start_agent(resources, "--containerizers=mesos,docker")
    label = f"{LABEL_AGENT}={os.path.abspath(cluster.agent_dirs[0])}"
    marathon = None
    try:
        cluster.wait_agents(1)
        marathon = start_marathon(tmp_path, cluster.master_addr)
        yield DockerMarathon(agent, MarathonApi(marathon.field("http")), label)
    finally:
        if marathon is not None:
            marathon.stop()
        cluster.stop()
        for c in engine.containers.list(all=True, filters={"label": label}):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
