"""Instance records: what Marathon knows about each task it launched, fed by status updates.

Records are plain attrs objects, serialised to the store on every change, and rendered
in the Task JSON shape of Marathon 1.10 (keys marathon-python 0.13.0 can parse).
"""
from __future__ import annotations

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
    """Marathon-side health of one task for one health check."""

    alive: bool = False
    consecutive_failures: int = 0
    first_success: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_failure_cause: str | None = None

    def to_json(self, task_id: str, instance_id: str) -> dict[str, Any]:
        ts = (lambda t: None if t is None else timestamp(t))
        return {"alive": self.alive, "consecutiveFailures": self.consecutive_failures,
                "firstSuccess": ts(self.first_success), "lastSuccess": ts(self.last_success),
                "lastFailure": ts(self.last_failure), "taskId": task_id,
                "lastFailureCause": self.last_failure_cause, "instanceId": instance_id}


@define
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
        d = attrs.asdict(self)
        d["health"] = []  # soft state: rebuilt by the checks after a restart
        return d

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> TaskRecord:
        d = dict(d)
        d.pop("health", None)
        return cls(**d)

    def to_json(self, service_ports: list[int], n_checks: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "appId": self.app_id, "host": self.host, "slaveId": self.agent_id,
            "state": self.state, "stagedAt": timestamp(self.staged_at),
            "version": self.version, "ports": list(self.ports),
            "servicePorts": list(service_ports),
            "ipAddresses": [{"ipAddress": self.host, "protocol": "IPv4"}],
            "healthCheckResults": [h.to_json(self.id, self.instance_id)
                                   for h in self.health[:n_checks]],
            "localVolumes": [], "role": "*"}
        if self.started_at is not None:
            out["startedAt"] = timestamp(self.started_at)
        return out
