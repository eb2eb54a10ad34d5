"""Whether a RunTask may start here now (a mixin of `core.Agent`; pure, like the core).

ZeroMQ drops what was queued on a broken connection without telling anyone, and a dead
master's late messages can still be read, so the master resends RunTask and the agent must
refuse copies that could start a task twice or behind the master's back: a RunTask of another
admission epoch, one for a task that already ran here, or any while not registered. And the
agent never runs more than its capacity: a RunTask that does not fit beside processes still
being killed waits (`_held`) until they are gone. The capacity is `--resources` with the
dynamic reservations the master made (`CheckpointResources`) in it: a task may use the
reserved resources of its role.
"""
from __future__ import annotations

from collections import deque
from typing import Any

from mesos_agent.core_base import AgentBase
from mesos_agent.records import GONE, RUNNING, TaskEntry
from mesos_common.effects import Log
from mesos_common.messages import CheckpointResources
from mesos_common.resources import EMPTY, Resources

DUPLICATE_RUN = "duplicate RunTask"
MAX_REMEMBERED_RUNS = 10_000
Effects = list[Any]


class AdmissionRules(AgentBase):
    """Uses the Agent's state and its `_on_run_task` (declared in core_base.AgentBase)."""

    reserved: Resources = EMPTY

    def total(self) -> Resources:
        """What this agent offers: `--resources` with the dynamic reservations applied."""
        return self.config.resources - self.reserved.flatten() + self.reserved

    def _on_checkpoint_resources(self, msg: CheckpointResources, now: float) -> Effects:
        reserved = msg.reserved
        if not self.config.resources.contains(reserved.flatten()):
            return [Log("error", f"reservations {reserved!r} exceed our resources; ignored")]
        if reserved != self.reserved:
            self.reserved, self._id_dirty = reserved, True
        return [Log("info", f"dynamic reservations now {reserved!r}")]

    def _refuse_run(self, fid: str | None, task_id: str, epoch: float) -> str | None:
        if not fid:
            return "RunTask without a framework id"
        if epoch != self.epoch:
            return (f"stale RunTask (sent for admission {epoch}, we are at {self.epoch}): "
                    "the master may have given the task up")
        if self.terminating:
            return "the agent is shutting down"
        if self.agent_id is None or self.state != RUNNING:
            return f"not registered with the current master ({self.state})"  # as Mesos
        entry = self._tasks.get(task_id)
        if entry is not None:
            return (DUPLICATE_RUN if entry.framework_id == fid
                    else f"task id already used by framework {entry.framework_id}")
        if task_id in self._draining or self.updates.pending(task_id):
            return "task id still in use on this agent"
        if (fid, task_id) in self._ran:
            return DUPLICATE_RUN
        return None

    def _in_use(self) -> Resources:
        """What running, launching and draining processes hold (cached by the core: it
        resets `_use_cache` whenever a process or a draining entry comes or goes)."""
        if self._use_cache is None:
            self._use_cache = self._sum_in_use()
        return self._use_cache

    def _sum_in_use(self) -> Resources:
        used = Resources()
        for e in self._tasks.values():
            if e.process != GONE:
                used = used + e.task.resources
        for r in self._draining_res.values():
            used = used + r
        for ex in self._executors.values():
            used = used + ex.info.resources
        return used

    def _launch_held(self, now: float) -> Effects:
        """Retry held RunTasks in arrival order now that a killed process is gone."""
        held, self._held = self._held, deque()
        effects: Effects = []
        for msg in held:
            effects += self._on_run_task(msg, now)
        return effects

    def _remember_ran(self, entry: TaskEntry) -> None:
        self._ran[(entry.framework_id, entry.task_id)] = None
        if len(self._ran) > MAX_REMEMBERED_RUNS:
            del self._ran[next(iter(self._ran))]

