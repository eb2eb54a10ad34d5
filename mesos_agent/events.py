"""Agent-specific events (fed by the runtime) and effects (performed by the runtime).

The shared ones (`Start`, `Received`, `TimerFired`, `MasterConnected`; `Send`, `SetTimer`,
`CancelTimer`, `Log`, `Redetect`) live in mesos_common.effects. All plain frozen data.
"""
from __future__ import annotations

from attrs import frozen

from mesos_common.effects import MasterConnected, Redetect  # noqa: F401 (shared with the SDK)
from mesos_common.messages import ExecutorInfo, FrameworkInfo, HealthCheck, TaskInfo, TaskStatus
from mesos_common.resources import Resources

# ---------------------------------------------------------------- events


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


@frozen
class ExecutorSubscribe:
    """A custom executor opened its SUBSCRIBE stream (`POST /api/v1/executor`);
    `unacknowledged_tasks`: the ids of the tasks it says it holds (a re-subscription)."""

    framework_id: str
    executor_id: str
    unacknowledged_tasks: tuple[str, ...] = ()


@frozen
class ExecutorUpdate:
    """A custom executor's UPDATE call: `status` as it sent it (its uuid kept)."""

    framework_id: str
    executor_id: str
    status: TaskStatus


@frozen
class ExecutorMessage:
    """A custom executor's MESSAGE call: bytes for its scheduler."""

    framework_id: str
    executor_id: str
    data: bytes


@frozen
class ExecutorDisconnected:
    """A custom executor's stream closed (it may subscribe again)."""

    framework_id: str
    executor_id: str


# ---------------------------------------------------------------- effects


@frozen
class ExecutorSubscribed:
    """What an executor's SUBSCRIBED event says (the runtime adds the agent's info)."""

    executor: ExecutorInfo
    framework: FrameworkInfo
    container: str


@frozen
class ToExecutor:
    """Write `msg` to the executor's stream: ExecutorSubscribed, RunTask (LAUNCH), KillTask
    (KILL), StatusUpdateAck (ACKNOWLEDGED), FrameworkMessage (MESSAGE), ShutdownExecutor
    (SHUTDOWN). Dropped when no stream is open."""

    framework_id: str
    executor_id: str
    msg: object


@frozen
class ResizeContainer:
    """Raise a running container's limits to `resources` (a custom executor's container
    holds its own resources and those of its tasks)."""

    key: str
    resources: Resources


@frozen
class EndExecutorStream:
    """The executor is gone: close its stream, if open."""

    framework_id: str
    executor_id: str


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

