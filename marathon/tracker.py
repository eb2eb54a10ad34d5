"""Instance records: what Marathon knows about each task it launched, fed by status updates.

Records are plain attrs objects, serialised to the store on every change, and rendered
in the Task JSON shape of Marathon 1.10 (keys marathon-python 0.13.0 can parse).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
from attrs import define

from marathon.model import timestamp

ACTIVE = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING",
                    "TASK_UNREACHABLE"})
TERMINAL = frozenset({"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR",
                      "TASK_LOST", "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR",
                      "TASK_UNKNOWN"})
FAILED = frozenset({"TASK_FAILED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"})


@define
class Health:
    """The health of one task for one health check (Marathon's probes or the agent's)."""

    alive: bool = False
    consecutive_failures: int = 0
    first_success: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_failure_cause: str | None = None

    def record(self, alive: bool, now: float, cause: str = "") -> None:
        """One result that counts (past any grace period)."""
        if alive:
            self.alive, self.consecutive_failures, self.last_success = True, 0, now
            if self.first_success is None:
                self.first_success = now
        else:
            self.alive = False
            self.consecutive_failures += 1
            self.last_failure, self.last_failure_cause = now, cause

    def to_json(self, task_id: str, instance_id: str) -> dict[str, Any]:
        def ts(t: float | None) -> str | None:
            return (None if t is None else timestamp(t))
        return {"alive": self.alive, "consecutiveFailures": self.consecutive_failures,
                "firstSuccess": ts(self.first_success), "lastSuccess": ts(self.last_success),
                "lastFailure": ts(self.last_failure), "taskId": task_id,
                "lastFailureCause": self.last_failure_cause, "instanceId": instance_id}


# what a task counts as, per app: (state, killing, unreachable_inactive, config version)
Key = tuple[str, bool, bool, str]
_COUNTED = frozenset({"state", "killing", "unreachable_inactive", "config_version", "version",
                      "draining"})
DRAINING = "<draining>"  # the config version a task on a draining agent counts as: old
STAGED = frozenset({"TASK_STAGING", "TASK_STARTING"})


def _key(t: TaskRecord, name: str | None = None, value: Any = None) -> Key:
    d: dict[str, Any] = {
        "state": t.state, "killing": t.killing, "unreachable_inactive": t.unreachable_inactive,
        "config_version": t.config_version, "version": t.version, "draining": t.draining}
    if name is not None:
        d[name] = value
    return (d["state"], d["killing"], d["unreachable_inactive"],
            DRAINING if d["draining"] else d["config_version"] or d["version"])


class Tally:
    """Per-app counts of tasks by `Key`, kept current on every change of a counted field
    (TaskRecord's on_setattr hook), so that views and the control loop read counts in
    O(distinct keys) instead of scanning tens of thousands of tasks."""

    def __init__(self) -> None:
        self.by_app: dict[str, Counter[Key]] = {}

    def add(self, t: TaskRecord) -> None:
        t.tally = self
        self.by_app.setdefault(t.app_id, Counter())[_key(t)] += 1

    def remove(self, t: TaskRecord) -> None:
        if t.tally is not self:
            return
        t.tally = None
        self._dec(t.app_id, _key(t))

    def _dec(self, app_id: str, key: Key) -> None:
        c = self.by_app[app_id]
        c[key] -= 1
        if c[key] <= 0:
            del c[key]
            if not c:
                del self.by_app[app_id]

    def changing(self, t: TaskRecord, name: str, value: Any) -> None:
        self._dec(t.app_id, _key(t))
        self.by_app.setdefault(t.app_id, Counter())[_key(t, name, value)] += 1

    def counts(self, app_id: str) -> Counter[Key]:
        return self.by_app.get(app_id) or Counter()

    def state_count(self, app_id: str, states: frozenset[str] | set[str]) -> int:
        return sum(n for k, n in self.counts(app_id).items() if k[0] in states)

    def all_current(self, app_id: str, config_version: str) -> tuple[int, int] | None:
        """(active, running) when every active task of the app runs `config_version` and
        none is being killed or replaced (deployment._all_current without health); else None."""
        live = running = 0
        for (state, killing, inactive, cv), n in self.counts(app_id).items():
            if state not in ACTIVE:
                continue
            if killing or inactive or cv != config_version:
                return None
            live += n
            running += n if state == "TASK_RUNNING" else 0
        return live, running

    def any_in(self, state: str) -> bool:
        return any(k[0] == state for c in self.by_app.values() for k in c)


def _on_set(t: TaskRecord, attrib: attrs.Attribute[Any], value: Any) -> Any:
    if t.tally is not None and attrib.name in _COUNTED and getattr(t, attrib.name) != value:
        t.tally.changing(t, attrib.name, value)
    return value


@define(on_setattr=[attrs.setters.convert, attrs.setters.validate, _on_set])
class TaskRecord:
    id: str
    app_id: str
    version: str
    agent_id: str
    host: str
    ports: list[int]
    staged_at: float
    state: str = "TASK_STAGING"
    started_at: float | None = None
    killing: bool = False  # we asked for it to die (scale down, restart, delete)
    health: list[Health] = attrs.field(factory=list)
    unreachable_since: float | None = None
    config_version: str = ""  # the app's lastConfigChangeAt when launched
    unreachable_inactive: bool = False  # replaced per unreachableStrategy while away
    mesos_healthy: bool | None = None  # from the agent's status updates (executor checks)
    # the agent-run check's history, for healthCheckResults (soft state, as `health`)
    mesos_health: Health | None = attrs.field(default=None, eq=False)
    ready: bool = False  # its readiness check passed (apps with readinessChecks)
    readiness: dict[str, Any] | None = None  # its last readiness probe (Marathon's JSON)
    draining: bool = False  # its agent is wanted back: replace it, then kill it
    tally: Tally | None = attrs.field(default=None, eq=False, repr=False)  # its owner's counts

    @property
    def instance_id(self) -> str:
        return self.id.rsplit("._app.", 1)[0]

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def running(self) -> bool:
        return self.state == "TASK_RUNNING"

    def healthy(self, n_checks: int, executor_checks: bool = False) -> bool | None:
        """True when every health check passes; None when nothing is known (no checks, or
        only executor checks the agent has not reported on)."""
        states = []
        if n_checks:
            states.append(len(self.health) >= n_checks
                          and all(h.alive for h in self.health[:n_checks]))
        if executor_checks and self.mesos_healthy is not None:
            states.append(self.mesos_healthy)
        return all(states) if states else None

    def to_store(self) -> dict[str, Any]:
        # by hand rather than attrs.asdict: this runs for every task change at scale
        return {"id": self.id, "app_id": self.app_id, "version": self.version,
                "agent_id": self.agent_id, "host": self.host, "ports": list(self.ports),
                "staged_at": self.staged_at, "state": self.state,
                "started_at": self.started_at, "killing": self.killing,
                "health": [],  # soft state: rebuilt by the checks after a restart
                "mesos_health": None,  # soft state too (mesos_healthy is kept)
                "unreachable_since": self.unreachable_since,
                "config_version": self.config_version,
                "unreachable_inactive": self.unreachable_inactive,
                "mesos_healthy": self.mesos_healthy, "ready": self.ready,
                "readiness": self.readiness, "draining": self.draining}

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> TaskRecord:
        d = dict(d)
        d.pop("health", None)
        d.pop("mesos_health", None)
        d.pop("tally", None)
        return cls(**d)

    def _health_results(self, n_checks: int) -> list[Health]:
        """Marathon's own probes' results, then the agent-run check's (a restarted
        Marathon knows only its last verdict)."""
        out = self.health[:n_checks]
        if self.mesos_health is not None:
            out.append(self.mesos_health)
        elif self.mesos_healthy is not None:
            out.append(Health(alive=self.mesos_healthy))
        return out

    def to_json(self, service_ports: list[int], n_checks: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "appId": self.app_id, "host": self.host, "slaveId": self.agent_id,
            "state": self.state, "stagedAt": timestamp(self.staged_at),
            "version": self.version, "ports": list(self.ports),
            "servicePorts": list(service_ports),
            "ipAddresses": [{"ipAddress": self.host, "protocol": "IPv4"}],
            "healthCheckResults": [h.to_json(self.id, self.instance_id)
                                   for h in self._health_results(n_checks)],
            "localVolumes": [], "role": "*"}
        if self.started_at is not None:
            out["startedAt"] = timestamp(self.started_at)
        return out

