"""Custom executors and the v1 executor API, driven by the real pymesos 0.3.15 (its own
virtualenv): a scheduler and an executor in the shape of pymesos's examples, and the
unmodified `pymesos.subprocess`, against a real master and agent."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from frameworks.scheduler import Scheduler, SchedulerDriver
from frameworks.tasks import ResourcesLeft
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.daemons import free_port
from mesos_common.resources import Resources
from tests.helpers import http_json, wait_for
from tests.v1.pymesos_env import pymesos_python, pymesos_python2

SCRIPT = Path(__file__).with_name("pymesos_executor_scheduler.py")
RESOURCES = "cpus:2;mem:1024;disk:1024"


def _scheduler(cluster, tasks: int, seconds: float, checkpoint: bool = False,
               env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.Popen:
    return subprocess.Popen(
        [str(pymesos_python()), "-I", str(SCRIPT), cluster.master_addr, str(tasks),
         str(seconds), "checkpoint" if checkpoint else "no", str(timeout)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})})


def _finish(proc: subprocess.Popen, timeout: float = 150) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _line(proc: subprocess.Popen, prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"no {prefix!r} line: {proc.stderr.read()[-3000:] if proc.stderr else ''}")


@pytest.mark.slow
def test_tasks_run_on_a_custom_executor_and_messages_go_both_ways(cluster) -> None:
    cluster.start_master()
    cluster.start_agent(RESOURCES)
    cluster.wait_agents(1)
    out = _finish(_scheduler(cluster, 3, 1.0))
    assert out["ok"], out
    assert set(out["states"].values()) == {"TASK_FINISHED"}, out
    assert "pong" in out["messages"], out  # scheduler -> executor -> scheduler
    pids = {m for m in out["messages"] if m.startswith("pid ")}
    assert len(pids) == 1, out  # the three tasks shared one executor
    assert out["lost"] == [] or all(s == 0 for _, s in out["lost"]), out
    # driver.stop() sent TEARDOWN: the idle executor is shut down with its framework
    agent = cluster.agents[0].field("http")
    wait_for(lambda: not http_json(f"{agent}/state")["frameworks"], 30,
             what="the executor gone from the agent")
    pid = int(next(iter(pids)).split()[-1])
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 30, what="the executor process gone")


def _call(agent: str, body: dict) -> tuple[int, dict | str]:
    r = requests.post(f"{agent}/api/v1", json=body, timeout=10)
    return r.status_code, (r.json() if r.status_code == 200 else r.text)


def _check_agent_operator_api(agent: str) -> None:
    """The agent's v1 operator API while the executor runs its tasks."""
    assert _call(agent, {"type": "GET_HEALTH"}) == (200, {"type": "GET_HEALTH",
                                                          "get_health": {"healthy": True}})
    code, state = _call(agent, {"type": "GET_STATE"})
    assert code == 200 and isinstance(state, dict)
    st = state["get_state"]
    assert [e["executor_info"]["executor_id"]["value"]
            for e in st["get_executors"]["executors"]] == ["MinimalExecutor"]
    assert len(st["get_tasks"]["launched_tasks"]) == 2
    assert st["get_frameworks"]["frameworks"][0]["framework_info"]["name"] == \
        "MinimalFramework"
    code, containers = _call(agent, {"type": "GET_CONTAINERS"})
    assert code == 200 and isinstance(containers, dict)
    [container] = containers["get_containers"]["containers"]
    assert container["executor_id"] == {"value": "MinimalExecutor"}
    sandbox = http_json(f"{agent}/state")["frameworks"][0]["executors"][0]["directory"]
    code, files = _call(agent, {"type": "LIST_FILES", "list_files": {"path": sandbox}})
    assert code == 200 and isinstance(files, dict)
    names = {os.path.basename(f["path"]) for f in files["list_files"]["file_infos"]}
    assert {"stdout", "stderr"} <= names, names
    def sleeping() -> bool:
        code, read = _call(agent, {"type": "READ_FILE", "read_file": {
            "path": f"{sandbox}/stderr", "offset": 0}})
        assert code == 200 and isinstance(read, dict)
        return b"sleeps" in base64.b64decode(read["read_file"]["data"])
    wait_for(sleeping, 20, what="the executor's stderr")
    code, _ = _call(agent, {"type": "READ_FILE", "read_file": {"path": "/etc/passwd"}})
    assert code == 403
    code, text = _call(agent, {"type": "NO_SUCH_CALL"})
    assert code == 400 and "NO_SUCH_CALL" in str(text)


@pytest.mark.slow
def test_an_executor_killed_with_kill_9_fails_its_tasks_and_is_reported_lost(cluster) -> None:
    cluster.start_master()
    cluster.start_agent(RESOURCES)
    cluster.wait_agents(1)
    proc = _scheduler(cluster, 2, 300.0)
    try:
        pid = int(_line(proc, "message pid ").split()[-1])
        _check_agent_operator_api(cluster.agents[0].field("http"))
        os.kill(pid, signal.SIGKILL)
        out = _finish(proc)
    finally:
        proc.kill()
    assert out["ok"], out
    assert set(out["states"].values()) == {"TASK_FAILED"}, out
    assert set(out["reasons"].values()) == {"REASON_EXECUTOR_TERMINATED"}, out
    assert out["lost"] == [["MinimalExecutor", signal.SIGKILL]], out


@pytest.mark.slow
def test_an_executor_that_never_subscribes_times_out(cluster) -> None:
    cluster.start_master()
    cluster.start_agent(RESOURCES, "--executor_registration_timeout=2secs")
    cluster.wait_agents(1)
    out = _finish(_scheduler(cluster, 2, 1.0, env={"EXECUTOR_COMMAND": "sleep 600"}))
    assert out["ok"], out
    assert set(out["states"].values()) == {"TASK_FAILED"}, out
    assert set(out["reasons"].values()) == {"REASON_EXECUTOR_REGISTRATION_TIMEOUT"}, out
    assert [e for e, _ in out["lost"]] == ["MinimalExecutor"], out


@pytest.mark.slow
def test_a_checkpointed_executor_survives_an_agent_restart(cluster) -> None:
    cluster.start_master()
    port = free_port()
    agent = cluster.start_agent(RESOURCES, port=port)
    cluster.wait_agents(1)
    proc = _scheduler(cluster, 1, 8.0, checkpoint=True)
    try:
        _line(proc, "message pid ")
        agent.kill9()
        cluster.start_agent(RESOURCES, port=port, index=0)
        out = _finish(proc)
    finally:
        proc.kill()
    assert out["ok"], out
    assert set(out["states"].values()) == {"TASK_FINISHED"}, out


@pytest.mark.slow
def test_the_unmodified_pymesos_subprocess_module_runs_commands(cluster) -> None:
    """pymesos.subprocess sends its executor as `<its python> -m pymesos.subprocess.executor`:
    the executor runs with the pymesos virtualenv's python, which has the package. The module
    is Python 2 code (pymesos's own), so it runs in a Python 2.7 virtualenv."""
    py = pymesos_python2()
    if py is None:
        pytest.skip("pymesos.subprocess needs a Python 2.7 and none is installed")
    cluster.start_master()
    cluster.start_agent(RESOURCES)
    cluster.wait_agents(1)
    r = subprocess.run([str(py), str(Path(__file__).with_name(
        "pymesos_subprocess.py")), cluster.master_addr], capture_output=True, text=True,
        timeout=150)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["output"] == "hello from mesos\n", out
    assert out["failed"] == 3, out
    assert out["killed"] == -9, out


class _SdkScheduler(Scheduler):
    """A ZeroMQ SDK framework whose tasks run on the pymesos custom executor."""

    def __init__(self, executor: m.ExecutorInfo) -> None:
        self.executor = executor
        self.launched = False
        self.states: dict[str, str] = {}
        self.messages: list[str] = []
        self.lost: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def resource_offers(self, driver, offers) -> None:
        for offer in offers:
            if self.launched:
                driver.decline_offer(offer.id, 3600)
                continue
            self.launched = True
            left = ResourcesLeft(offer)
            tasks = [left.make_task(f"sdk-{i}", None, cpus=0.1, mem=32, executor=self.executor,
                                    data=b"0.5") for i in range(2)]
            driver.launch_tasks(offer.id, tasks)

    def status_update(self, driver, status) -> None:
        with self.lock:
            first = status.state == ts.RUNNING and not any(
                s == ts.RUNNING for s in self.states.values())
            self.states[status.task_id] = status.state
        if first:
            driver.send_framework_message(self.executor.executor_id, status.agent_id or "",
                                          b"ping")

    def framework_message(self, driver, executor_id, agent_id, data) -> None:
        with self.lock:
            self.messages.append(data.decode())

    def executor_lost(self, driver, executor_id, agent_id, status) -> None:
        with self.lock:
            self.lost.append((executor_id, status))


@pytest.mark.slow
def test_zeromq_sdk_frameworks_run_tasks_on_custom_executors(cluster) -> None:
    cluster.start_master()
    cluster.start_agent(RESOURCES)
    cluster.wait_agents(1)
    executor = m.ExecutorInfo(
        "sdk-executor",
        m.CommandInfo(f"{pymesos_python()} -I {Path(__file__).with_name('pymesos_executor.py')}"),
        Resources.parse("cpus:0.1;mem:32"), name="pymesos executor")
    sched = _SdkScheduler(executor)
    driver = SchedulerDriver(sched, "sdk-executors", cluster.master_addr)
    driver.start()
    try:
        wait_for(lambda: len(sched.states) == 2 and set(sched.states.values()) == {ts.FINISHED}
                 and "pong" in sched.messages, 60, what="2 finished tasks and a pong")
        state = http_json(f"{cluster.agents[0].field('http')}/state")
        [fw] = state["frameworks"]
        assert [e["id"] for e in fw["executors"]] == ["sdk-executor"]
        driver.shutdown_executor("sdk-executor", state["id"])
        wait_for(lambda: sched.lost, 30, what="the executor's end")
        assert sched.lost[0][0] == "sdk-executor"
    finally:
        driver.stop()
