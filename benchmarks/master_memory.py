"""Master memory (RSS) with many agents and tasks, on real sockets.

A real master process; `--agents` simulated agents in one fleet process (mesos_agent.fleet:
real agent cores, one ZeroMQ socket each, tasks that never exit); one SDK framework that
packs `--tasks` tasks onto them. Reports the master's RSS when every task is RUNNING, and
its RSS with the agents alone for comparison. Then, with the cluster still up (agents
heartbeating), `--state_requests` GETs of /master/state one after another while a poller
reads /metrics/snapshot: `state_p99_ms`, `state_bytes`, the master's worst event-loop lag
during the requests (`state_loop_lag_max_ms`, from `master/event_loop_lag_max_ms`) and the
agents marked disconnected / unreachable / re-registered meanwhile (all must stay 0).

    python -m benchmarks.master_memory --agents 10000 --tasks 100000
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from benchmarks._common import finish, percentile, say
from benchmarks._fleet import agent_resources, start_fleets
from frameworks.scheduler import Scheduler, SchedulerDriver
from frameworks.tasks import ResourcesLeft
from mesos_common import task_states
from mesos_common.daemons import LocalCluster


def metrics(addr: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{addr}/metrics/snapshot", timeout=60) as r:
        return json.loads(r.read())


def metric(addr: str, key: str) -> float:
    return float(metrics(addr)[key])


class HealthPoller(threading.Thread):
    """Reads /metrics/snapshot every `interval` s; keeps the worst of each watched figure."""

    KEYS = ("master/event_loop_lag_max_ms", "master/slaves_disconnected",
            "master/slaves_unreachable", "master/slave_reregistrations",
            "master/gc_pause_max_ms")

    def __init__(self, addr: str, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.addr, self.interval = addr, interval
        self.worst = {k: 0.0 for k in self.KEYS}
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.wait(self.interval):
            snap = metrics(self.addr)
            for k in self.KEYS:
                self.worst[k] = max(self.worst[k], float(snap.get(k, 0.0)))


def measure_state(addr: str, requests: int) -> dict[str, float]:
    """GET /master/state `requests` times while HealthPoller watches the master."""
    before = metrics(addr)
    poller = HealthPoller(addr)
    poller.start()
    times, size = [], 0
    try:
        for i in range(requests):
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"http://{addr}/master/state", timeout=600) as r:
                size = len(r.read())
            times.append(time.perf_counter() - t0)
            say(f"/master/state {i + 1}/{requests}: {size / 1e6:.1f} MB in {times[-1]:.2f}s")
        time.sleep(1.0)  # one more poll covers the end of the last request
    finally:
        poller.stop_flag.set()
        poller.join()
    w = poller.worst
    return {"state_p50_ms": round(percentile(times, 50) * 1000, 1),
            "state_p99_ms": round(percentile(times, 99) * 1000, 1), "state_bytes": size,
            "state_requests": requests,
            "idle_loop_lag_max_ms": round(before.get("master/event_loop_lag_max_ms", 0.0), 1),
            "state_loop_lag_max_ms": round(w["master/event_loop_lag_max_ms"], 1),
            "state_gc_pause_max_ms": round(w["master/gc_pause_max_ms"], 1),
            "agents_disconnected": int(w["master/slaves_disconnected"]),
            "agents_unreachable": int(w["master/slaves_unreachable"]),
            "agents_reregistered": int(w["master/slave_reregistrations"]
                                       - before.get("master/slave_reregistrations", 0.0))}



class Packer(Scheduler):
    """Fill every offer with long-running tiny tasks until `n` are RUNNING. Launches the
    master drops (an offer that expired while this framework was busy) are made again;
    retried RUNNING updates are counted once."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.launched = 0  # launched and not (yet) lost
        self.next_id = 0
        self.running: set[str] = set()
        self.relaunched = 0
        self.lost: set[str] = set()
        self.revived = 0.0
        self.done = threading.Event()
        self.lock = threading.Lock()

    def resource_offers(self, driver, offers):
        for offer in offers:
            left, tasks = ResourcesLeft(offer), []
            with self.lock:
                while self.launched < self.n:
                    t = left.take(f"t{self.next_id}", "run-forever", cpus=0.01, mem=1)
                    if t is None:
                        break
                    tasks.append(t)
                    self.launched += 1
                    self.next_id += 1
            if tasks:
                driver.launch_tasks([offer.id], tasks, refuse_seconds=3600)
            elif self.launched >= self.n:  # all launched, some may yet come back LOST
                driver.decline_offer([offer.id], refuse_seconds=30)
            else:  # full
                driver.decline_offer([offer.id], refuse_seconds=3600)

    def status_update(self, driver, status):
        with self.lock:
            if status.state == task_states.RUNNING:
                self.running.add(status.task_id)
                if len(self.running) >= self.n:
                    self.done.set()
            elif task_states.is_terminal(status.state) and status.task_id not in self.running \
                    and status.task_id not in self.lost:
                self.lost.add(status.task_id)
                self.launched -= 1  # never ran: launch another in its place
                self.relaunched += 1
                if time.monotonic() - self.revived > 1.0:  # declined agents are filtered
                    self.revived = time.monotonic()
                    driver.revive_offers()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--state_requests", type=int, default=5)
    args = ap.parse_args()
    res = agent_resources(args.tasks, args.agents)
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), log_level="WARNING")
        fleets = []
        try:
            master = cluster.start_master("--allocation_interval=200ms")
            master_ps = psutil.Process(master.pid)
            say(f"starting {args.agents} simulated agents")
            t0 = time.perf_counter()
            fleets = start_fleets(cluster, args.agents, res)
            while metric(cluster.master_addr, "master/slaves_active") < args.agents:
                if time.perf_counter() - t0 > args.timeout:
                    raise SystemExit("agents did not all register in time")
                time.sleep(0.5)
            register_s = time.perf_counter() - t0
            rss_agents = master_ps.memory_info().rss / 2**20
            say(f"{args.agents} agents registered in {register_s:.1f}s; "
                f"master RSS {rss_agents:.0f} MiB")
            sched = Packer(args.tasks)
            driver = SchedulerDriver(sched, "memory-bench", cluster.master_addr)
            t1 = time.perf_counter()
            driver.start()
            if not sched.done.wait(args.timeout):
                raise SystemExit(f"only {len(sched.running)} of {args.tasks} tasks running in time")
            launch_s = time.perf_counter() - t1
            rss = master_ps.memory_info().rss / 2**20
            say(f"{args.tasks} tasks running in {launch_s:.1f}s; master RSS {rss:.0f} MiB")
            say("waiting 10 s for the launch burst to leave the lag window")
            time.sleep(10)
            state = measure_state(cluster.master_addr, args.state_requests)
            rss_after_state = master_ps.memory_info().rss / 2**20
            say(f"/master/state p99 {state['state_p99_ms']:.0f} ms; loop lag max "
                f"{state['state_loop_lag_max_ms']:.0f} ms; RSS after {rss_after_state:.0f} MiB")
            driver.stop()
        finally:
            for fleet in fleets:
                fleet.stop()
            cluster.stop()
    finish("master_memory", {
        "agents": args.agents, "tasks": args.tasks, "rss_mib": round(rss),
        "rss_agents_only_mib": round(rss_agents), "register_s": round(register_s, 2),
        "launch_s": round(launch_s, 2), "tasks_per_s": round(args.tasks / launch_s),
        "relaunched": sched.relaunched,
        **state, "rss_after_state_mib": round(rss_after_state)})


if __name__ == "__main__":
    main()
