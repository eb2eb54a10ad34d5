"""Health checks the agent runs (MESOS_HTTP, MESOS_TCP, COMMAND) reported in Marathon's task
JSON: a BRIDGE Docker task checked on its container port (the agent probes the host port it
is published on), a COMMAND check run inside the container (the file it tests exists only
there), and a process task's MESOS_TCP check (real master, agent, dockerd, Marathon)."""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from mesos_agent.containerizer.docker import LABEL_AGENT
from mesos_common.daemons import free_port
from tests.helpers import wait_for
from tests.integration.marathon_helpers import MarathonApi, start_marathon
from tests.integration.test_agent_docker import IMAGE

pytestmark = pytest.mark.slow
TIMING = {"delaySeconds": 0, "intervalSeconds": 1, "timeoutSeconds": 2,
          "gracePeriodSeconds": 30, "maxConsecutiveFailures": 3}
HTTPD = "mkdir -p /www && echo hello > /www/index.html && httpd -f -p 80 -h /www"
BRIDGE = {"type": "DOCKER", "docker": {"image": IMAGE, "network": "BRIDGE",
                                       "portMappings": [{"containerPort": 80, "hostPort": 0}]}}
APPS: list[dict[str, Any]] = [
    {"id": "/http", "cmd": HTTPD, "container": BRIDGE,
     "healthChecks": [dict(TIMING, protocol="MESOS_HTTP", path="/index.html", portIndex=0)]},
    {"id": "/command", "cmd": f"touch /inside-only && {HTTPD}", "container": BRIDGE,
     "healthChecks": [dict(TIMING, protocol="COMMAND",
                           command={"value": "test -f /inside-only"})]},
    {"id": "/tcp", "cmd": "exec python3 -m http.server $PORT0",
     "portDefinitions": [{"port": 0}],
     "healthChecks": [dict(TIMING, protocol="MESOS_TCP", portIndex=0)]},
]


def test_agent_run_checks_show_in_health_check_results(cluster, client, tmp_path: Path):
    engine = client
    ports = ",".join(f"{p}-{p}" for p in sorted({free_port() for _ in range(4)}))
    cluster.start_master()
    cluster.start_agent(f"cpus:2;mem:1024;disk:1024;ports:[{ports}]",
                        "--containerizers=mesos,docker")
    label = f"{LABEL_AGENT}={os.path.abspath(cluster.agent_dirs[0])}"
    cluster.wait_agents(1)
    marathon = start_marathon(tmp_path, cluster.master_addr)
    try:
        api = MarathonApi(marathon.field("http"))
        for app in APPS:
            status, body = api.call("POST", "/v2/apps", dict(app, cpus=0.1, mem=64))
            assert status == 201, body
        for app in APPS:
            a = wait_for(partial(api.healthy_app, app["id"]), 90, 0.5, f"{app['id']} healthy")
            (task,) = a["tasks"]
            (result,) = task["healthCheckResults"]
            assert result["alive"] is True and result["consecutiveFailures"] == 0, result
            assert result["firstSuccess"] and result["taskId"] == task["id"], result
    finally:
        marathon.stop()
        for c in engine.containers.list(all=True, filters={"label": label}):
            c.remove(force=True)
