"""A Marathon Docker app's fields end to end (real master, agent, dockerd, Marathon): `args` with
the image, `user`, an RO host volume, `parameters`, the kill grace period; the output read live
through the agent's /files/read; an OOM kill in `lastTaskFailure`; refused volume kinds."""
from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from tests.helpers import http_json, wait_for
from tests.integration.docker_marathon import docker_marathon
from tests.integration.test_agent_docker import IMAGE

pytestmark = pytest.mark.slow
AGENT = "cpus:2;mem:1024;disk:1024;ports:[31000-31010]"


def test_docker_app_fields_take_effect(cluster, client, tmp_path: Path):
    engine = client
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("host-file\n")
    with docker_marathon(cluster, engine, tmp_path, AGENT) as dm:
        api, label = dm.api, dm.label
        status, body = api.call("POST", "/v2/apps", {
            "id": "/persisted", "cpus": 0.1, "mem": 32, "portDefinitions": [], "cmd": "true",
            "container": {"type": "DOCKER", "docker": {"image": IMAGE}, "volumes": [
                {"containerPath": "data", "mode": "RW", "persistent": {"size": 10}}]}})
        assert status == 422 and "persistent volumes are not supported" in str(body), body

        status, body = api.call("POST", "/v2/apps", {
            "id": "/fields", "cpus": 0.1, "mem": 32, "portDefinitions": [], "user": "nobody",
            "taskKillGracePeriodSeconds": 2,
            "args": ["sh", "-c", "busybox id -u; cat /ro/file; "
                                 "echo x > /ro/new 2>/dev/null || echo READONLY; "
                                 "echo $GREETING; exec sleep 300"],
            "container": {"type": "DOCKER", "volumes": [
                {"containerPath": "/ro", "hostPath": str(shared), "mode": "RO"}],
                "docker": {"image": IMAGE, "parameters": [
                    {"key": "env", "value": "GREETING=hello-param"}]}}})
        assert status == 201, body
        wait_for(lambda: api.app("fields")["tasksRunning"] == 1, 90, 0.5, "the task running")
        [task] = http_json(f"{dm.agent.field('http')}/state")["frameworks"][0]["executors"]
        url = f"{dm.agent.field('http')}/files/read?" + urllib.parse.urlencode(
            {"path": f"{task['directory']}/stdout", "offset": 0})
        # the container is still running: its output arrives while it runs
        out = wait_for(lambda: (d := http_json(url)["data"]).count("\n") >= 4 and d, 30, 0.5,
                       "the task's output in its sandbox")
        assert out == "65534\nhost-file\nREADONLY\nhello-param\n"
        [container] = engine.containers.list(filters={"label": label})
        assert container.attrs["Config"]["User"] == "65534:65534"
        assert api.call("DELETE", "/v2/apps/fields")[0] == 200
        wait_for(lambda: not engine.containers.list(all=True, filters={"label": label}), 60,
                 0.5, "the container removed")

        status, body = api.call("POST", "/v2/apps", {
            "id": "/hog", "cpus": 0.1, "mem": 16, "portDefinitions": [],
            "cmd": "busybox head -c 200000000 /dev/zero | busybox tail -c 150000000",
            "container": {"type": "DOCKER", "docker": {"image": IMAGE}}})
        assert status == 201, body
        failure = wait_for(lambda: api.app("hog").get("lastTaskFailure"), 90, 0.5,
                           "the memory hog's failure")
        assert failure["state"] == "TASK_FAILED"
        assert "memory limit is 16 MB" in failure["message"], failure
        assert api.call("DELETE", "/v2/apps/hog")[0] == 200
