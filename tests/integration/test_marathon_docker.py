"""A Marathon Docker app end to end: busybox httpd on a BRIDGE network with hostPort 0 answers
on the host port Corral assigned from the offer (real master, agent, dockerd, Marathon)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mesos_agent.containerizer.docker import LABEL_AGENT
from tests.helpers import wait_for
from tests.integration.marathon_helpers import MarathonApi, http_ok, start_marathon
from tests.integration.test_agent_docker import IMAGE

pytestmark = pytest.mark.slow
AGENT = "cpus:2;mem:1024;disk:1024;ports:[31000-31010]"


def test_docker_app_answers_on_its_assigned_host_port(cluster, client, tmp_path: Path):
    engine = client
    cluster.start_master()
    cluster.start_agent(AGENT, "--containerizers=mesos,docker")
    label = f"{LABEL_AGENT}={os.path.abspath(cluster.agent_dirs[0])}"
    cluster.wait_agents(1)
    marathon = start_marathon(tmp_path, cluster.master_addr)
    try:
        api = MarathonApi(marathon.field("http"))
        status, body = api.call("POST", "/v2/apps", {
            "id": "/web", "instances": 1, "cpus": 0.1, "mem": 64,
            "cmd": "mkdir -p /www && echo hello > /www/index.html && httpd -f -p 80 -h /www",
            "container": {"type": "DOCKER", "docker": {
                "image": IMAGE, "network": "BRIDGE",
                "portMappings": [{"containerPort": 80, "hostPort": 0}]}}})
        assert status == 201, body
        task = wait_for(lambda: (t := api.app("web")["tasks"]) and t[0].get("state") ==
                        "TASK_RUNNING" and t[0], 90, 0.5, "the docker task running")
        host_port = task["ports"][0]
        assert 31000 <= host_port <= 31010
        wait_for(lambda: http_ok("127.0.0.1", host_port), 30, 0.3, "httpd on the host port")
        (container,) = engine.containers.list(filters={"label": label})
        bindings = container.attrs["NetworkSettings"]["Ports"]["80/tcp"]
        assert int(bindings[0]["HostPort"]) == host_port
        assert api.call("DELETE", "/v2/apps/web")[0] == 200
        wait_for(lambda: not engine.containers.list(filters={"label": label}), 60, 0.5,
                 "the container removed")
    finally:
        marathon.stop()
        for c in engine.containers.list(all=True, filters={"label": label}):
            c.remove(force=True)
