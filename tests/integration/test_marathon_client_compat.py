"""The real `marathon` client (0.13.0) against our Marathon, from its own virtualenv.

The client's import name collides with this project's `marathon` package, so it runs in a
separate virtualenv (created once under ~/.cache/corral) as a subprocess in isolated mode.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.marathon_helpers import start_marathon

pytestmark = pytest.mark.slow
VENV = Path(os.environ.get("CORRAL_MARATHON_CLIENT_VENV",
                           Path.home() / ".cache" / "corral" / "marathon-client-0.13.0"))
SCRIPT = Path(__file__).with_name("marathon_client_script.py")


def client_python() -> Path:
    py = VENV / "bin" / "python"
    ok = py.exists() and subprocess.run([str(py), "-I", "-c", "import marathon, requests"],
                                        capture_output=True).returncode == 0
    if not ok:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "marathon==0.13.0"],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"cannot install the marathon client: {r.stderr[-2000:]}"
    return py


def test_marathon_python_client_drives_the_api(cluster, tmp_path):
    py = client_python()
    cluster.start_master()
    cluster.start_agent("cpus:4;mem:2048;disk:1024;ports:[31000-31099]")
    cluster.wait_agents(1)
    marathon = start_marathon(tmp_path, cluster.master_addr)
    try:
        r = subprocess.run([str(py), "-I", str(SCRIPT), marathon.field("http")],
                           capture_output=True, text=True, timeout=400, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        res = json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        marathon.stop()
    errors = {k: v for k, v in res.items() if isinstance(v, str) and v.startswith("ERROR")}
    assert not errors, json.dumps(errors, indent=1)
    assert res["ping"] == '"pong"' and res["info"] == "1.10.26"
    assert res["create"] == "/test-trivial-app" and res["deployments"] == 1
    assert res["wait"] == 5 and res["list_tasks"] == 5 and res["list_all_tasks"] == 5
    assert res["get_app"] == ["/test-trivial-app", 5, 5]
    assert res["list_apps_filtered"] == ["/test-trivial-app"]
    assert res["endpoints"] == 5
    assert res["scale"] == 3 and res["scale_delta"] == 4
    assert res["update"] == [True, "sleep 3601"] and res["restart"] == 4
    assert res["kill_task_scale"] == [["deploymentId", "version"], 3]
    assert res["kill_given_tasks"] == [True, 3]
    assert res["kill_tasks"] == 3
    assert res["versions"] >= 5 and res["get_version"] == "/test-trivial-app"
    assert res["complex"] == "/test-complex-app"
    assert res["get_complex"] == "localhost/fake_docker_url"
    assert ["/test-queued-app", 2] in [list(q) for q in res["queue"]]
    assert res["list_groups"] == ["/grp"] and res["get_group"] == ["/grp/g1"]
    assert res["group_deployed"] == 1 and res["group_scaled"] == 2
    assert res["subscriptions"] == ["http://localhost:9/cb"]
    assert res["events"][0] == "event_stream_attached"
    assert not [e for e in res["events"] if e.startswith("ERROR")], res["events"]
    assert {"deployment_info", "status_update_event"} <= set(res["events"])
