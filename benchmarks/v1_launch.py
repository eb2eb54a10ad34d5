"""N command tasks through a pymesos 0.3.15 framework (Mesos v1 scheduler HTTP API) on
simulated agents, against the same N through the ZeroMQ SDK on a fresh cluster of the same
shape in the same run; plus the event rate of a v1 operator SUBSCRIBE stream watching the
pymesos run.

    python -m benchmarks.v1_launch --tasks 1000
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests

from benchmarks._common import finish, say
from benchmarks._fleet import agent_resources, start_fleets
from frameworks.scheduler import Scheduler, SchedulerDriver
from frameworks.tasks import ResourcesLeft
from mesos_common import task_states
from mesos_common.daemons import LocalCluster
from mesos_common.recordio import split
from tests.v1.pymesos_env import pymesos_python

PYMESOS_LAUNCH = Path(__file__).resolve().parents[1] / "tests" / "v1" / "pymesos_launch.py"


class SdkLauncher(Scheduler):
    def __init__(self, n: int) -> None:
        self.n, self.next, self.running = n, 0, 0
        self.first_accept: float | None = None
        self.done = threading.Event()

    def resource_offers(self, driver, offers):
        for offer in offers:
            left, tasks = ResourcesLeft(offer), []
            while self.next < self.n:
                t = left.take(f"t{self.next}", "sleep 600", cpus=0.01, mem=1)
                if t is None:
                    break
                tasks.append(t)
                self.next += 1
            if tasks:
                self.first_accept = self.first_accept or time.time()
                driver.launch_tasks([offer.id], tasks)
            else:
                driver.decline_offer([offer.id], refuse_seconds=60)

    def status_update(self, driver, status):
        if status.state == task_states.RUNNING:
            self.running += 1
            if self.running >= self.n:
                self.done.set()


class OperatorWatch(threading.Thread):
    """A v1 operator SUBSCRIBE stream, counting events (not heartbeats) as they arrive."""

    def __init__(self, master: str) -> None:
        super().__init__(daemon=True)
        self.master, self.events, self.first, self.last = master, 0, 0.0, 0.0
        self.open = threading.Event()

    def run(self) -> None:
        with requests.post(f"http://{self.master}/api/v1", json={"type": "SUBSCRIBE"},
                           stream=True, timeout=600) as r:
            buf = b""
            for chunk in r.iter_content(chunk_size=None):
                self.open.set()
                events, buf = split(buf + chunk)
                for e in events:
                    if e["type"] not in ("HEARTBEAT", "SUBSCRIBED"):
                        now = time.time()
                        self.first = self.first or now
                        self.last = now
                        self.events += 1


def _cluster(root: Path, n: int, agents: int) -> tuple[LocalCluster, list]:
    cluster = LocalCluster(root, log_level="WARNING")
    cluster.start_master("--allocation_interval=50ms")
    fleets = start_fleets(cluster, agents, agent_resources(n, agents))
    deadline = time.time() + 120
    while time.time() < deadline:
        state = requests.get(f"http://{cluster.master_addr}/master/state", timeout=30).json()
        if len(state["slaves"]) == agents:
            return cluster, fleets
        time.sleep(0.2)
    raise SystemExit(f"only {len(state['slaves'])} of {agents} agents registered")


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a live process (0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=10)
    args = ap.parse_args()
    n, agents = args.tasks, args.agents
    py = pymesos_python()
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        say(f"pymesos (v1 HTTP): {n} tasks on {agents} simulated agents")
        cluster, fleets = _cluster(Path(tmp) / "v1", n, agents)
        try:
            watch = OperatorWatch(cluster.master_addr)
            watch.start()
            watch.open.wait(10)
            client_before = _children_cpu()
            master_before = _cpu_of(cluster.master.pid if cluster.master else 0)
            r = subprocess.run([str(py), "-I", str(PYMESOS_LAUNCH), cluster.master_addr, str(n),
                                "300"], capture_output=True, text=True, timeout=400)
            client_cpu = _children_cpu() - client_before
            master_cpu = _cpu_of(cluster.master.pid if cluster.master else 0) - master_before
            if r.returncode != 0:
                raise SystemExit(f"pymesos framework failed: {r.stderr[-2000:]}")
            v1 = json.loads(r.stdout.strip().splitlines()[-1])
            if not v1["ok"]:
                raise SystemExit(f"pymesos framework: {v1}")
            time.sleep(0.5)  # the stream's last events
        finally:
            for f in fleets:
                f.stop()
            cluster.stop()
        say(f"ZeroMQ SDK: {n} tasks on {agents} simulated agents")
        cluster, fleets = _cluster(Path(tmp) / "zmq", n, agents)
        try:
            sched = SdkLauncher(n)
            driver = SchedulerDriver(sched, "zmq-launch", cluster.master_addr)
            started = time.time()
            driver.start()
            if not sched.done.wait(300):
                raise SystemExit(f"SDK: only {sched.running} of {n} running")
            end = time.time()
            driver.stop()
        finally:
            for f in fleets:
                f.stop()
            cluster.stop()
    sdk_accept = end - (sched.first_accept or end)
    rate = watch.events / (watch.last - watch.first) if watch.last > watch.first else 0.0
    finish("v1_launch", {
        "tasks": n, "agents": agents,
        # Where the pymesos run's time went: CPU seconds of the pymesos process and of the
        # master while it ran (the rest is waiting: round trips, the machine's other load).
        "v1_client_cpu_s": round(client_cpu, 3), "v1_master_cpu_s": round(master_cpu, 3),
        "v1_accept_to_running_s": round(v1["accept_to_running_s"], 3),
        "v1_subscribe_to_running_s": round(v1["subscribe_to_running_s"], 3),
        "sdk_accept_to_running_s": round(sdk_accept, 3),
        "sdk_subscribe_to_running_s": round(end - started, 3),
        "throughput_ratio": round(sdk_accept / v1["accept_to_running_s"], 3)
        if v1["accept_to_running_s"] else None,
        "operator_events": watch.events,
        "operator_events_per_s": round(rate, 1),
    })


if __name__ == "__main__":
    main()
