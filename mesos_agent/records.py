"""The agent core's per-task record and the Mesos-shaped JSON the `/state` endpoint serves.

Pure data and formatting: the core mutates `TaskEntry`s; the functions here only read them.
The JSON follows the Mesos agent's `/state` (frameworks -> executors -> tasks; a command task
is its own executor) and adds `directory` to each task so tools find its sandbox directly.
"""
from __future__ import annotations

from typing import Any

from attrs import define, field

from mesos_common import task_states
from mesos_common.messages import ExecutorInfo, FrameworkInfo, TaskInfo
from mesos_common.resources import Resources

# Where the task's process is, independently of what we reported about it.
LAUNCHING = "LAUNCHING"  # LaunchTask emitted, no TaskLaunched/TaskLaunchFailed yet
ALIVE = "ALIVE"          # TaskLaunched: a process (group) exists
GONE = "GONE"            # exited, or never started

# The agent's own connection states (Agent.state).
DISCONNECTED, REGISTERING, RUNNING = "DISCONNECTED", "REGISTERING", "RUNNING"

SOURCE_EXECUTOR = "SOURCE_EXECUTOR"
SOURCE_AGENT = "SOURCE_AGENT"


@define
class TaskEntry:
    framework_id: str
    task: TaskInfo
    sandbox: str
    run_id: str
    state: str = task_states.STAGING
    process: str = LAUNCHING
    pid: int | None = None
    kill_requested: bool = False
    container: str = ""  # the containerizer's handle, checkpointed for reattaching
    healthy: bool | None = None  # None until the first health check result
    health_failures: int = 0  # consecutive failed checks (after the grace period)
    running_since: float | None = None
    health_killed: bool = False
    statuses: list[tuple[str, float]] = field(factory=list)

    @property
    def task_id(self) -> str:
        return self.task.task_id

    @property
    def executor_id(self) -> str:
        """The custom executor that runs it ("" for a command task, which has its own
        process: for the others `process` says LAUNCHING until the task is handed to the
        executor, ALIVE until a terminal state, then GONE)."""
        ex = self.task.executor
        return ex.executor_id if ex is not None else ""


# A custom executor's life (ExecutorEntry.state).
EXEC_LAUNCHING = "LAUNCHING"      # its process is being started or has not subscribed yet
EXEC_RUNNING = "RUNNING"          # subscribed: tasks go to it over its stream
EXEC_TERMINATING = "TERMINATING"  # being shut down (or gave up on): waiting for its exit
EXECUTOR_STATES = (EXEC_LAUNCHING, EXEC_RUNNING, EXEC_TERMINATING)
# Legal moves; an executor leaves the books when its process is gone, from any state.
EXECUTOR_TRANSITIONS = {
    EXEC_LAUNCHING: {EXEC_RUNNING, EXEC_TERMINATING},
    EXEC_RUNNING: {EXEC_RUNNING, EXEC_TERMINATING},  # a re-subscription stays RUNNING
    EXEC_TERMINATING: set(),
}


@define
class ExecutorEntry:
    """A custom executor on this agent: the container running it (`key`, the id the
    containerizer knows it by) and the tasks it was given."""

    framework: FrameworkInfo
    info: ExecutorInfo
    key: str
    container_task: TaskInfo  # what the containerizer launches (the executor's command)
    sandbox: str
    run_id: str
    state: str = EXEC_LAUNCHING
    process: str = LAUNCHING
    pid: int | None = None
    container: str = ""
    connected: bool = False  # its SUBSCRIBE stream is open
    limits: Resources | None = None  # its container's (None: container_task.resources)
    tasks: list[str] = field(factory=list)  # ids of its live tasks, in launch order

    @property
    def framework_id(self) -> str:
        return self.framework.id or ""

    def move(self, state: str) -> None:
        assert state in EXECUTOR_TRANSITIONS[self.state], (self.key, self.state, state)
        self.state = state


def task_json(e: TaskEntry, agent_id: str) -> dict[str, Any]:
    t = e.task
    out: dict[str, Any] = {
        "id": t.task_id, "name": t.name, "framework_id": e.framework_id,
        "executor_id": e.executor_id,
        "slave_id": agent_id, "agent_id": agent_id, "state": e.state,
        "resources": t.resources.to_map(),
        "statuses": [{"state": s, "timestamp": ts} for s, ts in e.statuses],
        "directory": e.sandbox,
    }
    if t.labels:
        out["labels"] = [{"key": k, "value": v} for k, v in sorted(t.labels.items())]
    if e.pid is not None:
        out["pid"] = e.pid
    if e.healthy is not None:
        out["healthy"] = e.healthy
    return out


def executor_json(e: TaskEntry, agent_id: str, completed: bool) -> dict[str, Any]:
    """A command task's implicit executor, as Mesos lists it (id = task id)."""
    cmd = e.task.command
    what = (cmd.value or " ".join(cmd.arguments)) if cmd is not None else ""
    task = task_json(e, agent_id)
    return {
        "id": e.task_id, "name": f"Command Executor (Task: {e.task_id}) (Command: {what[:80]})",
        "source": e.task_id, "container": e.run_id, "directory": e.sandbox,
        "resources": e.task.resources.to_map(),
        "tasks": [] if completed else [task], "queued_tasks": [],
        "completed_tasks": [task] if completed else [],
    }


def custom_executor_json(ex: ExecutorEntry, tasks: list[TaskEntry],
                         agent_id: str) -> dict[str, Any]:
    """A custom executor and its live tasks, as Mesos lists them."""
    cmd = ex.info.command
    return {
        "id": ex.info.executor_id, "name": ex.info.name, "source": "",
        "container": ex.run_id, "directory": ex.sandbox, "type": "CUSTOM",
        "framework_id": ex.framework_id, "command": {"value": cmd.value},
        "resources": ex.info.resources.to_map(), "state": ex.state,
        "tasks": [task_json(t, agent_id) for t in tasks], "queued_tasks": [],
        "completed_tasks": [],
    }


def framework_json(info: FrameworkInfo, executors: list[dict[str, Any]],
                   completed: list[dict[str, Any]]) -> dict[str, Any]:
    """`tasks` (live) and `completed_tasks` are flat conveniences beside Mesos's executors."""
    return {
        "id": info.id or "", "name": info.name, "user": info.user, "hostname": info.hostname,
        "role": info.roles[0] if info.roles else "*", "roles": list(info.roles),
        "checkpoint": info.checkpoint, "failover_timeout": info.failover_timeout,
        "capabilities": [{"type": c} for c in info.capabilities],
        "executors": executors, "completed_executors": completed,
        "tasks": [t for ex in executors for t in ex["tasks"]],
        "completed_tasks": [t for ex in completed for t in ex["completed_tasks"]],
    }
