"""`mesos-local` starts Marathon too: an app of 3 web servers runs healthy; Ctrl-C ends all."""
from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from mesos_common.daemons import kill_task_processes, python_module
from tests.helpers import search, start_mesos_local, wait_for
from tests.integration.marathon_helpers import MarathonApi, http_ok

pytestmark = pytest.mark.slow
# Marathon run as root names no user (tasks: the agents' nobody); else its own user's.
TASK_UID = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()


def test_mesos_local_runs_marathon_apps():
    """With the default (temporary) work dir: the app names no user, so its tasks run as
    the agents' --default_user, nobody, and still serve from and are health-checked in their
    sandboxes."""
    proc, out = start_mesos_local("--num_agents=2", "--port=0",
                                  "--resources=cpus:1;mem:512;disk:512;ports:[31000-31010]")
    lines = [out]
    work = Path(search(r"mesos-local: work dir (\S+) ", out).group(1))
    try:
        base = search(r"mesos-local: marathon (http://\S+) ", out).group(1)
        pids = [int(p) for p in re.findall(r" pid (\d+)", out)]
        assert len(pids) == 4, out  # master, 2 agents, marathon
        api = MarathonApi(base)
        status, _ = api.call("POST", "/v2/apps", {
            "id": "/hello", "cmd": "python3 -m http.server $PORT0", "cpus": 0.1, "mem": 32,
            "instances": 3, "healthChecks": [{"protocol": "HTTP", "intervalSeconds": 1}]})
        assert status == 201
        app = wait_for(lambda: (a := api.app("/hello"))["tasksHealthy"] == 3 and a, 60, 0.2,
                       "3 healthy tasks")
        assert all(http_ok(t["host"], t["ports"][0]) for t in app["tasks"])
        assert len({t["slaveId"] for t in app["tasks"]}) >= 1
        boxes = list(work.glob("agent*/slaves/*/frameworks/*/executors/*/runs/latest"))
        assert len(boxes) >= 3 and all(b.stat().st_uid == TASK_UID for b in boxes), boxes
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        lines.append(rest)
        kill_task_processes(work)
        shutil.rmtree(work, ignore_errors=True)
    assert proc.returncode == 0, "".join(lines)
    assert not [p for p in pids if psutil.pid_exists(p) and
                psutil.Process(p).status() != psutil.STATUS_ZOMBIE], "daemons left behind"


def test_mesos_local_no_marathon_flag(tmp_path: Path):
    proc = subprocess.Popen(
        python_module("mesos_master.local", "--num_agents=1", "--port=0", "--no-marathon",
                      f"--work_dir={tmp_path}", "--resources=cpus:1;mem:256;ports:[31000-31001]"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "ready" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    out = "".join(lines)
    assert "ready" in out and "mesos-local: marathon" not in out, out
    assert not (tmp_path / "marathon").exists()
