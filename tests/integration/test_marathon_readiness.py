"""readinessChecks on a real cluster: a rolling upgrade is held until the new task's
`/ready` answers 200 (here: once the test creates the marker file the task looks for)."""
from __future__ import annotations

import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesos_common.daemons import free_port, kill_task_processes
from tests.helpers import start_mesos_local, wait_for
from tests.integration.marathon_helpers import MarathonApi

pytestmark = pytest.mark.slow

# serves /ready: 200 once the file named by argv[1] exists, 503 before
SERVER = """\
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/ready" and os.path.exists(sys.argv[1])
        body = b"ready" if ok else b"warming up"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("", int(os.environ["PORT0"])), H).serve_forever()
"""


@pytest.fixture
def cluster() -> Iterator[tuple[MarathonApi, Path]]:
    base = Path(tempfile.mkdtemp(prefix="corral-readiness-"))
    base.chmod(0o755)  # tasks run as the agents' default user (nobody) and read the script
    # task ports of their own: never another cluster's server on this machine
    ports = ",".join(f"{p}-{p}" for p in {free_port(), free_port(), free_port()})
    proc, out = start_mesos_local("--num_agents=1", "--port=0", f"--work_dir={base}",
                                  f"--resources=cpus:2;mem:1024;disk:512;ports:[{ports}]")
    try:
        marathon = re.search(r"mesos-local: marathon (http://\S+) ", out)
        assert marathon, out
        yield MarathonApi(marathon.group(1)), base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        kill_task_processes(base)
        shutil.rmtree(base, ignore_errors=True)


def test_readiness_check_holds_a_rolling_upgrade(cluster: tuple[MarathonApi, Path]) -> None:
    api, base = cluster
    script = base / "server.py"
    script.write_text(SERVER)
    (base / "v1-ready").touch()
    app = {"id": "/ready", "cpus": 0.1, "mem": 64, "instances": 1,
           "cmd": f"python3 {script} {base / 'v1-ready'}",
           "portDefinitions": [{"port": 0, "name": "http"}],
           "readinessChecks": [{"portName": "http", "path": "/ready", "intervalSeconds": 2,
                                "timeoutSeconds": 1.5, "preserveLastResponse": True}]}
    status, body = api.call("POST", "/v2/apps", app)
    assert status == 201, body
    wait_for(lambda: not api.deployments(), 60, 0.2, "the first deployment done")
    (old,) = api.app("/ready")["tasks"]

    status, body = api.call("PUT", "/v2/apps/ready",
                            {"cmd": f"python3 {script} {base / 'v2-ready'}"})
    assert status == 200, body

    def not_ready_result() -> dict | None:
        for d in api.deployments():
            for a in d["currentActions"]:
                for r in a["readinessCheckResults"]:
                    if r["lastResponse"] and r["lastResponse"]["status"] == 503:
                        return r
        return None
    result = wait_for(not_ready_result, 60, 0.2, "a not-ready readiness result")
    assert result["ready"] is False and result["taskId"] != old["id"]
    assert result["lastResponse"]["body"] == "warming up"
    tasks = api.app("/ready")["tasks"]
    # held: the old task still runs next to the new, running but not ready, one
    assert {t["id"] for t in tasks} == {old["id"], result["taskId"]}
    assert all(t["state"] == "TASK_RUNNING" for t in tasks)
    assert api.deployments()

    (base / "v2-ready").touch()
    wait_for(lambda: not api.deployments(), 60, 0.2, "the upgrade done once ready")
    (task,) = wait_for(lambda: len(ts := api.app("/ready")["tasks"]) == 1 and ts, 60, 0.2,
                       "the old task gone")
    assert task["id"] == result["taskId"]
