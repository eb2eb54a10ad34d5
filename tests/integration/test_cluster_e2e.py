"""The foundation, end to end: real master and agent processes, real ZeroMQ, the real SDK."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import psutil
import pytest

from frameworks.scheduler import SchedulerDriver
from mesos_common import task_states
from mesos_common.daemons import kill_task_processes, python_module
from tests.helpers import TaskHolder, http_json, search, start_mesos_local, wait_for

pytestmark = pytest.mark.slow

SMALL = "cpus:1;mem:512;disk:512;ports:[31000-31010]"
FAST_PINGS = ("--agent_ping_timeout=0.5secs", "--max_agent_ping_timeouts=4")


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOS_")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def test_mesos_local_batch_of_30_spreads_over_3_agents(tmp_path: Path):
    proc, out = start_mesos_local("--num_agents=3", "--port=0", "--no-marathon",
                                  f"--work_dir={tmp_path}", f"--resources={SMALL}")
    lines = [out]
    try:
        master = search(r"master http://(\S+) ", out).group(1)
        pids = [int(p) for p in re.findall(r" pid (\d+)", out)]
        assert len(pids) == 4, out
        state = wait_for(lambda: (s := http_json(f"http://{master}/master/state")) and
                         len(s["slaves"]) == 3 and s, 30, what="3 agents")
        metrics = http_json(f"http://{master}/metrics/snapshot")
        for key, name in (("cpus", "cpus"), ("mem", "mem"), ("disk", "disk")):
            pooled = sum(a["resources"][name] for a in state["slaves"])
            assert metrics[f"master/{key}_total"] == pytest.approx(pooled)
        assert metrics["master/cpus_total"] == pytest.approx(3.0)
        assert metrics["master/mem_total"] == pytest.approx(1536.0)

        batch = run(python_module("frameworks.examples.batch", f"--master={master}",
                                  "--tasks=30", "--cpus=0.1", "--mem=32",
                                  "--command=sleep 1; echo task $TASK_INDEX"))
        assert batch.returncode == 0, batch.stdout + batch.stderr
        summary = json.loads(batch.stdout.strip().splitlines()[-1])
        assert summary["finished"] == 30 and summary["failed"] == 0
        assert len(summary["by_agent"]) == 3, summary["by_agent"]
        assert sum(summary["by_agent"].values()) == 30
        assert set(summary["by_agent"]) == {a["id"] for a in state["slaves"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        lines.append(rest)
    assert proc.returncode == 0, "".join(lines)
    assert "stopping" in rest
    assert not [p for p in pids if psutil.pid_exists(p) and
                psutil.Process(p).status() != psutil.STATUS_ZOMBIE], "daemons left behind"
    kill_task_processes(tmp_path)


def test_killed_agent_tasks_reported_lost_and_restarted_master_readmits_agent(cluster):
    cluster.start_master(*FAST_PINGS, "--allocation_interval=100ms")
    cluster.start_agent(SMALL)
    cluster.start_agent(SMALL)
    cluster.wait_agents(2)
    sched = TaskHolder(count=4, command="sleep 300")
    driver = SchedulerDriver(sched, "holder", cluster.master_addr)
    driver.start()
    try:
        wait_for(lambda: len(sched.launched) == 4 and all(
            s == task_states.RUNNING for s in sched.states().values()) and
            len(sched.states()) == 4, 30, what="4 running tasks")
        victim_id = next(iter(sched.launched.values()))
        victim = next(i for i, a in enumerate(cluster.agents)
                      if http_json(f"{a.field('http')}/state")["id"] == victim_id)
        on_victim = {t for t, a in sched.launched.items() if a == victim_id}
        killed_at = time.monotonic()
        cluster.agents[victim].kill9()
        wait_for(lambda: all(sched.states()[t] == task_states.LOST for t in on_victim),
                 20, what="TASK_LOST for the killed agent's tasks")
        assert time.monotonic() - killed_at < 20
        lost = [u for u in sched.updates if u.task_id in on_victim and u.state == task_states.LOST]
        assert all(u.reason == "REASON_AGENT_REMOVED" for u in lost), lost
        survivors = set(sched.launched) - on_victim
        assert all(sched.states()[t] == task_states.RUNNING for t in survivors)
    finally:
        driver.stop()
        kill_task_processes(cluster.agent_dirs[0])
        kill_task_processes(cluster.agent_dirs[1])

    # restart the master on the same work dir: the live agent comes back with its id
    other = 1 - victim
    other_id = http_json(f"{cluster.agents[other].field('http')}/state")["id"]
    cluster.master.stop()
    cluster.start_master(*FAST_PINGS)
    state = wait_for(lambda: (s := cluster.state()) and any(
        a["id"] == other_id and a["active"] for a in s["slaves"]) and s, 30,
        what="the agent re-registered with its id")
    assert [a["id"] for a in state["slaves"]] == [other_id]
    assert cluster.metrics()["master/slave_reregistrations"] >= 1


def test_mesos_execute_exit_status_and_sandbox_files(cluster):
    cluster.start_master()
    agent = cluster.start_agent(SMALL)
    cluster.wait_agents(1)
    failed = run(python_module("frameworks.examples.execute", f"--master={cluster.master_addr}",
                               "--name=three", "--command=exit 3"))
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert "TASK_FAILED" in failed.stdout
    hello = run(python_module("frameworks.examples.execute", f"--master={cluster.master_addr}",
                              "--name=hello", "--command=echo hi"))
    assert hello.returncode == 0, hello.stdout + hello.stderr
    assert "TASK_FINISHED" in hello.stdout
    stdout_file = next(cluster.agent_dirs[0].glob(
        "slaves/*/frameworks/*/executors/hello/runs/*/stdout"))
    url = f"{agent.field('http')}/files/read?" + urllib.parse.urlencode(
        {"path": str(stdout_file), "offset": 0})
    assert http_json(url)["data"] == "hi\n"
    outside = f"{agent.field('http')}/files/read?" + urllib.parse.urlencode(
        {"path": "/etc/passwd", "offset": 0})
    with pytest.raises(Exception) as e:
        http_json(outside)
    assert "403" in str(e.value) or "404" in str(e.value)
