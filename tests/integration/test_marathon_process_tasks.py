"""Marathon app fields that shape a process task, on `mesos-local` with its defaults: `fetch`
(a tarball from a real HTTP server, through the agent's cache), `user`, `mem` (an OOM kill
explained in `lastTaskFailure`) and `taskKillGracePeriodSeconds` (SIGTERM, then SIGKILL)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesos_common.daemons import kill_task_processes
from tests.helpers import http_json, start_mesos_local, wait_for
from tests.integration.marathon_helpers import MarathonApi
from tests.integration.test_agent_fetch import Files
from tests.integration.test_agent_isolation import HOG

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")]


@pytest.fixture
def cluster() -> Iterator[tuple[MarathonApi, str, Path]]:
    """mesos-local, one agent; its work dir walkable by other users (tasks run as nobody)."""
    base = Path(tempfile.mkdtemp(prefix="corral-marathon-"))
    base.chmod(0o755)
    proc, out = start_mesos_local("--num_agents=1", "--port=0", f"--work_dir={base}",
                                  "--resources=cpus:2;mem:1024;disk:512;ports:[31000-31010]")
    try:
        master = re.search(r"mesos-local: master (http://\S+) ", out)
        marathon = re.search(r"mesos-local: marathon (http://\S+) ", out)
        assert master and marathon, out
        yield MarathonApi(marathon.group(1)), master.group(1), base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        kill_task_processes(base)
        shutil.rmtree(base, ignore_errors=True)


def _sandbox(base: Path, task_id: str) -> Path:
    [box] = list(base.glob(f"**/executors/{task_id}/runs/latest"))
    return box


def _running_task(api: MarathonApi, app_id: str) -> dict:
    app = wait_for(lambda: (a := api.app(app_id))["tasksRunning"] == 1 and a, 60, 0.2,
                   f"{app_id} running")
    return app["tasks"][0]


def test_fetch_user_memory_and_grace_of_process_tasks(
        cluster: tuple[MarathonApi, str, Path], files: Files) -> None:
    api, master, base = cluster
    apps: list[dict[str, Any]] = [
        {"id": "/whoami", "cmd": "id -u && sleep 600", "user": "nobody"},
        {"id": "/fetched", "cmd": "./app/bin/hello && sleep 600",
         "fetch": [{"uri": f"{files.url}/app.tar.gz", "cache": True}]},
        {"id": "/hog", "cmd": HOG, "mem": 64, "user": "root"},  # HOG: root's own interpreter
        {"id": "/graceful", "cmd": "trap 'echo got TERM' TERM; while true; do sleep 0.2; done",
         "taskKillGracePeriodSeconds": 2},
    ]
    for app in apps:
        status, body = api.call("POST", "/v2/apps", {"cpus": 0.1, "mem": 32, **app})
        assert status == 201, body

    task = _running_task(api, "/whoami")
    wait_for(lambda: (_sandbox(base, task["id"]) / "stdout").read_text() == "65534\n", 30,
             0.1, "id -u of the nobody task")

    task = _running_task(api, "/fetched")
    assert (_sandbox(base, task["id"]) / "stdout").read_text().startswith(
        "hello from the tarball: corral")

    failure = wait_for(lambda: api.app("/hog").get("lastTaskFailure"), 60, 0.2,
                       "the hog's failure in lastTaskFailure")
    assert failure["state"] == "TASK_FAILED", failure
    assert failure["message"].startswith(
        "Memory limit exceeded: Requested: 64MB Maximum Used: "), failure

    # SIGTERM first (the task says so and goes on), SIGKILL after the grace period: the
    # master hears TASK_KILLED only once the process is gone
    task = _running_task(api, "/graceful")
    status, _ = api.call("DELETE", "/v2/apps/graceful")
    assert status == 200
    wait_for(lambda: _master_state(master, task["id"]) == "TASK_KILLED", 60, 0.2,
             "the graceful task killed")
    assert "got TERM" in (_sandbox(base, task["id"]) / "stdout").read_text()


def _master_state(master: str, task_id: str) -> str | None:
    state = http_json(f"{master}/master/state")
    for fw in state["frameworks"] + state.get("completed_frameworks", []):
        for t in fw["tasks"] + fw["completed_tasks"]:
            if t["id"] == task_id:
                return t["state"]
    return None
