"""Marathon HA: takeover time after kill -9 of the leader or `DELETE /v2/leader`, and what a
ZooKeeper store write costs the leader's event loop.

A private ZooKeeper, one master and one agent (LocalCluster), `--marathons` Marathon
processes with `--zk`, and an app of `--instances` sleeping tasks. Each kill round kills the
leading Marathon with SIGKILL and polls until another one says it is elected
(`leader_s`) and shows every task RUNNING with the same ids (`tasks_s`); the killed one is
restarted as a standby. Abdication rounds do the same with `DELETE /v2/leader`.
Then, in this process, `ZkStore.put` with autocommit (one transaction per write, what the
service does today) and one batched `commit()` are timed against `SQLiteStore.put`.

    python -m benchmarks.marathon_failover [--marathons 2] [--instances 20] [--rounds 5]
        [--session_timeout 2] [--puts 1000]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks._common import finish, percentile, say, wait_until
from marathon.store import SQLiteStore
from marathon.store_zk import ZkStore
from mesos_common.daemons import Daemon, LocalCluster, free_port, python_module, spawn
from mesos_common.leader import make_zk_client
from mesos_master.ha_local import ZooKeeper

AGENT = "cpus:8;mem:8192;disk:1024;ports:[31000-31099]"


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except (OSError, ValueError):
        return 0, None


def wait(pred, timeout: float, what: str) -> Any:
    return wait_until(pred, timeout, what, "marathon_failover", 0.02)


class Fleet:
    def __init__(self, root: Path, master: str, zk_url: str, session: float,
                 log_level: str) -> None:
        self.root, self.master, self.zk_url, self.session = root, master, zk_url, session
        self.log_level = log_level
        self.ports: list[int] = []
        self.procs: list[Daemon | None] = []

    def start(self, i: int | None = None) -> None:
        slot = len(self.procs) if i is None else i
        port = free_port() if i is None else self.ports[slot]
        d = spawn(f"marathon{slot}", python_module(
            "marathon", f"--master={self.master}", f"--zk={self.zk_url}", f"--http_port={port}",
            f"--zk_session_timeout={self.session}secs", "--scale_apps_interval=0.5",
            f"--log_level={self.log_level}"), self.root / "logs" / f"marathon{slot}.log",
            "marathon: listening")
        if i is None:
            self.ports.append(port)
            self.procs.append(d)
        else:
            self.procs[slot] = d

    def elected(self, not_slot: int | None = None) -> int | None:
        for i, d in enumerate(self.procs):
            if d is None or i == not_slot or not d.alive():
                continue
            status, info = call(self.ports[i], "GET", "/v2/info")
            if status == 200 and info.get("elected"):
                return i
        return None

    def agreed(self) -> bool:
        """Every live Marathon has joined the election and names the same leader."""
        named = set()
        for i, d in enumerate(self.procs):
            if d is not None and d.alive():
                status, body = call(self.ports[i], "GET", "/v2/leader")
                named.add(body.get("leader") if status == 200 else None)
        return len(named) == 1 and None not in named

    def stop(self) -> None:
        for d in self.procs:
            if d is not None:
                d.stop(timeout=20)


def running(port: int, n: int) -> list[str] | None:
    status, body = call(port, "GET", "/v2/apps/bench/sleep")
    if status != 200:
        return None
    tasks = body["app"]["tasks"]
    if len(tasks) != n or any(t["state"] != "TASK_RUNNING" for t in tasks):
        return None
    return sorted(t["id"] for t in tasks)


def takeover(fleet: Fleet, ids: list[str], n: int, how: str) -> tuple[float, float]:
    wait(fleet.agreed, 60, "every Marathon in the election")
    old = wait(lambda: (s := fleet.elected()) is not None and (s,), 60, "a leader")[0]
    t0 = time.monotonic()
    if how == "kill":
        fleet.procs[old].kill9()
    else:
        assert call(fleet.ports[old], "DELETE", "/v2/leader")[0] == 200
    new = wait(lambda: (s := fleet.elected(not_slot=old)) is not None and (s,), 60,
               "a new leader")[0]
    t_leader = time.monotonic() - t0
    got = wait(lambda: running(fleet.ports[new], n), 60, "the tasks on the new leader")
    t_tasks = time.monotonic() - t0
    if got != ids:
        raise SystemExit(f"marathon_failover: tasks changed across the takeover: {got} != {ids}")
    if how == "kill":
        fleet.start(old)
    return t_leader, t_tasks


def store_costs(zk: ZooKeeper, root: Path, puts: int) -> dict[str, Any]:
    doc = {"id": "/bench/app", "cmd": "x" * 900, "instances": 1}
    client = make_zk_client(zk.hosts)
    client.start(timeout=10)
    try:
        fence = client.create("/storebench/leader/member_", b"me", ephemeral=True,
                              sequence=True, makepath=True)
        auto = ZkStore(client, "/storebench", fence=fence)
        lat = []
        for i in range(puts):
            t = time.perf_counter()
            auto.put("task", f"t{i}", doc)
            lat.append(time.perf_counter() - t)
        batched = ZkStore(client, "/storebench", fence=fence, autocommit=False)
        t = time.perf_counter()
        for i in range(puts):
            batched.put("task2", f"t{i}", doc)
        batched.commit()
        batch_s = time.perf_counter() - t
        t = time.perf_counter()
        loaded = ZkStore(client, "/storebench").load("task")
        load_s = time.perf_counter() - t
        assert len(loaded) == puts
    finally:
        client.stop()
        client.close()
    sqlite = SQLiteStore(root / "bench.db")
    slat = []
    for i in range(puts):
        t = time.perf_counter()
        sqlite.put("task", f"t{i}", doc)
        slat.append(time.perf_counter() - t)
    sqlite.close()
    return {"zk_put_autocommit_ms": {"p50": round(percentile(lat, 50) * 1e3, 3),
                                     "p99": round(percentile(lat, 99) * 1e3, 3)},
            "zk_batched_commit_ms_per_put": round(batch_s / puts * 1e3, 4),
            "zk_batched_commits": batched.commits,
            "zk_load_s": round(load_s, 3),
            "sqlite_put_ms": {"p50": round(percentile(slat, 50) * 1e3, 3),
                              "p99": round(percentile(slat, 99) * 1e3, 3)}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--marathons", type=int, default=2)
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--session_timeout", type=float, default=2.0)
    ap.add_argument("--puts", type=int, default=1000)
    ap.add_argument("--log_level", default="WARNING")
    ap.add_argument("--keep", default=None, help="keep logs and state in this dir")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="marathon-failover-") as tmp:
        root = Path(a.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        zk = ZooKeeper(root / "zk")
        cluster = LocalCluster(root, log_level="WARNING")
        fleet: Fleet | None = None
        try:
            zk.start()
            cluster.start_master()
            cluster.start_agent(AGENT)
            fleet = Fleet(root, cluster.master_addr, zk.url("/marathon"), a.session_timeout,
                          a.log_level)
            for _ in range(a.marathons):
                fleet.start()
            lead = wait(lambda: (s := fleet.elected()) is not None and (s,), 60, "a leader")[0]
            say(f"{a.marathons} Marathons, leader on slot {lead}; creating {a.instances} tasks")
            app = {"id": "/bench/sleep", "cmd": "sleep 3600", "cpus": 0.01, "mem": 8,
                   "instances": a.instances}
            assert call(fleet.ports[lead], "POST", "/v2/apps", app)[0] == 201
            ids = wait(lambda: running(fleet.ports[lead], a.instances), 120, "running tasks")
            res: dict[str, list[tuple[float, float]]] = {"kill": [], "abdicate": []}
            for how in ("kill", "abdicate"):
                for r in range(a.rounds):
                    t = takeover(fleet, ids, a.instances, how)
                    res[how].append(t)
                    say(f"{how} round {r}: leader after {t[0]:.2f}s, tasks after {t[1]:.2f}s")
            say(f"store costs over {a.puts} puts")
            costs = store_costs(zk, root, a.puts)
        finally:
            if fleet is not None:
                fleet.stop()
            cluster.stop()
            zk.stop()

    def summary(pairs: list[tuple[float, float]]) -> dict[str, float]:
        lead_s, task_s = [p[0] for p in pairs], [p[1] for p in pairs]
        return {"leader_s_p50": round(percentile(lead_s, 50), 3),
                "leader_s_max": round(max(lead_s), 3),
                "tasks_s_p50": round(percentile(task_s, 50), 3),
                "tasks_s_max": round(max(task_s), 3)}

    finish("marathon_failover", {
        "marathons": a.marathons, "instances": a.instances, "rounds": a.rounds,
        "session_timeout_s": a.session_timeout, "kill9": summary(res["kill"]),
        "abdicate": summary(res["abdicate"]), "store": costs})


if __name__ == "__main__":
    main()
