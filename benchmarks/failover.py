"""Master failover time: kill -9 of the leader -> a new leader serving with every agent back.

A private ZooKeeper, 3 masters (`--quorum 2`) and `--agents` real agent processes following
`zk://`. Each round kills the leader with SIGKILL and polls the masters' HTTP APIs until one
leads and its /master/state lists every agent active again. The old leader's znode is watched
in ZooKeeper, so the figure is split: `failover_s` (kill -> all agents re-registered) and
`after_session_expiry_s` (ZooKeeper expired the dead leader's session -> all re-registered);
the part before expiry is the session timeout, which the operator chooses.

`--sim_agents N` adds N simulated agents for large runs: `mesos_agent.fleet` processes (real
agent cores on real sockets, detecting the leader through zk:// and a LeaderWatch as the real
agent does; no tasks run).

    python -m benchmarks.failover [--agents 3] [--sim_agents 0] [--rounds 5] [--session_timeout 2]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks._common import finish, percentile, say, wait_until
from benchmarks._fleet import spawn_fleets
from mesos_common.leader import make_zk_client
from mesos_master.ha_local import HaCluster, ZooKeeper

RESOURCES = "cpus:1;mem:256;disk:256;ports:[31000-31010]"


def leader_state(cluster: HaCluster, agents: int, not_id: str | None) -> dict | None:
    found = cluster.leader(timeout=0.3)
    if found is None or found[1].field("id") == not_id:
        return None
    try:
        with urllib.request.urlopen(f"http://{cluster.http_of(found[1])}/master/state",
                                    timeout=1.0) as r:
            state = json.loads(r.read())
    except (OSError, ValueError):
        return None
    return state if sum(1 for a in state["slaves"] if a["active"]) == agents else None


def wait(pred, timeout: float, what: str) -> Any:
    return wait_until(pred, timeout, what, "failover benchmark", 0.01)


def one_round(cluster: HaCluster, zk: ZooKeeper, agents: int) -> tuple[float, float]:
    state = wait(lambda: leader_state(cluster, agents, None), 120, "a settled cluster")
    slot = next(i for i, d in enumerate(cluster.masters) if d and d.field("id") == state["id"])
    client = make_zk_client(zk.hosts)
    client.start(timeout=10)
    try:
        znode = next(c for c in client.get_children("/corral")
                     if json.loads(client.get(f"/corral/{c}")[0]).get("id") == state["id"])
        gone = threading.Event()
        expired_at: list[float] = []

        def watch(event) -> None:
            expired_at.append(time.monotonic())
            gone.set()
        client.exists(f"/corral/{znode}", watch=watch)
        killed_at = time.monotonic()
        cluster.kill9(slot)
        wait(lambda: leader_state(cluster, agents, state["id"]), 60, "the new leader")
        done_at = time.monotonic()
        gone.wait(30)
    finally:
        client.stop()
        client.close()
    cluster.start_master(slot)  # back as a standby
    return done_at - killed_at, done_at - expired_at[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=3, help="real agent processes")
    ap.add_argument("--sim_agents", type=int, default=0, help="simulated agents (one process)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--session_timeout", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-failover-") as tmp:
        root = Path(tmp)
        fleets = []
        zk = ZooKeeper(root / "zk")
        cluster = HaCluster(root, zk.url(), session_timeout=args.session_timeout, quorum=2,
                            master_flags=("--agent_ping_timeout=1secs",
                                          "--allocation_interval=100ms"), log_level="WARNING")
        try:
            say("starting ZooKeeper")
            zk.start()
            say(f"starting 3 masters and {args.agents} agents")
            for _ in range(3):
                cluster.start_master()
            for _ in range(args.agents):
                cluster.start_agent(RESOURCES)
            if args.sim_agents:
                say(f"starting {args.sim_agents} simulated agents")
                fleets = spawn_fleets(zk.url(), root / "logs", args.sim_agents, RESOURCES)
            totals, afters = [], []
            for r in range(args.rounds):
                total, after = one_round(cluster, zk, args.agents + args.sim_agents)
                say(f"round {r + 1}: failover {total:.2f}s, {after:.2f}s after session expiry")
                totals.append(total)
                afters.append(after)
        finally:
            for f in fleets:
                f.stop()
            cluster.stop()
            zk.stop()
    finish("failover", {
        "agents": args.agents, "sim_agents": args.sim_agents, "rounds": args.rounds, "masters": 3,
        "session_timeout_s": args.session_timeout,
        "failover_s": round(percentile(totals, 50), 3),
        "failover_max_s": round(max(totals), 3),
        "after_session_expiry_s": round(percentile(afters, 50), 3),
        "after_session_expiry_max_s": round(max(afters), 3),
        "rounds_failover_s": [round(t, 3) for t in totals],
        "rounds_after_session_expiry_s": [round(t, 3) for t in afters]})


if __name__ == "__main__":
    main()
