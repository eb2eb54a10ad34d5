"""The master's Prometheus metrics (`GET /metrics`).

Gauges and counters are computed from the core's state at scrape time (the same figures as
`/metrics/snapshot`, plus per-role and per-framework series); the histograms are fed by the
runtime, which alone knows clocks: allocation runs, offer-to-accept time, launch latency
(ACCEPT with a LAUNCH to the agent's TASK_RUNNING) and API request durations.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import Metric

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import prom
from mesos_common import task_states as ts
from mesos_master import views
from mesos_master.core import ALLOCATE_TIMER, PERIODIC_ALLOCATE_TIMER, Master

PREFIX = "mesos"
_LIVE = "staging|starting|running|killing|unreachable"
SNAPSHOT_RULES = [
    prom.rule(rf"master/tasks_({_LIVE})", "gauge", "master_tasks", "state"),
    prom.rule(r"master/tasks_(\w+)", "counter", "master_task_terminations", "state"),
    prom.rule(r"master/slaves_(\w+)", "gauge", "master_agents", "state"),
    prom.rule(r"master/frameworks_(\w+)", "gauge", "master_frameworks", "state"),
    prom.rule(r"master/messages_(\w+)", "counter", "master_messages", "type"),
    prom.rule(r"master/valid_(\w+)", "counter", "master_valid", "kind"),
    prom.rule(r"master/invalid_(\w+)", "counter", "master_invalid", "kind"),
    prom.rule(r"master/slave_(registrations|reregistrations|removals)", "counter",
              "master_agent_events", "event"),
    prom.rule(r"(master/dropped_messages)", "counter", "master_dropped_messages", None),
    prom.rule(r"(allocator/mesos/allocation_runs)", "counter", "allocator_allocation_runs",
              None),
]
# Resource figures: one family per resource with the kind as a label.
_RESOURCE_UNITS = {"cpus": "cpus", "gpus": "gpus", "mem": "mem_megabytes",
                   "disk": "disk_megabytes"}
_KINDS = ("total", "used", "percent", "revocable_total", "revocable_used",
          "revocable_percent")
ALLOCATION_BUCKETS = (.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1)
LATENCY_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60)
PENDING_CAP = 200_000  # offers / launches remembered at most (the oldest are forgotten)


class Service(Protocol):
    @property
    def master(self) -> Master | None: ...

    @property
    def leading(self) -> bool: ...

    def runtime_metrics(self) -> dict[str, float]: ...


def _resource_families(fams: prom.Families, snapshot: dict[str, float],
                       offered: dict[str, float]) -> set[str]:
    """`mesos_master_<resource>{kind=...}`; returns the snapshot keys it took."""
    taken = set()
    for res, unit in _RESOURCE_UNITS.items():
        for kind in _KINDS:
            key = f"master/{res}_{kind}"
            if key in snapshot:
                fams.add("gauge", f"{PREFIX}_master_{unit}", f"Pooled {res} by kind",
                         snapshot[key], {"kind": kind})
                taken.add(key)
        fams.add("gauge", f"{PREFIX}_master_{unit}", f"Pooled {res} by kind",
                 offered.get(res, 0.0), {"kind": "offered"})
    return taken


def state_families(master: Master, runtime: dict[str, float], now: float) -> Iterable[Metric]:
    """Every family computed from the core's state (a pure function of it)."""
    fams = prom.Families()
    snapshot = views.metrics(master, now)
    snapshot.update(runtime)
    offered: dict[str, float] = {}
    for offer in master.offers.values():
        for name, q in offer.resources.quantities().items():
            offered[name] = offered.get(name, 0.0) + float(q)
    taken = _resource_families(fams, snapshot, offered)
    rest = {k: v for k, v in snapshot.items() if k not in taken}
    prom.snapshot_families(rest, SNAPSHOT_RULES, PREFIX, fams)
    for role in views.roles_json(master)["roles"]:
        labels = {"role": role["name"]}
        fams.add("gauge", f"{PREFIX}_master_role_weight", "Role weight", role["weight"], labels)
        fams.add("gauge", f"{PREFIX}_master_role_frameworks", "Frameworks in the role",
                 len(role["frameworks"]), labels)
        for res, unit in _RESOURCE_UNITS.items():
            fams.add("gauge", f"{PREFIX}_master_role_allocated_{unit}",
                     f"{res} allocated to the role (offers and tasks)",
                     role["allocated"].get(res, 0.0), labels)
            fams.add("gauge", f"{PREFIX}_master_role_quota_{unit}", f"{res} guaranteed",
                     role["quota"]["guarantee"].get(res, 0.0), labels)
    for fw in master.frameworks.values():
        labels = {"framework": fw.info.name, "framework_id": fw.id}
        by_state = Counter(t.state for t in fw.tasks.values())
        for state in (ts.STAGING, ts.STARTING, ts.RUNNING, ts.KILLING):
            fams.add("gauge", f"{PREFIX}_master_framework_tasks", "Live tasks of a framework",
                     by_state[state], {**labels, "state": state.removeprefix("TASK_").lower()})
        used: dict[str, float] = {}
        for t in fw.tasks.values():
            for name, q in t.info.resources.quantities().items():
                used[name] = used.get(name, 0.0) + float(q)
        for res, unit in _RESOURCE_UNITS.items():
            fams.add("gauge", f"{PREFIX}_master_framework_used_{unit}",
                     f"{res} used by the framework's live tasks", used.get(res, 0.0), labels)
        fams.add("gauge", f"{PREFIX}_master_framework_offers", "Outstanding offers",
                 len(fw.offers), labels)
    return fams


class MasterMetrics:
    """The master daemon's registry: state families at scrape time, runtime histograms."""

    def __init__(self, service: Service) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._service = service
        self.registry.register(prom.FunctionCollector(self._collect))
        self.requests = prom.request_histogram(self.registry, f"{PREFIX}_master")
        self.allocation = Histogram(
            f"{PREFIX}_master_allocation_run_seconds", "Duration of one allocation run",
            buckets=ALLOCATION_BUCKETS, registry=self.registry)
        self.offer_to_accept = Histogram(
            f"{PREFIX}_master_offer_to_accept_seconds",
            "From sending an offer to the framework's ACCEPT or DECLINE of it",
            ["decision"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.launch = Histogram(
            f"{PREFIX}_master_launch_latency_seconds",
            "From an ACCEPT launching a task to the agent's TASK_RUNNING for it",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self._offers: dict[str, float] = {}
        self._launches: dict[tuple[str, str], float] = {}

    def _collect(self) -> Iterable[Metric]:
        master = self._service.master
        if master is None or not self._service.leading:
            fams = prom.Families()
            fams.add("gauge", f"{PREFIX}_master_elected", "Mesos master/elected", 0.0)
            return fams
        return state_families(master, self._service.runtime_metrics(), time.time())

    # ------------------------------------------------------------ runtime observations

    def handled(self, event: Any, started: float) -> None:
        """After the core handled `event` (begun at perf_counter `started`)."""
        kind = type(event)
        if kind is fx.Received:
            msg = event.msg
            mk = type(msg)
            if mk is m.StatusUpdate:
                self._status(msg)
            elif mk is m.Accept:
                self._decided(msg.offer_ids, "accept")
                now = time.monotonic()
                for op in msg.operations:
                    for task in op.tasks:
                        _remember(self._launches, (msg.framework_id, task.task_id), now)
            elif mk is m.Decline:
                self._decided(msg.offer_ids, "decline")
        elif kind is fx.TimerFired and event.key in (ALLOCATE_TIMER, PERIODIC_ALLOCATE_TIMER):
            self.allocation.observe(time.perf_counter() - started)

    def sent(self, msg: Any) -> None:
        kind = type(msg)
        if kind is m.Offers:
            now = time.monotonic()
            for offer in msg.offers:
                _remember(self._offers, offer.id, now)
        elif kind is m.Rescind:
            self._offers.pop(msg.offer_id, None)

    def _decided(self, offer_ids: Iterable[str], decision: str) -> None:
        now = time.monotonic()
        for oid in offer_ids:
            at = self._offers.pop(oid, None)
            if at is not None:
                self.offer_to_accept.labels(decision).observe(now - at)

    def _status(self, msg: m.StatusUpdate) -> None:
        state = msg.status.state
        if state == ts.RUNNING:
            at = self._launches.pop((msg.framework_id, msg.status.task_id), None)
            if at is not None:
                self.launch.observe(time.monotonic() - at)
        elif ts.is_terminal(state):
            self._launches.pop((msg.framework_id, msg.status.task_id), None)


def _remember(pending: dict[Any, float], key: Any, now: float) -> None:
    if len(pending) >= PENDING_CAP:
        pending.pop(next(iter(pending)))
    pending[key] = now
