"""The agent core's health-check rules (a mixin of `core.Agent`; pure, like the core).

Mesos semantics: the first result, and every change of health afterwards, is a TASK_RUNNING
update carrying `healthy` (reason REASON_TASK_HEALTH_CHECK_STATUS_UPDATED); failures before
the first success inside `grace_period_seconds` do not count; `consecutive_failures` failed
checks in a row kill the task (it ends TASK_KILLED, healthy=false).
"""
from __future__ import annotations

from typing import Any

from mesos_agent.core_base import AgentBase
from mesos_agent.events import HealthResult, KillProcess, StartHealthCheck, StopHealthCheck
from mesos_agent.records import TaskEntry
from mesos_common import task_states as ts
from mesos_common.effects import Log

Effects = list[Any]


class HealthRules(AgentBase):
    """Uses the Agent's `_tasks`, `_frameworks`, `_update`, `_touch`, `_grace`, `_run_as`."""

    def _on_health(self, event: HealthResult, now: float) -> Effects:
        """Mesos semantics: a change of health is a RUNNING update with `healthy`; failures
        in the grace period (before the first success) do not count; too many in a row kill."""
        entry = self._tasks.get(event.task_id)
        check = entry.task.health_check if entry is not None else None
        if entry is None or check is None or entry.state != ts.RUNNING or entry.kill_requested:
            return []
        if event.healthy:
            entry.health_failures = 0
            if entry.healthy is True:
                return []
            entry.healthy = True
            return self._update(entry, ts.RUNNING, now, "Task is healthy",
                                "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED")
        since = entry.running_since if entry.running_since is not None else now
        if entry.healthy is None and now - since < check.grace_period_seconds:
            return [Log("debug", f"task {entry.task_id}: health check failed in its grace "
                                 f"period: {event.message}")]
        entry.health_failures += 1
        effects: Effects = []
        if entry.healthy is not False:
            entry.healthy = False
            effects += self._update(entry, ts.RUNNING, now,
                                    f"Task is unhealthy: {event.message}",
                                    "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED")
        if entry.health_failures >= check.consecutive_failures:
            entry.kill_requested = entry.health_killed = True
            self._touch(entry.task_id)
            effects += [Log("warning", f"task {entry.task_id} failed {entry.health_failures} "
                                       f"health checks in a row; killing it"),
                        StopHealthCheck(entry.task_id),
                        KillProcess(entry.task_id, self._grace(entry))]
        return effects

    def _start_health(self, entry: TaskEntry, now: float) -> Effects:
        entry.running_since = now
        check = entry.task.health_check
        if check is None or entry.kill_requested:
            return []
        user = self._run_as(entry.task, self._frameworks[entry.framework_id])
        return [StartHealthCheck(entry.task_id, check, entry.sandbox, user)]
