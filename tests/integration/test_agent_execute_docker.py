"""`mesos-execute --docker_image IMAGE --command CMD` end to end: a real master, a real agent
with the docker containerizer, the real Docker engine."""
from __future__ import annotations

import os
import subprocess

import docker

from mesos_agent.containerizer.docker import LABEL_AGENT
from mesos_common.daemons import python_module
from tests.integration.test_agent_docker import IMAGE


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_mesos_execute_runs_a_one_off_container(cluster, client: docker.DockerClient) -> None:
    cluster.start_master()
    cluster.start_agent("cpus:2;mem:1024;disk:1024", "--containerizers=mesos,docker")
    label = f"{LABEL_AGENT}={os.path.abspath(cluster.agent_dirs[0])}"
    try:
        cluster.wait_agents(1)
        ok = run(python_module("frameworks.examples.execute", f"--master={cluster.master_addr}",
                               "--name=boxed", f"--docker_image={IMAGE}",
                               "--command=echo from-docker $MESOS_SANDBOX",
                               "--resources=cpus:0.2;mem:32"))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "TASK_FINISHED" in ok.stdout
        stdout = next(cluster.agent_dirs[0].glob(
            "slaves/*/frameworks/*/executors/boxed/runs/*/stdout"))
        assert stdout.read_text() == "from-docker /mnt/mesos/sandbox\n"
        bad = run(python_module("frameworks.examples.execute", f"--master={cluster.master_addr}",
                                "--name=boxed4", f"--docker_image={IMAGE}", "--command=exit 4",
                                "--resources=cpus:0.2;mem:32"))
        assert bad.returncode == 4 and "TASK_FAILED" in bad.stdout, bad.stdout + bad.stderr
        assert client.containers.list(all=True, filters={"label": label}) == []
    finally:
        for c in client.containers.list(all=True, filters={"label": label}):
            c.remove(force=True)
