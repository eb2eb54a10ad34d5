"""The Mesos v1 scheduler API driven by the real pymesos 0.3.15 (its own virtualenv) against a
real master and agent."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import http_json, wait_for
from tests.v1.pymesos_env import pymesos_python

SCRIPT = Path(__file__).with_name("pymesos_scheduler.py")


def _run_scheduler(cluster, tasks: int, command: str, timeout: float = 120) -> dict:
    py = pymesos_python()
    r = subprocess.run([str(py), "-I", str(SCRIPT), cluster.master_addr, str(tasks), command,
                        str(timeout)], capture_output=True, text=True, timeout=timeout + 30)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_pymesos_scheduler_runs_reconciles_and_kills_command_tasks(cluster) -> None:
    cluster.start_master()
    cluster.start_agent("cpus:2;mem:1024;disk:1024")
    cluster.wait_agents(1)
    out = _run_scheduler(cluster, 6, 'test "$HELLO" = "from pymesos" || exit 7; '
                                     'case $MESOS_TASK_ID in *[0-7]) exit 0;; esac; sleep 60')
    assert out["ok"], out
    assert out["framework_id"]
    finished = {t for t, s in out["states"].items() if s == "TASK_FINISHED"}
    killed = {t for t, s in out["states"].items() if s == "TASK_KILLED"}
    assert finished | killed == set(out["states"]) and len(out["states"]) == 6, out
    for task_id, final in out["states"].items():  # agent updates, each acknowledged once
        seen = [(state, src, has_uuid) for t, state, src, has_uuid in out["history"]
                if t == task_id]
        assert ("TASK_RUNNING", "SOURCE_EXECUTOR", True) in seen, seen
        assert seen[-1][0] == final and seen[-1][2], seen
    # Reconciliation once all had started: the master's latest state for the running ones;
    # a finished task whose update was acknowledged is unknown to it by then; an unknown
    # task is TASK_LOST (pymesos sends no agent id; the framework is not partition-aware).
    assert out["reconciled"]["no-such-task"] == "TASK_LOST"
    assert killed and all(out["reconciled"][t] == "TASK_RUNNING" for t in killed), out
    assert all(out["reconciled"][t] in ("TASK_RUNNING", "TASK_FINISHED", "TASK_LOST")
               for t in finished), out  # depending on when each ended
    # driver.stop() sends TEARDOWN: the framework is completed.
    def completed() -> dict | None:
        s = http_json(f"http://{cluster.master_addr}/master/state")
        done = any(f["id"] == out["framework_id"] for f in s["completed_frameworks"])
        return s if done else None
    state = wait_for(completed, 15, what="the framework under completed_frameworks")
    assert not any(f["id"] == out["framework_id"] for f in state["frameworks"])


@pytest.mark.slow
def test_pymesos_operator_client_sees_health_state_and_the_framework_s_events(cluster) -> None:
    cluster.start_master()
    cluster.start_agent("cpus:2;mem:1024;disk:1024")
    cluster.wait_agents(1)
    py = pymesos_python()
    watcher = subprocess.Popen([str(py), "-I", str(Path(__file__).with_name(
        "pymesos_operator.py")), cluster.master_addr, "90"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "subscribed"
        ran = _run_scheduler(cluster, 2, "echo done")
        assert ran["ok"], ran
        out, err = watcher.communicate(timeout=120)
    finally:
        watcher.kill()
        watcher.wait()
    res = json.loads(out.strip().splitlines()[-1])
    assert res["ok"], (res, err[-2000:])
    assert res["health"] == {"type": "GET_HEALTH", "get_health": {"healthy": True}}
    assert res["state_keys"] == ["get_agents", "get_executors", "get_frameworks", "get_tasks"]
    assert res["agents"] == 1
    kinds = [k for k, _ in res["events"]]
    assert ["FRAMEWORK_ADDED", "MinimalFramework"] in res["events"]
    added = {w for k, w in res["events"] if k == "TASK_ADDED"}
    assert added == set(ran["states"])
    assert kinds.index("FRAMEWORK_ADDED") < kinds.index("TASK_ADDED") < \
        kinds.index("TASK_UPDATED") < kinds.index("FRAMEWORK_REMOVED")
    assert {w for k, w in res["events"] if k == "TASK_UPDATED"} >= {"TASK_RUNNING",
                                                                    "TASK_FINISHED"}
