"""The Containerizer protocol: how the agent runtime starts, watches and stops tasks.

A slice of Mesos's `Containerizer` (launch/wait/kill/containers, handle/recover for
checkpointing). Implementations: `process.ProcessContainerizer` (real processes, one session
per task) and `sim.SimContainerizer` (in memory). Containers are keyed by task id: a command
task is its own executor.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from mesos_agent.containerizer.isolation import Usage
from mesos_agent.recovery import Found
from mesos_common.messages import TaskInfo


class LaunchError(Exception):
    """The task could not be started; the message goes into its TASK_FAILED update."""


class Containerizer(Protocol):
    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        """Create `sandbox` (`make_sandbox`) and start the task in it; return its pid.
        Raises LaunchError."""
        ...

    async def wait(self, task_id: str) -> tuple[int | None, int | None]:
        """Wait for the task to end: (exit_code, None), (None, signal) or (None, None) when
        unknown. Call once per launched task; afterwards the container is gone."""
        ...

    async def kill(self, task_id: str, grace_period: float) -> None:
        """SIGTERM, then SIGKILL after `grace_period` seconds; returns once the kill is done
        (not necessarily reaped: `wait` reports the end). A no-op for unknown tasks."""
        ...

    def containers(self) -> set[str]:
        """Task ids of the containers launched and not yet reaped."""
        ...

    async def usage(self, task_id: str) -> Usage | None:
        """The running container's resource usage; None when it is not ours."""
        ...

    def limitation(self, task_id: str) -> str | None:
        """After `wait`: the resource limit that ended the task, if any: its kind
        ("memory"), or "kind: message" with what the task asked for and used."""
        ...

    def handle(self, task_id: str) -> str:
        """A launched container's handle, checkpointed so `recover` can find it again."""
        ...

    async def recover(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                      handle: str) -> Found:
        """Reattach to a container a previous agent process launched; when it is running,
        `wait`/`kill` work on it afterwards as on one launched by us."""
        ...


def task_environment(task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                     base: Mapping[str, str]) -> dict[str, str]:
    """`base` + the Mesos variables a command task sees + the task's own environment."""
    env = dict(base)
    env.update({
        "MESOS_TASK_ID": task_id, "MESOS_EXECUTOR_ID": task_id,
        "MESOS_FRAMEWORK_ID": framework_id, "MESOS_AGENT_ID": task.agent_id,
        "MESOS_SLAVE_ID": task.agent_id, "MESOS_SANDBOX": sandbox, "MESOS_DIRECTORY": sandbox,
    })
    if task.command is not None:
        env.update(task.command.environment)
    return env
