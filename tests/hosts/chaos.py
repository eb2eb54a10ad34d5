"""Chaos rounds on a HostCluster: a client rolls and scales apps the whole time while the
round's faults (tests/hosts/schedule.py, from the seed) kill and cut the cluster's hosts.

After each round every fault is healed and every killed daemon restarted, and the round
passes when: every acknowledged change is present; every app converges to its target; no
task runs that Marathon does not know; no two instances of the `hostname UNIQUE` app share a
host; the leading master's books match the agents' own /state. Each round's faults, the
client's changes and the results go to a JSON-lines log; a failing round replays with
`python -m tests.hosts.chaos --seed S --only-round R`.

    make chaos ROUNDS=10 SEED=1
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from attrs import define, field

from tests.hosts.checks import (
    MarathonClient,
    books_unbalanced,
    converged,
    lost_changes,
    tasks_lost,
    unique_violations,
    unknown_tasks,
)
from tests.hosts.cluster import MASTER_ZMQ, ZK_PORT, HostCluster
from tests.hosts.planted import PLANTS
from tests.hosts.schedule import Fault, driver_actions, round_faults

WEB: dict[str, Any] = {
    "id": "/chaos/web", "cpus": 0.1, "mem": 16, "instances": 3,
    "portDefinitions": [{"port": 0}], "constraints": [["hostname", "UNIQUE"]],
    "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
                      "intervalSeconds": 1, "timeoutSeconds": 2,
                      "gracePeriodSeconds": 15, "maxConsecutiveFailures": 3}],
    "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5},
    "unreachableStrategy": {"inactiveAfterSeconds": 2, "expungeAfterSeconds": 600}}
WORKER: dict[str, Any] = {
    "id": "/chaos/worker", "cmd": "sleep 100000", "cpus": 0.05, "mem": 8, "instances": 2,
    "unreachableStrategy": {"inactiveAfterSeconds": 2, "expungeAfterSeconds": 600}}


def web_cmd(version: int) -> str:
    return f"echo v{version} > index.html && exec busybox httpd -f -p $PORT0"


@define
class Totals:
    """Figures over rounds: faults applied (a leader fault finds no leader at times and is
    skipped), changes acknowledged and lost, the worst times."""
    rounds: int = 0
    failed_rounds: list[int] = field(factory=list)
    faults: dict[str, int] = field(factory=dict)
    acked: int = 0
    lost: int = 0
    lost_elsewhere: int = 0
    longest_below_capacity: float = 0.0
    longest_converge: float = 0.0

    def add(self, no: int, applied: list[str], result: dict[str, Any]) -> None:
        self.rounds += 1
        for kind in applied:
            self.faults[kind] = self.faults.get(kind, 0) + 1
        problems = result["problems"]
        if problems:
            self.failed_rounds.append(no)
        self.acked += result["acked"]
        self.lost += sum(1 for x in problems if x.startswith("lost change"))
        self.lost_elsewhere += sum(1 for x in problems if x.startswith("lost on an untouched"))
        self.longest_below_capacity = max(self.longest_below_capacity,
                                          result["longest_below_capacity_s"])
        self.longest_converge = max(self.longest_converge, result["converge_s"])

    def to_json(self) -> dict[str, Any]:
        f = self.faults
        return {"rounds": self.rounds, "failed_rounds": self.failed_rounds,
                "faults": dict(sorted(f.items())),
                "leader_kills": f.get("kill_master_leader", 0) + f.get("kill_marathon_leader", 0),
                "agent_kills": f.get("kill_agent", 0),
                "partitions": sum(v for k, v in f.items() if "partition" in k or "one_way" in k),
                "losses": f.get("loss", 0), "delays": f.get("delay", 0),
                "pauses": f.get("pause_agent", 0), "changes_acked": self.acked,
                "changes_lost": self.lost, "tasks_lost_on_untouched_hosts": self.lost_elsewhere,
                "longest_below_capacity_s": self.longest_below_capacity,
                "longest_converge_s": self.longest_converge}


def summarize(log: Path) -> Totals:
    """The totals of the rounds a log holds (a run cut short still has its finished rounds)."""
    totals = Totals()
    applied: dict[int, list[str]] = {}
    for line in log.read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "start":
            applied[e["round"]] = []
        elif e["event"] == "fault" and e.get("host"):
            applied.setdefault(e["round"], []).append(e["fault"]["kind"])
        elif e["event"] == "result":
            totals.add(e["round"], applied.get(e["round"], []), e)
    return totals


class Round:
    """One round: the faults applied on time, the client's changes, the checks after."""

    def __init__(self, hosts: HostCluster, client: MarathonClient, seed: int, no: int,
                 length: float, log: Any) -> None:
        self.hosts, self.client, self.seed, self.no, self.length = hosts, client, seed, no, length
        self.log = log
        self.faults = round_faults(seed, no, hosts.agent_hosts,
                                   hosts.master_hosts + hosts.marathon_hosts + hosts.agent_hosts,
                                   length)
        self.active: dict[Fault, list[str]] = {}  # fault -> hosts it touched
        self.touched: set[str] = set()  # hosts this round cut, slowed, paused or killed
        self.applied: list[str] = []  # kinds of the faults applied
        self.below_since: float | None = None
        self.longest_below = 0.0
        self.stop = threading.Event()

    def emit(self, **kv: Any) -> None:
        self.log.write(json.dumps(dict(kv, round=self.no, t=round(time.time(), 2))) + "\n")
        self.log.flush()

    # ------------------------------------------------------------------ faults

    def _resolve(self, f: Fault) -> str | None:
        if f.target == "leader:master":
            lead = self.hosts.leading_masters()
            return lead[0] if len(lead) == 1 else None
        if f.target == "leader:marathon":
            lead = self.hosts.leading_marathons()
            return lead[0] if len(lead) == 1 else None
        return f.target if f.target in self.hosts.daemons else None

    def apply(self, f: Fault) -> None:
        name = self._resolve(f)
        self.emit(event="fault", fault=f.to_json(), host=name)
        if name is None:
            return
        h, net = self.hosts, self.hosts.net
        if f.kind.startswith("kill_"):
            h.kill9(name)
        elif f.kind.startswith("partition_"):
            net.link(name, up=False)
        elif f.kind == "one_way_master_leader":
            net.block(name, "in")
        elif f.kind == "pause_agent":
            h.pause(name)
        elif f.kind == "loss":
            net.loss(name, f.probability)
        elif f.kind == "delay":  # its connections to the masters and ZooKeeper opened from now
            for peer in h.master_hosts:
                if peer != name:
                    h.delay(name, peer, [MASTER_ZMQ], f.delay, f.jitter, seed=self.seed)
            h.delay(name, "zk", [ZK_PORT], f.delay, f.jitter, seed=self.seed)
        self.active[f] = [name]
        self.touched.add(name)
        self.applied.append(f.kind)

    def heal(self, f: Fault) -> None:
        for name in self.active.pop(f, []):
            self.emit(event="heal", kind=f.kind, host=name)
            if f.kind.startswith("kill_"):
                self.hosts.restart(name)
            elif f.kind == "pause_agent":
                self.hosts.resume(name)
            else:
                self.hosts.heal(name)

    # ------------------------------------------------------------------ client

    def drive(self) -> None:
        start = time.monotonic()
        for at, action, value in driver_actions(self.seed, self.no, self.length):
            if self.stop.wait(max(0.0, start + at - time.monotonic())):
                return
            if action == "roll":
                ok = self.client.change("PUT", "/v2/apps/chaos/web?force=true", "/chaos/web",
                                        {"cmd": web_cmd(value)})
            else:
                ok = self.client.change("PUT", "/v2/apps/chaos/worker?force=true", "/chaos/worker",
                                        {"instances": value})
            self.emit(event="change", action=action, value=value, acked=ok)

    def watch_capacity(self) -> None:
        """Longest stretch the web app had fewer healthy tasks than its health capacity
        (instances x minimumHealthCapacity); a moment Marathon cannot be asked counts."""
        floor = WEB["instances"] * WEB["upgradeStrategy"]["minimumHealthCapacity"]
        while not self.stop.wait(0.5):
            app = self.client.app("/chaos/web")
            now = time.monotonic()
            if app is not None and app["tasksHealthy"] >= floor:
                self.below_since = None
                continue
            self.below_since = self.below_since or now
            self.longest_below = max(self.longest_below, now - self.below_since)

    # ------------------------------------------------------------------ the round

    def lost_elsewhere(self, seen: set[str]) -> list[str]:
        """Tasks lost this round on agents no fault of the round touched (goal: none)."""
        try:
            lost = tasks_lost(self.hosts)
        except (OSError, AssertionError):
            return []
        new = {tid: host for tid, host in lost.items() if tid not in seen}
        seen.update(new)
        return sorted(f"{tid} on {host}" for tid, host in new.items()
                      if host not in self.touched)

    def supervise_until(self, deadline: float) -> None:
        """Wait until `deadline` (monotonic), restarting meanwhile, as a supervisor would,
        any daemon that exited by itself (not those a fault killed: they are restarted when
        the fault ends)."""
        while True:
            revived = self.hosts.revive()
            if revived:
                self.emit(event="revived", hosts=revived)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(1.0, left))

    def run(self, seen_lost: set[str]) -> dict[str, Any]:
        self.emit(event="start", seed=self.seed, faults=[f.to_json() for f in self.faults])
        acked_before = len(self.client.acked)
        threads = [threading.Thread(target=self.drive, daemon=True),
                   threading.Thread(target=self.watch_capacity, daemon=True)]
        for t in threads:
            t.start()
        start = time.monotonic()
        events = sorted([(f.at, 0, f) for f in self.faults] + [(f.end, 1, f) for f in self.faults],
                        key=lambda e: (e[0], e[1]))
        try:
            for at, end, f in events:
                self.supervise_until(start + at)
                self.heal(f) if end else self.apply(f)
            self.supervise_until(start + self.length)
        finally:
            for f in list(self.active):
                self.heal(f)
            self.stop.set()
            for t in threads:
                t.join(15)
        self.supervise_until(0)
        healed = time.monotonic()
        problems, converge_s = self.check()
        problems += [f"lost on an untouched host: {x}" for x in self.lost_elsewhere(seen_lost)]
        result = {"problems": problems, "converge_s": round(converge_s, 1),
                  "longest_below_capacity_s": round(self.longest_below, 1),
                  "acked": len(self.client.acked) - acked_before,
                  "round_s": round(healed - start, 1)}
        self.emit(event="result", **result)
        return result

    def check(self, timeout: float = 180.0) -> tuple[list[str], float]:
        """Wait for the cluster to settle, then check the guarantees; (problems, seconds
        from the last heal to convergence)."""
        t0 = time.monotonic()
        problems: list[str] = []
        apps: list[dict[str, Any]] | None = None
        while time.monotonic() - t0 < timeout:
            apps = self.client.apps()
            masters = self.hosts.leading_masters()
            if apps is not None and len(masters) == 1 and all(converged(a) for a in apps) \
                    and not unknown_tasks(self.hosts, apps) \
                    and not books_unbalanced(self.hosts):
                break
            time.sleep(1)
        converge_s = time.monotonic() - t0
        if apps is None:
            return ["no Marathon answers"], converge_s
        problems += [f"not converged: {a['id']} ({len(a.get('tasks', []))} tasks, "
                     f"{a['tasksHealthy']} healthy, want {a['instances']})"
                     for a in apps if not converged(a)]
        problems += [f"lost change: {p}" for p in lost_changes(self.client)]
        problems += [f"unknown task: {p}" for p in unknown_tasks(self.hosts, apps)]
        problems += [f"UNIQUE broken: {p}" for p in unique_violations(self.hosts, apps)]
        try:
            problems += [f"books: {p}" for p in books_unbalanced(self.hosts)]
        except AssertionError as e:
            problems.append(f"masters: {e}")
        return problems, converge_s


def setup_apps(client: MarathonClient, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not client.cluster.leading_marathons():
        if time.monotonic() > deadline:
            raise RuntimeError("no Marathon leader")
        time.sleep(0.5)
    for app in (dict(WEB, cmd=web_cmd(0)), WORKER):
        if not client.change("POST", "/v2/apps", app["id"], app):
            raise RuntimeError(f"could not create {app['id']}")
    while not all(converged(a) for a in (client.apps() or [{}])):
        if time.monotonic() > deadline:
            raise RuntimeError("the apps did not start")
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only-round", type=int, default=None, help="replay this round alone")
    p.add_argument("--length", type=float, default=30.0, help="seconds of faults per round")
    p.add_argument("--log", type=Path, default=Path("chaos.jsonl"))
    p.add_argument("--plant", choices=PLANTS, help="run a Marathon with this bug planted")
    p.add_argument("--keep-going", action="store_true", help="run every round even after a failure")
    p.add_argument("--summary", type=Path, help="print the totals of a log's rounds and exit")
    a = p.parse_args(argv)
    if a.summary:
        print(json.dumps(summarize(a.summary).to_json()))
        return 0
    # SIGTERM unwinds like Ctrl-C, so the cluster and its network are removed either way
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rounds = [a.only_round] if a.only_round is not None else list(range(1, a.rounds + 1))
    totals = Totals()
    seen_lost: set[str] = set()
    root = Path(tempfile.mkdtemp(prefix="corral-chaos-"))
    if a.plant:
        os.environ["CORRAL_PLANT"] = a.plant
    hosts = HostCluster(root, marathon_module="tests.hosts.planted" if a.plant else "marathon")
    with open(a.log, "a") as log, hosts:
        client = MarathonClient(hosts)
        setup_apps(client)
        for no in rounds:
            r = Round(hosts, client, a.seed, no, a.length, log)
            result = r.run(seen_lost)
            totals.add(no, r.applied, result)
            status = "ok" if not result["problems"] else "FAILED"
            print(f"round {no}: {status} faults={[f.kind for f in r.faults]} "
                  f"converged in {result['converge_s']}s "
                  f"below capacity {result['longest_below_capacity_s']}s "
                  f"acked {result['acked']}", flush=True)
            if result["problems"]:
                for x in result["problems"]:
                    print(f"  - {x}", flush=True)
                plant = f" --plant {a.plant}" if a.plant else ""
                print(f"  replay: python -m tests.hosts.chaos --seed {a.seed} --only-round {no}"
                      f" --length {a.length}{plant}", flush=True)
                print(hosts.dump_logs(30), flush=True)
                if not a.keep_going:
                    break
    print("totals: " + json.dumps(dict(seed=a.seed, **totals.to_json())), flush=True)
    return 1 if totals.failed_rounds else 0


if __name__ == "__main__":
    sys.exit(main())
