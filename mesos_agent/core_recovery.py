"""The agent core's recovery rules (a mixin of `core.Agent`; pure, like the core).

After a restart the runtime reads the checkpoint, asks the containerizers to reattach and
feeds one `Recovered` event before connecting to a master: tasks still running are adopted
(and reported RUNNING if we died before saying so), tasks that ended while we were down get
their terminal update, and with --recover=cleanup every survivor is killed.
"""
from __future__ import annotations

import signal as _signal
from typing import Any

from mesos_agent import records
from mesos_agent.core_base import AgentBase
from mesos_agent.core_executors import is_executor_container
from mesos_agent.events import KillProcess
from mesos_agent.records import ALIVE, DISCONNECTED, GONE, TaskEntry
from mesos_agent.recovery import CLEANUP, EXITED_FOUND, RUNNING_FOUND, Recovered, RecoveredTask
from mesos_common import task_states as ts
from mesos_common.effects import Log

Effects = list[Any]


class RecoveryRules(AgentBase):
    """Uses the Agent's state, `_touch`, `_update`, `_grace`, the health rules'
    `_start_health` and the executor rules' recovery (declared in core_base.AgentBase)."""

    def _recovered(self, event: Recovered, now: float) -> Effects:
        """Rebuild tasks and their unacked updates from the checkpoint; report tasks that
        ended while we were down, kill them all with --recover=cleanup."""
        if self._tasks or self.state != DISCONNECTED:
            return [Log("error", "recovery after start-up ignored")]
        self.agent_id, self.reserved = event.agent_id, event.reserved
        effects: Effects = [Log("info", f"recovering agent {event.agent_id} with "
                                        f"{len(event.tasks)} task(s) ({event.mode})")]
        for rt in event.tasks:
            if is_executor_container(rt.checkpoint.task):
                effects += self._recover_executor(rt, now)
            else:
                effects += self._recover_task(rt, event.mode, now)
        effects += self._orphaned_executor_tasks(now)
        if event.mode == CLEANUP:
            effects += self._shutdown_executors(None)
        return effects

    def _recover_task(self, rt: RecoveredTask, mode: str, now: float) -> Effects:
        cp, found = rt.checkpoint, rt.found
        fid = cp.framework.id or ""
        entry = TaskEntry(fid, cp.task, cp.sandbox, cp.run_id, state=cp.state, pid=cp.pid,
                          kill_requested=cp.kill_requested, statuses=list(cp.statuses),
                          container=cp.container)
        self._frameworks[fid] = cp.framework
        self._tasks[entry.task_id] = entry
        self._use_cache = None
        self.updates.restore(fid, cp.updates)
        self._touch(entry.task_id)
        if entry.executor_id:  # its executor's fate decides (`_orphaned_executor_tasks`)
            entry.process = GONE if ts.is_terminal(entry.state) else ALIVE
            return []
        if found.what == RUNNING_FOUND:
            entry.process, entry.pid = ALIVE, found.pid
            effects: Effects = [Log("info", f"reattached to task {entry.task_id} "
                                            f"(pid {found.pid})")]
            if entry.state == ts.STAGING:  # launched, but we died before reporting it
                effects += self._update(entry, ts.STARTING, now)
            if entry.state == ts.STARTING:
                effects += self._update(entry, ts.RUNNING, now)
            if mode == CLEANUP or ts.is_terminal(entry.state) or entry.kill_requested:
                entry.kill_requested = True
                effects.append(KillProcess(entry.task_id, self._grace(entry)))
            elif entry.state == ts.RUNNING:
                effects += self._start_health(entry, now)
            return effects
        entry.process = GONE
        self._use_cache = None
        if ts.is_terminal(entry.state):
            return []
        if found.what == EXITED_FOUND:
            state, message, reason = exit_status(entry.kill_requested, found.exit_code,
                                                 found.signal)
            if found.exit_code is None and found.signal is None:
                message = "Task ended while the agent was down (exit status unknown)"
        else:
            state, message, reason = (ts.FAILED, "Task was not running when the agent "
                                      "recovered", "REASON_EXECUTOR_TERMINATED")
        return self._update(entry, state, now, message, reason, records.SOURCE_AGENT)


def exit_status(killed: bool, code: int | None, sig: int | None) -> tuple[str, str, str | None]:
    """(state, message, reason) for a task whose process ended, as Mesos's command executor
    (the core's TaskExited and a recovered task found exited both use it)."""
    if sig is not None:
        try:
            name = _signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        message = f"Command terminated by signal {name}"
    elif code is not None:
        message = f"Command exited with status {code}"
    else:
        return (ts.KILLED if killed else ts.FAILED, "Abnormal executor termination",
                "REASON_EXECUTOR_TERMINATED")
    if killed:
        return ts.KILLED, message, None
    return (ts.FINISHED if code == 0 else ts.FAILED), message, None
