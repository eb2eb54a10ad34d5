"""Resource exhaustion on real processes.

1. The agent's work dir is full (a small tmpfs, filled up): a new task fails at once with
   a reason and a message that say so, the running task keeps running, and the checkpoint is
   intact: with room again the next task runs, and a kill -9 of the agent and a restart on
   the same work dir takes both tasks back.
2. The master's registry disk is full: changes it cannot persist are refused (weights: 503)
   and a new agent is not acknowledged, instead of being acknowledged and then lost.
"""
from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from frameworks.scheduler import SchedulerDriver
from mesos_common import task_states as ts
from tests.helpers import TaskHolder, http_json, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0,
                                                   reason="mounting a tmpfs needs root")]

SMALL = "cpus:1;mem:512;disk:512;ports:[31000-31010]"
CHUNK = 1 << 16


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 16 MiB tmpfs of its own, unmounted at the end whatever happened."""
    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> Path:
    """Write a file until the filesystem has no room left; returns the file."""
    filler = where / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (CHUNK, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                continue
    return filler


def test_full_work_dir_refuses_new_tasks_and_keeps_running_ones(cluster, small_disk) -> None:
    cluster.start_master("--allocation_interval=100ms")
    work = small_disk / "agent"
    agent = cluster.start_agent(SMALL, f"--work_dir={work}")
    cluster.wait_agents(1)
    sched = TaskHolder(count=1, command="sleep 300")
    driver = SchedulerDriver(sched, "holder", cluster.master_addr)
    driver.start()
    try:
        wait_for(lambda: sched.states().get("t0") == ts.RUNNING, 30, what="t0 running")
        before = http_json(f"{agent.field('http')}/state")
        (pid,) = [t["pid"] for fw in before["frameworks"] for t in fw["tasks"]]
        filler = fill(small_disk)
        sched.count = 2
        wait_for(lambda: ts.is_terminal(sched.states().get("t1", ts.STAGING)), 30,
                 what="t1 refused")
        (failed,) = [u for u in sched.updates if u.task_id == "t1"]
        assert failed.state == ts.FAILED and failed.reason == "REASON_CONTAINER_LAUNCH_FAILED"
        assert "work dir" in failed.message and "is full" in failed.message, failed.message
        assert sched.states()["t0"] == ts.RUNNING and psutil.pid_exists(pid)

        # room again: the next task runs (its checkpoint frames follow the failed writes)
        filler.unlink()
        sched.count = 3
        wait_for(lambda: sched.states().get("t2") == ts.RUNNING, 30, what="t2 running")
        pids = {t["id"]: t["pid"] for fw in http_json(f"{agent.field('http')}/state")[
            "frameworks"] for t in fw["tasks"]}
        assert pids["t0"] == pid and set(pids) == {"t0", "t2"}

        # the checkpoint is whole: a restarted agent takes both tasks back
        agent.kill9()
        agent = cluster.start_agent(SMALL, f"--work_dir={work}", index=0)
        after = wait_for(lambda: (s := http_json(f"{agent.field('http')}/state"))["state"]
                         == "RUNNING" and s, 30, what="the agent re-registered")
        assert after["id"] == before["id"]
        assert {t["id"]: t["pid"] for fw in after["frameworks"] for t in fw["tasks"]} == pids
        assert not [u for u in sched.updates if u.task_id in pids and ts.is_terminal(u.state)]
        assert all(psutil.pid_exists(p) for p in pids.values())
    finally:
        driver.stop()
        for d in cluster.agents:  # before the tmpfs goes: they hold files there
            d.stop()


def _put_weights(master: str, weight: float) -> int:
    req = urllib.request.Request(f"http://{master}/weights", method="PUT",
                                 data=json.dumps([{"role": "ads", "weight": weight}]).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_full_registry_disk_refuses_changes_instead_of_acknowledging_them(
        cluster, small_disk) -> None:
    cluster.start_master(f"--work_dir={small_disk / 'master'}", "--registry=sqlite")
    assert _put_weights(cluster.master_addr, 2.0) == 200
    filler = fill(small_disk)
    try:
        assert _put_weights(cluster.master_addr, 3.0) == 503
        weights = http_json(f"http://{cluster.master_addr}/weights")
        assert [w["weight"] for w in weights if w["role"] == "ads"] == [2.0]
        cluster.start_agent(SMALL)
        wait_for(lambda: "registry write" in (cluster.root / "logs" / "master.log").read_text(),
                 30, what="the agent's admission failing to persist")
        assert not cluster.state()["slaves"]
        assert "registered id=" not in (cluster.root / "logs" / "agent1.log").read_text()
    finally:
        filler.unlink()
    # with room again the agent's next attempt is admitted, and the change goes through
    cluster.wait_agents(1, timeout=60)
    assert "registered id=" in (cluster.root / "logs" / "agent1.log").read_text()
    assert _put_weights(cluster.master_addr, 3.0) == 200
    cluster.master.stop()  # before the tmpfs goes: the registry is open there
