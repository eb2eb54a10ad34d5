"""Giving a task exactly the GPUs it asked for (Mesos's gpu/nvidia isolator, in part).

`GpuDevices` wraps the agent's containerizer: a task with `gpus` in its resources is
assigned that many of the agent's free devices before launch, as `CUDA_VISIBLE_DEVICES`
(and `NVIDIA_VISIBLE_DEVICES`) in its environment: a process task sees only those, and the
docker containerizer turns the same list into the container's device request. The devices
are free again once the task's `wait` returns. Each assignment is also a small file under
`<work_dir>/meta/gpus/` (the checkpointed TaskInfo is the one the framework sent), so that
a restarted agent knows which devices its recovered tasks hold. A launch asking for more
than is free is
refused with a message (the master offers only what the agent advertises, so this is a
peer's mistake or an agent restarted with fewer devices).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs

from mesos_agent.containerizer.base import Containerizer, LaunchError
from mesos_agent.gpus import Gpu
from mesos_agent.recovery import Found
from mesos_common.messages import CommandInfo, TaskInfo

VISIBLE = "CUDA_VISIBLE_DEVICES"


def assigned(task: TaskInfo) -> list[str]:
    """The device UUIDs a task was given (none for a task without GPUs)."""
    if task.resources.scalar("gpus") <= 0 or task.command is None:
        return []
    value = task.command.environment.get(VISIBLE, "")
    return [d for d in value.split(",") if d]


def with_devices(task: TaskInfo, uuids: Sequence[str]) -> TaskInfo:
    ids = ",".join(uuids)
    cmd = task.command or CommandInfo(value="", shell=False)
    env = {**cmd.environment, VISIBLE: ids, "NVIDIA_VISIBLE_DEVICES": ids}
    return attrs.evolve(task, command=attrs.evolve(cmd, environment=env))


class GpuDevices:
    def __init__(self, inner: Containerizer, gpus: Sequence[Gpu], work_dir: str) -> None:
        self.inner = inner
        self.gpus = list(gpus)
        self._held: dict[str, list[str]] = {}  # task id -> device UUIDs
        self._dir = Path(work_dir) / "meta" / "gpus"

    def _file(self, task_id: str) -> Path:
        return self._dir / quote(task_id, safe="")

    def _hold(self, task_id: str, uuids: list[str]) -> None:
        self._held[task_id] = uuids
        self._dir.mkdir(parents=True, exist_ok=True)
        tmp = self._file(task_id).with_suffix(".tmp")
        tmp.write_text(json.dumps(uuids))
        os.replace(tmp, self._file(task_id))

    def _release(self, task_id: str) -> None:
        self._held.pop(task_id, None)
        self._file(task_id).unlink(missing_ok=True)

    def free(self) -> list[str]:
        held = {u for us in self._held.values() for u in us}
        return [g.uuid for g in self.gpus if g.uuid not in held]

    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        want = task.resources.scalar("gpus")
        if want <= 0:
            return await self.inner.launch(task_id, framework_id, task, sandbox)
        if want != int(want):
            raise LaunchError(f"gpus must be a whole number, not {want:g}")
        free = self.free()
        if len(free) < want:
            raise LaunchError(f"the task asks for {want:g} GPU(s) but {len(free)} of this "
                              f"agent's {len(self.gpus)} are free")
        picked = free[:int(want)]
        self._hold(task_id, picked)
        try:
            return await self.inner.launch(task_id, framework_id, with_devices(task, picked),
                                           sandbox)
        except BaseException:
            self._release(task_id)
            raise

    async def recover(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                      handle: str) -> Found:
        try:
            devices = json.loads(self._file(task_id).read_text())
        except (OSError, ValueError):
            devices = []
        if devices:
            self._held[task_id] = devices
            task = with_devices(task, devices)
        found = await self.inner.recover(task_id, framework_id, task, sandbox, handle)
        if task_id not in self.inner.containers():
            self._release(task_id)
        return found

    async def wait(self, task_id: str) -> tuple[int | None, int | None]:
        try:
            return await self.inner.wait(task_id)
        finally:
            self._release(task_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
