"""The v1 scheduler API across a master failover (pymesos following ZooKeeper), and a stream
reader that stops reading while the master goes on serving everyone else."""
from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from frameworks.scheduler import SchedulerDriver
from mesos_master.ha_local import HaCluster
from tests.helpers import TaskHolder, http_json, wait_for
from tests.v1.pymesos_env import pymesos_python

SCRIPT = Path(__file__).with_name("pymesos_failover.py")
MASTER_FLAGS = ("--agent_ping_timeout=0.5secs", "--max_agent_ping_timeouts=6",
                "--agent_reregister_timeout=20secs")


@pytest.mark.slow
def test_pymesos_resubscribes_after_a_master_kill9_and_keeps_its_task(zookeeper, tmp_path):
    py = pymesos_python()
    cluster = HaCluster(tmp_path, zookeeper.url(), session_timeout=2.0, quorum=2,
                        master_flags=MASTER_FLAGS)
    proc = None
    try:
        for _ in range(3):  # a quorum of 2 is left when the leader dies
            cluster.start_master()
        cluster.start_agent("cpus:2;mem:512;disk:256")
        first = wait_for(cluster.leader, 60, what="a leading master")
        proc = subprocess.Popen([str(py), "-I", str(SCRIPT), cluster.zk_url, "90"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline().split()
        assert line[:1] == ["running"], (line, proc.stderr.read()[-3000:])
        fw_id, task_id = line[1], line[2]
        pid_before = _task_pgid(cluster, task_id)
        cluster.kill9(first[0])
        out, err = proc.communicate(timeout=150)
        res = json.loads(out.strip().splitlines()[-1])
        assert res["ok"], (res, err[-3000:])
        second = wait_for(cluster.leader, 30, what="the new leader")
        assert second[0] != first[0]
        # Same framework, re-registered (not registered anew) with the new leader, whose
        # reconciliation says the task still runs - the same process as before.
        assert res["framework_id"] == fw_id and res["task_id"] == task_id
        assert len(res["registered"]) == 1 and res["reregistered"]
        assert res["reconciled"][-1] == "TASK_RUNNING"
        assert "TASK_LOST" not in res["states"] and "TASK_FAILED" not in res["states"]
        assert _task_pgid(cluster, task_id) == pid_before
        state = http_json(f"http://{cluster.http_of(second[1])}/master/state")
        [fw] = [f for f in state["frameworks"] if f["id"] == fw_id]
        assert [t["state"] for t in fw["tasks"] if t["id"] == task_id] == ["TASK_RUNNING"]
        # A standby sends v1 clients to the leader.
        [standby] = [d for i, d in enumerate(cluster.masters)
                     if d is not None and d.alive() and i != second[0]]
        leader_http = cluster.http_of(second[1])
        for path in ("/api/v1/scheduler", "/api/v1"):
            r = requests.post(f"http://{cluster.http_of(standby)}{path}",
                              json={"type": "GET_HEALTH"}, allow_redirects=False, timeout=10)
            assert r.status_code == 307, (path, r.status_code, r.text)
            assert r.headers["Location"] == f"//{leader_http}{path}"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        cluster.stop()


def _task_pgid(cluster: HaCluster, task_id: str) -> int:
    from mesos_common import launch_log
    for work in cluster.agent_dirs:
        pids = launch_log.task_pids(str(work))
        if task_id in pids:
            return pids[task_id]
    raise AssertionError(f"task {task_id} is in no agent's launch log")


def test_a_stream_reader_that_stops_reading_does_not_hold_the_master(cluster) -> None:
    """Operator SUBSCRIBE streams whose clients never read, with the master's state large
    enough that SUBSCRIBED alone fills their sockets: every other client is still served."""
    cluster.start_master()
    cluster.start_agent("cpus:8;mem:2048;disk:256")
    cluster.wait_agents(1)
    host, port = cluster.master_addr.split(":")
    body = b'{"type": "SUBSCRIBE"}'
    stalled = []
    try:
        for _ in range(20):
            s = socket.create_connection((host, int(port)))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            s.sendall(b"POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            stalled.append(s)  # never read
        # 40 tasks (TASK_ADDED and TASK_UPDATED events for every stalled stream, beyond
        # what their sockets hold) while other clients are answered.
        holder = TaskHolder(40, "sleep 600")
        driver = SchedulerDriver(holder, "events", cluster.master_addr)
        driver.start()
        try:
            for _ in range(50):
                r = requests.post(f"http://{cluster.master_addr}/api/v1",
                                  json={"type": "GET_STATE"}, timeout=10)
                assert r.status_code == 200 and "get_state" in r.json()
            wait_for(lambda: list(holder.states().values()).count("TASK_RUNNING") == 40, 60,
                     what="40 running tasks")
        finally:
            driver.stop()
        with requests.post(f"http://{cluster.master_addr}/api/v1", json={"type": "SUBSCRIBE"},
                           stream=True, timeout=10) as live:  # a reading subscriber works
            first = next(live.iter_content(chunk_size=None))
            assert b'"SUBSCRIBED"' in first
        assert http_json(f"http://{cluster.master_addr}/metrics/snapshot")[
            "master/slaves_active"] == 1.0
    finally:
        for s in stalled:
            s.close()
