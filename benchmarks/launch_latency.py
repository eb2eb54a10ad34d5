"""ACCEPT -> TASK_RUNNING latency for N `sleep 60` tasks launched in one ACCEPT on one agent.

Real master and agent processes, real ZeroMQ, the real SDK. Baseline in the same run: the time
a plain `subprocess.Popen` loop takes to start the same N processes.

    python -m benchmarks.launch_latency --tasks 100
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import _launch
from benchmarks._common import finish, percentile, say
from frameworks.scheduler import SchedulerDriver
from mesos_common import task_states
from mesos_common.daemons import LocalCluster


class Launcher(_launch.Launcher):
    """Also records when each task reported TASK_STARTING."""

    def __init__(self, n: int) -> None:
        super().__init__(n, lambda left, i: left.take(f"sleep-{i}", "sleep 60", cpus=0.01, mem=1))
        self.starting_at: dict[str, float] = {}

    def status_update(self, driver, status):
        if status.state == task_states.STARTING:
            self.starting_at.setdefault(status.task_id, time.perf_counter())
        super().status_update(driver, status)


def popen_baseline(n: int) -> tuple[list[float], float]:
    procs, lat = [], []
    t0 = time.perf_counter()
    try:
        for _ in range(n):
            s = time.perf_counter()
            procs.append(subprocess.Popen(["sh", "-c", "sleep 60"], start_new_session=True))
            lat.append(time.perf_counter() - s)
        total = time.perf_counter() - t0
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
    return lat, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100)
    args = ap.parse_args()
    n = args.tasks
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), log_level="WARNING")
        try:
            say("starting master and one agent")
            cluster.start_master("--allocation_interval=50ms")
            cluster.start_agent(f"cpus:{n * 0.01 + 1:.2f};mem:{n + 256};disk:1024;"
                                "ports:[31000-31010]")
            sched = Launcher(n)
            driver = SchedulerDriver(sched, "launch-latency", cluster.master_addr)
            driver.start()
            say(f"launching {n} tasks in one ACCEPT")
            if not sched.done.wait(120):
                raise SystemExit(f"only {len(sched.running_at)} of {n} tasks running after 120 s")
            driver.stop()
        finally:
            cluster.stop()
    if sched.failed:
        raise SystemExit(f"tasks failed: {sched.failed[:5]}")
    accept_at = sched.accept_at
    assert accept_at is not None  # every task ran, so the offer was accepted
    lat = [(t - accept_at) * 1000 for t in sched.running_at.values()]
    starting = [(t - accept_at) * 1000 for t in sched.starting_at.values()]
    say("baseline: the same processes through subprocess.Popen")
    base, base_total = popen_baseline(n)
    finish("launch_latency", {
        "tasks": n, "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "all_running_ms": round(max(lat), 2), "first_running_ms": round(min(lat), 2),
        "starting_p50_ms": round(percentile(starting, 50), 2) if starting else None,
        "popen_p50_ms": round(percentile([x * 1000 for x in base], 50), 3),
        "popen_total_ms": round(base_total * 1000, 2),
    })


if __name__ == "__main__":
    main()
