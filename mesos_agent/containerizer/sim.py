"""An in-memory containerizer: tasks "run" until killed, finished by a test, or for a set time.

For runtime tests and simulated clusters where real processes would only add noise. Task
labels steer it: `sim.duration` (seconds; default `default_duration`, None = until killed),
`sim.exit_code` (default 0), `sim.fail_launch` (launch raises), `sim.ignore_term` (only the
SIGKILL after the grace period ends it).
"""
from __future__ import annotations

import asyncio
import itertools
import signal

from attrs import define, field

from mesos_agent.containerizer.base import LaunchError
from mesos_agent.containerizer.isolation import Usage
from mesos_agent.containerizer.sandbox import make_sandbox
from mesos_agent.recovery import MISSING, Found
from mesos_common.messages import TaskInfo

Result = tuple[int | None, int | None]


@define
class _SimTask:
    pid: int
    duration: float | None
    exit_code: int
    ignore_term: bool
    sandbox: str
    done: asyncio.Event = field(factory=asyncio.Event)
    result: Result | None = None


class SimContainerizer:
    def __init__(self, default_duration: float | None = None, first_pid: int = 100_000) -> None:
        self.default_duration = default_duration
        self._pids = itertools.count(first_pid)
        self._tasks: dict[str, _SimTask] = {}
        self.launched: list[str] = []  # every task id ever launched, in order

    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        labels = task.labels
        if task_id in self._tasks:
            raise LaunchError(f"task {task_id} is already running")
        if labels.get("sim.fail_launch"):
            raise LaunchError(labels["sim.fail_launch"])
        try:
            duration = (float(labels["sim.duration"]) if "sim.duration" in labels
                        else self.default_duration)
            exit_code = int(labels.get("sim.exit_code", "0"))
        except ValueError as e:
            raise LaunchError(f"bad sim label: {e}") from None
        make_sandbox(sandbox)
        t = _SimTask(next(self._pids), duration, exit_code, bool(labels.get("sim.ignore_term")),
                     sandbox)
        self._tasks[task_id] = t
        self.launched.append(task_id)
        return t.pid

    async def wait(self, task_id: str) -> Result:
        t = self._tasks[task_id]
        try:
            await asyncio.wait_for(t.done.wait(), t.duration)
        except TimeoutError:
            self.finish(task_id, exit_code=t.exit_code)
        self._tasks.pop(task_id, None)
        assert t.result is not None
        return t.result

    async def kill(self, task_id: str, grace_period: float) -> None:
        t = self._tasks.get(task_id)
        if t is None or t.result is not None:
            return
        if t.ignore_term and grace_period > 0:
            try:
                await asyncio.wait_for(t.done.wait(), grace_period)
                return
            except TimeoutError:
                pass
        self.finish(task_id, sig=signal.SIGTERM if grace_period > 0 and not t.ignore_term
                    else signal.SIGKILL)

    def finish(self, task_id: str, exit_code: int | None = None, sig: int | None = None) -> None:
        """End a running task now (tests drive exits with this)."""
        t = self._tasks.get(task_id)
        if t is not None and t.result is None:
            t.result = (exit_code, sig) if sig is None else (None, sig)
            t.done.set()

    def containers(self) -> set[str]:
        return set(self._tasks)

    def handle(self, task_id: str) -> str:
        return ""

    async def recover(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                      handle: str) -> Found:
        return Found(MISSING)  # in memory: nothing survives the agent

    def limitation(self, task_id: str) -> str | None:
        return None

    async def usage(self, task_id: str) -> Usage | None:
        return Usage() if task_id in self._tasks else None
