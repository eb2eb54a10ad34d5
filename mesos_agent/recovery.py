"""Checkpoint records, the `Checkpoint` effect and the `Recovered` event (pure data).

The core emits `Checkpoint(record)` before the effects that depend on it (write-ahead: an
update is on disk before it is sent); the runtime writes each record atomically under
`<work_dir>/meta` (checkpoint.py). A restarted agent reads them back, asks its containerizers
to reattach, and feeds `Recovered` before it connects to a master. Mesos: src/slave/state.cpp.
"""
from __future__ import annotations

from attrs import field, frozen

from mesos_common.messages import FrameworkInfo, TaskInfo, TaskStatus
from mesos_common.resources import Resources

RECONNECT, CLEANUP = "reconnect", "cleanup"

# What a containerizer found for a checkpointed task.
RUNNING_FOUND = "running"   # reattached: a wait() will report its end
EXITED_FOUND = "exited"     # ended while we were down; exit code/signal when known
MISSING = "missing"         # nothing found (never started, or no trace left)


@frozen
class AgentIdRecord:
    agent_id: str
    reserved: Resources = field(factory=Resources.empty)  # the master's dynamic reservations


@frozen
class TaskCheckpoint:
    """Everything needed to rebuild one task: its record and its unacknowledged updates."""

    framework: FrameworkInfo
    task: TaskInfo
    sandbox: str
    run_id: str
    state: str
    statuses: tuple[tuple[str, float], ...] = ()
    kill_requested: bool = False
    pid: int | None = None
    container: str = ""  # containerizer's handle (docker id; "pid:start_time" for processes)
    updates: tuple[TaskStatus, ...] = ()


@frozen
class TaskRemoved:
    """The task is gone for good (terminal update acked, or drained)."""

    task_id: str


def record_file(record: AgentIdRecord | TaskCheckpoint | TaskRemoved) -> str | None:
    """Which checkpoint file a record replaces: its task's (by id), or None for the agent id.
    Of several records for one file committed together only the last counts."""
    if isinstance(record, TaskCheckpoint):
        return record.task.task_id
    if isinstance(record, TaskRemoved):
        return record.task_id
    return None


@frozen
class Checkpoint:
    """Effect: write `record` durably (atomically) before performing the next effects.

    `lazy`: nothing that follows depends on it (an acknowledgement only shortens the queue
    of updates that are already durable; losing it resends an update, which is harmless),
    so the runtime writes it with the next group commit without holding effects back."""

    record: AgentIdRecord | TaskCheckpoint | TaskRemoved
    lazy: bool = False


@frozen
class Found:
    """A containerizer's answer for one checkpointed task."""

    what: str
    pid: int | None = None
    exit_code: int | None = None
    signal: int | None = None


@frozen
class RecoveredTask:
    checkpoint: TaskCheckpoint
    found: Found


@frozen
class Recovered:
    """Event: the checkpointed state, with what the containerizers found for each task."""

    agent_id: str | None
    tasks: tuple[RecoveredTask, ...]
    mode: str = RECONNECT
    reserved: Resources = field(factory=Resources.empty)
