"""Agent-specific events (fed by the runtime) and effects (performed by the runtime).

The shared ones (`Start`, `Received`, `TimerFired`; `Send`, `SetTimer`, `CancelTimer`, `Log`)
live in mesos_common.effects. Everything here is plain frozen data.
"""
from __future__ import annotations

from attrs import frozen

from mesos_common.messages import HealthCheck, TaskInfo

# ---------------------------------------------------------------- events


@frozen
class MasterConnected:
    """The runtime found the leading master and pointed the DEALER at it: (re)register now.

    `master_id` is the detected master's id: registration replies from any other master (a
    late message of a dead or deposed one) are ignored. Empty accepts any."""

    master_id: str = ""


@frozen
class TaskLaunched:
    """The containerizer started the task's process (session leader `pid`); `container` is
    its handle for reattaching after a restart (checkpointed)."""

    task_id: str
    pid: int
    container: str = ""


@frozen
class TaskLaunchFailed:
    """The task could not start. `reason` None: the container failed to launch (the message
    says why); else the Mesos reason it failed for (REASON_FETCHER_FAILED), `message` whole."""

    task_id: str
    message: str
    reason: str | None = None


@frozen
class TaskExited:
    """The task's process ended: `exit_code` when it exited, `signal` when a signal ended it."""

    task_id: str
    exit_code: int | None
    signal: int | None
    # The limit the container went past: its kind ("memory"), or "kind: message" saying
    # what was asked for and used (Mesos's "Memory limit exceeded: Requested: ...").
    limitation: str | None = None


@frozen
class StopAgent:
    """The agent process is stopping (SIGTERM): kill every task, as Mesos shuts executors
    down, so nothing outlives the agent. Tasks end TASK_KILLED; no new task starts."""


@frozen
class HealthResult:
    """One health probe of a task ended: healthy or not (`message` says why not)."""

    task_id: str
    healthy: bool
    message: str = ""


# ---------------------------------------------------------------- effects


@frozen
class StartHealthCheck:
    """Probe the task as `check` says (delay, then every interval) and feed HealthResults."""

    task_id: str
    check: HealthCheck
    sandbox: str
    user: str | None = None  # a COMMAND check runs as the task does (None: as the agent)


@frozen
class StopHealthCheck:
    task_id: str


@frozen
class LaunchTask:
    """Create `sandbox`, start `task` in it, then feed TaskLaunched/TaskLaunchFailed and,
    later, TaskExited. `task.agent_id` is this agent's id."""

    framework_id: str
    task: TaskInfo
    sandbox: str
    run_id: str = ""
    user: str | None = None  # run as: CommandInfo.user, else FrameworkInfo.user (--switch_user)


@frozen
class KillProcess:
    """SIGTERM the task's process group, SIGKILL it after `grace_period` seconds."""

    task_id: str
    grace_period: float


@frozen
class Redetect:
    """The master is gone or does not know us: find the leader again, reconnect, and feed
    MasterConnected."""

    reason: str
