"""The Docker app of the user's first try, on `mesos-local` as `make run` starts it (no
containerizer flags): with a Docker engine it runs as a container in both JSON forms, answers
on its host port and is healthy by the agent's MESOS_HTTP check; with no engine answering,
nothing runs on the host: Marathon's queue says why the app waits and a DOCKER task sent
anyway fails with a message naming what is missing."""
from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from mesos_agent.containerizer.docker import LABEL_AGENT
from mesos_common import launch_log
from mesos_common.daemons import kill_task_processes, python_module
from tests.helpers import search, start_mesos_local, wait_for
from tests.integration.marathon_helpers import MarathonApi

pytestmark = pytest.mark.slow
IMAGE = "corral/busybox:test"
NO_DOCKER = ("DOCKER task on an agent without the docker containerizer: start a Docker engine "
             "or run the agent with --containerizers=docker,mesos")
# The sandbox is the container's working directory, which httpd serves: its stdout is a page.
CHECK = {"protocol": "MESOS_HTTP", "portIndex": 0, "path": "/stdout", "delaySeconds": 1,
         "intervalSeconds": 2, "timeoutSeconds": 5, "gracePeriodSeconds": 60}
APP_1_10 = {"id": "/dock",
            "container": {"type": "DOCKER", "docker": {"image": IMAGE},
                          "portMappings": [{"containerPort": 8000, "hostPort": 0}]},
            "networks": [{"mode": "container/bridge"}], "cmd": "httpd -f -p 8000",
            "cpus": 0.1, "mem": 32}
APP_LEGACY = {"id": "/dock-legacy",  # what the marathon-python client sends
              "container": {"type": "DOCKER", "docker": {
                  "image": IMAGE, "network": "BRIDGE",
                  "portMappings": [{"containerPort": 8000, "hostPort": 0}]}},
              "cmd": "httpd -f -p 8000", "cpus": 0.1, "mem": 32}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _status(port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def _urls(out: str) -> tuple[str, str, list[str]]:
    master = search(r"mesos-local: master (http://\S+) ", out).group(1)
    marathon = search(r"mesos-local: marathon (http://\S+) ", out).group(1)
    return master, marathon, re.findall(r"mesos-local: agent\d+ (http://\S+) ", out)


def _stop(proc: subprocess.Popen, work: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=90)
    for agent in work.glob("agent*"):
        label = f"{LABEL_AGENT}={agent}"
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        kill_task_processes(agent)
    return rest


def _launched(work: Path) -> list[str]:
    """Every launch line the agents' launch logs hold (ended or not)."""
    return [line for agent in work.glob("agent*")
            if Path(log := launch_log.log_path(str(agent))).exists()
            for line in Path(log).read_text().splitlines()]


def test_the_docker_app_runs_as_a_container_in_both_forms(tmp_path: Path) -> None:
    proc, out = start_mesos_local("--port=0", f"--work_dir={tmp_path}")
    try:
        agents = re.findall(r"mesos-local: agent\d+ .* containerizers (\S+)", out)
        assert agents and set(agents) == {"docker,mesos"}, out
        master, base, agent_urls = _urls(out)
        assert _get(f"{agent_urls[0]}/state")["flags"]["containerizers"] == "docker,mesos"
        slaves = _get(f"{master}/master/state")["slaves"]
        assert [s["containerizers"] for s in slaves] == [["docker", "mesos"]] * len(agents)
        api = MarathonApi(base)
        # Checked on the host port (portIndex), and on the container's own port as Mesos
        # checks a container from inside its network: the agent probes where it is published.
        by_port = {k: v for k, v in CHECK.items() if k != "portIndex"} | {"port": 8000}
        for app, check in ((APP_1_10, CHECK), (APP_LEGACY, by_port)):
            status, body = api.call("POST", "/v2/apps", {**app, "healthChecks": [check]})
            assert status == 201, body
        for app_id in ("dock", "dock-legacy"):
            app = wait_for(partial(api.healthy_app, app_id), 120, 0.5,
                           f"{app_id} healthy by its MESOS_HTTP check")
            (task,) = app["tasks"]
            port = task["ports"][0]
            assert _status(port, "/stdout") == 200 and _status(port, "/none") == 404
            ps = subprocess.run(["docker", "ps", "--filter", f"publish={port}", "--format",
                                 "{{.Image}} {{.Ports}}"], capture_output=True, text=True)
            assert ps.stdout.startswith(f"{IMAGE} ") and "->8000/tcp" in ps.stdout, ps.stdout
        assert _launched(tmp_path) == []  # no task of either app ran as a host process
    finally:
        rest = _stop(proc, tmp_path)
    assert proc.returncode == 0, out + rest


def test_without_a_docker_engine_nothing_runs_on_the_host(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without an engine: the agents are pointed at a Docker host that does not
    answer, as the docker SDK reads it (the shared engine keeps running)."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    proc, out = start_mesos_local("--port=0", f"--work_dir={tmp_path}", "--num_agents=1")
    marker = tmp_path / "ran-on-the-host"
    try:
        assert re.search(r"mesos-local: agent1 .* containerizers mesos\n", out), out
        assert "no Docker engine answered" in out
        master, base, (agent_url,) = _urls(out)
        assert _get(f"{agent_url}/state")["flags"]["containerizers"] == "mesos"
        assert [s["containerizers"] for s in _get(f"{master}/master/state")["slaves"]] == [
            ["mesos"]]
        api = MarathonApi(base)
        status, body = api.call("POST", "/v2/apps", APP_1_10)
        assert status == 201, body

        def waiting_reason() -> Any:
            (item,) = api.call("GET", "/v2/queue?embed=lastUnusedOffers")[1]["queue"]
            summary = item["processedOffersSummary"]["rejectSummaryLastOffers"]
            return summary and item
        item = wait_for(waiting_reason, 60, 0.5, "an offer declined for the app")
        assert item["processedOffersSummary"]["rejectSummaryLastOffers"][0] == {
            "reason": "no agent with the docker containerizer",
            "declined": len(item["lastUnusedOffers"]),
            "processed": len(item["lastUnusedOffers"])}
        assert item["lastUnusedOffers"][0]["reason"] == ["no agent with the docker containerizer"]
        assert api.app("dock")["tasks"] == []

        # A framework that sends the DOCKER task anyway: refused, nothing started.
        run = subprocess.run(python_module(
            "frameworks.examples.execute", f"--master={master.removeprefix('http://')}",
            "--name=dock", f"--docker_image={IMAGE}", f"--command=touch {marker}",
            "--resources=cpus:0.1;mem:32"), capture_output=True, text=True, timeout=120)
        assert run.returncode != 0
        assert "TASK_FAILED" in run.stdout and "REASON_CONTAINER_LAUNCH_FAILED" in run.stdout
        assert NO_DOCKER in run.stdout, run.stdout
    finally:
        rest = _stop(proc, tmp_path)
    assert proc.returncode == 0, out + rest
    assert not marker.exists() and _launched(tmp_path) == []
