"""Shared by launch_process / launch_docker: one agent, N tasks in one ACCEPT, time from the
ACCEPT to the last TASK_RUNNING."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frameworks.scheduler import Scheduler, SchedulerDriver
from frameworks.tasks import ResourcesLeft
from mesos_common import task_states
from mesos_common.daemons import LocalCluster
from mesos_common.messages import Offer, TaskInfo


class Launcher(Scheduler):
    def __init__(self, n: int, make: Callable[[ResourcesLeft, int], TaskInfo | None]) -> None:
        self.n, self.make = n, make
        self.accept_at: float | None = None
        self.running_at: dict[str, float] = {}
        self.failed: list[str] = []
        self.done = threading.Event()

    def resource_offers(self, driver: Any, offers: list[Offer]) -> None:
        for offer in offers:
            if self.accept_at is not None:
                driver.decline_offer([offer.id], refuse_seconds=60)
                continue
            left = ResourcesLeft(offer)
            tasks = [self.make(left, i) for i in range(self.n)]
            if any(t is None for t in tasks):
                raise SystemExit(f"offer too small for {self.n} tasks: {offer.resources}")
            self.accept_at = time.perf_counter()
            driver.launch_tasks([offer.id], tasks)

    def status_update(self, driver: Any, status: Any) -> None:
        if status.state == task_states.RUNNING:
            self.running_at.setdefault(status.task_id, time.perf_counter())
        elif task_states.is_terminal(status.state):
            self.failed.append(f"{status.task_id}: {status.state} {status.message}")
        if len(self.running_at) + len(self.failed) >= self.n:
            self.done.set()


def corral_launch(root: Path, n: int, agent_resources: str, agent_flags: tuple[str, ...],
                  make: Callable[[ResourcesLeft, int], TaskInfo | None],
                  timeout: float = 300.0,
                  before: Callable[[LocalCluster], None] | None = None,
                  after: Callable[[LocalCluster], None] | None = None
                  ) -> tuple[float, LocalCluster]:
    """Seconds from ACCEPT to the n-th TASK_RUNNING; the cluster is left running (the caller
    stops it, after any clean-up of its own). `before` runs once the daemons are up, just
    before the framework starts, `after` once all are running, before the framework stops
    (and its tasks are killed): e.g. to read their cpu time."""
    cluster = LocalCluster(root, log_level="WARNING")
    cluster.start_master("--allocation_interval=50ms")
    cluster.start_agent(agent_resources, *agent_flags)
    sched = Launcher(n, make)
    driver = SchedulerDriver(sched, "launch-bench", cluster.master_addr)
    if before is not None:
        before(cluster)
    driver.start()
    try:
        if not sched.done.wait(timeout):
            raise SystemExit(f"only {len(sched.running_at)} of {n} running after {timeout:.0f}s")
        if sched.failed:
            raise SystemExit(f"tasks failed: {sched.failed[:5]}")
        if after is not None:
            after(cluster)
        assert sched.accept_at is not None
        return max(sched.running_at.values()) - sched.accept_at, cluster
    finally:
        driver.stop()
