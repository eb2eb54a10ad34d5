"""What the agent core's rule mixins share: `core.Agent`'s state and the helpers they call.

The rules are split by subject (core_registration, core_admission, core_health, core_recovery,
core_executors) and call each other and the agent's helpers through `self`. This base declares
that state and those helpers once, so each mixin is type-checked on its own; at run time it adds
nothing: the state is set in `Agent.__init__` and the helpers are defined in `core.py` and the
mixins.
"""
from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING, Any

from mesos_agent import records
from mesos_agent.config import AgentConfig
from mesos_agent.records import ExecutorEntry, TaskEntry
from mesos_agent.recovery import RecoveredTask
from mesos_agent.status import StatusUpdateManager
from mesos_common.messages import FrameworkInfo, RunTask, TaskInfo
from mesos_common.resources import Resources

Effects = list[Any]


class AgentBase:
    """The agent's state and cross-module helpers, declared for the type checker."""

    config: AgentConfig
    agent_id: str | None
    epoch: float
    state: str
    master_id: str | None
    heartbeat_interval: float | None
    terminating: bool
    reserved: Resources  # dynamic reservations, checkpointed with the agent id
    updates: StatusUpdateManager
    _rng: random.Random
    _frameworks: dict[str, FrameworkInfo]
    _tasks: dict[str, TaskEntry]
    _executors: dict[tuple[str, str], ExecutorEntry]
    _by_key: dict[str, ExecutorEntry]
    _draining: dict[str, str]
    _draining_res: dict[str, Resources]
    _held: deque[RunTask]
    _ran: dict[tuple[str, str], None]
    _use_cache: Resources | None
    _id_dirty: bool
    _expected_master: str
    _register_interval: float
    _register_attempts: int
    _last_heard: float

    if TYPE_CHECKING:
        # core.Agent
        def _touch(self, task_id: str) -> None: ...
        def _grace(self, entry: TaskEntry) -> float: ...
        def _run_as(self, task: TaskInfo, framework: FrameworkInfo) -> str | None: ...
        def _drain(self, entry: TaskEntry) -> Effects: ...
        def _on_run_task(self, msg: RunTask, now: float) -> Effects: ...
        def _update(self, entry: TaskEntry, state: str, now: float, message: str = "",
                    reason: str | None = None, source: str = records.SOURCE_EXECUTOR,
                    uuid: bytes | None = None, data: bytes | None = None,
                    healthy: bool | None = None) -> Effects: ...
        # core_admission.AdmissionRules
        def total(self) -> Resources: ...
        def _launch_held(self, now: float) -> Effects: ...
        # core_health.HealthRules
        def _start_health(self, entry: TaskEntry, now: float) -> Effects: ...
        # core_executors.ExecutorRules
        def _recover_executor(self, rt: RecoveredTask, now: float) -> Effects: ...
        def _orphaned_executor_tasks(self, now: float) -> Effects: ...
        def _shutdown_executors(self, framework_id: str | None) -> Effects: ...
        def _has_executors(self, framework_id: str) -> bool: ...
