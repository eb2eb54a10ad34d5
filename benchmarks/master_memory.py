"""Master memory (RSS) with many agents and tasks, on real sockets.

A real master process; `--agents` simulated agents in one fleet process (mesos_agent.fleet:
real agent cores, one ZeroMQ socket each, tasks that never exit); one SDK framework that
packs `--tasks` tasks onto them. Reports the master's RSS when every task is RUNNING, and
its RSS with the agents alone for comparison.

    python -m benchmarks.master_memory --agents 10000 --tasks 100000
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks._common import finish, say
from benchmarks._fleet import agent_resources, start_fleets
from frameworks.scheduler import Scheduler, SchedulerDriver
from frameworks.tasks import ResourcesLeft
from mesos_common import task_states
from mesos_common.daemons import LocalCluster
import json
import urllib.request


def metric(addr: str, key: str) -> float:
    with urllib.request.urlopen(f"http://{addr}/metrics/snapshot", timeout=60) as r:
        return float(json.loads(r.read())[key])




class Packer(Scheduler):
    """Fill every offer with long-running tiny tasks until `n` are launched."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.launched = 0
        self.running = 0
        self.done = threading.Event()
        self.lock = threading.Lock()

    def resource_offers(self, driver, offers):
        for offer in offers:
            left, tasks = ResourcesLeft(offer), []
            while self.launched < self.n:
                t = left.take(f"t{self.launched}", "run-forever", cpus=0.01, mem=1)
                if t is None:
                    break
                tasks.append(t)
                self.launched += 1
            if tasks:
                driver.launch_tasks([offer.id], tasks, refuse_seconds=3600)
            else:
                driver.decline_offer([offer.id], refuse_seconds=3600)

    def status_update(self, driver, status):
        if status.state == task_states.RUNNING:
            with self.lock:
                self.running += 1
                if self.running >= self.n:
                    self.done.set()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--timeout", type=float, default=900)
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
            say(f"{args.agents} agents registered in {register_s:.1f}s; master RSS {rss_agents:.0f} MiB")
            sched = Packer(args.tasks)
            driver = SchedulerDriver(sched, "memory-bench", cluster.master_addr)
            t1 = time.perf_counter()
            driver.start()
            if not sched.done.wait(args.timeout):
                raise SystemExit(f"only {sched.running} of {args.tasks} tasks running in time")
            launch_s = time.perf_counter() - t1
            rss = master_ps.memory_info().rss / 2**20
            say(f"{args.tasks} tasks running in {launch_s:.1f}s; master RSS {rss:.0f} MiB")
            t2 = time.perf_counter()
            with urllib.request.urlopen(f"http://{cluster.master_addr}/master/state",
                                        timeout=300) as r:
                size = len(r.read())
            state_s = time.perf_counter() - t2
            driver.stop()
        finally:
            for fleet in fleets:
                fleet.stop()
            cluster.stop()
    finish("master_memory", {
        "agents": args.agents, "tasks": args.tasks, "rss_mib": round(rss),
        "rss_agents_only_mib": round(rss_agents), "register_s": round(register_s, 2),
        "launch_s": round(launch_s, 2), "tasks_per_s": round(args.tasks / launch_s),
        "state_bytes": size, "state_s": round(state_s, 3)})


if __name__ == "__main__":
    main()
