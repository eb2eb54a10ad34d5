"""The Containerizer protocol: how the agent runtime starts, watches and stops tasks.

A slice of Mesos's `Containerizer` (launch/wait/kill/containers, handle/recover for checkpointing). Implementations: `process.ProcessContainerizer` (real processes, one session
per task) and `sim.SimContainerizer` (in memory). Containers are keyed by task id: a command
task is its own executor.
"""
from __future__ import annotations

import array
import fcntl
import logging
import os
from typing import Mapping, Protocol

from mesos_agent import paths
from mesos_agent.containerizer.isolation import Usage
from mesos_agent.recovery import Found
from mesos_common.messages import TaskInfo


log = logging.getLogger(__name__)


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
        """After `wait`: the resource limit that ended the task ("memory"), if any."""
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


def make_sandbox(sandbox: str) -> None:
    """Create the sandbox and point `runs/latest` at it (Mesos does the same). Blocking IO:
    a containerizer calls it where its launch does its other file work."""
    runs = os.path.dirname(sandbox)
    try:  # a task's first run: its executor dir, runs/ and the run, nothing else to check
        os.mkdir(os.path.dirname(runs))
        os.mkdir(runs)
        os.mkdir(sandbox)
    except OSError:
        for root in paths.spread_roots(sandbox):
            os.makedirs(root, exist_ok=True)
            mark_top_dir(root)
        os.makedirs(sandbox, exist_ok=True)
    link = paths.latest_link(sandbox)
    name = os.path.basename(sandbox)
    try:
        try:
            os.symlink(name, link)
        except FileExistsError:  # a later run: replace the link atomically
            tmp = f"{link}.tmp{os.getpid()}"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(name, tmp)
            os.replace(tmp, link)
    except OSError as e:
        log.warning("cannot update %s: %s", link, e)


_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS = 0x80086601, 0x40086602  # linux/fs.h, 64-bit
_FS_TOPDIR_FL = 0x00020000


def mark_top_dir(path: str) -> bool:
    """Set ext2/3/4's "top of a directory hierarchy" flag (`chattr +T`) on `path`, so each
    directory made in it starts a fresh block group (the Orlov allocator) instead of
    joining its parent's. Sandboxes are made and removed by the thousand; on ext4 without
    a journal a new inode is not taken from those freed in the last minute (six minutes
    while the inode table is not yet written back), and each allocation walks past all of
    them, so a burst of launches in a group freshly emptied by removals cost 2.4 ms of
    kernel time per task against 0.08 ms in a fresh group (`benchmarks.launch_process`).
    False where the file system has no such flag (tmpfs, xfs, ...): nothing to do there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & _FS_TOPDIR_FL:
            flags[0] |= _FS_TOPDIR_FL
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
