"""Several containerizers behind one (Mesos's ComposingContainerizer): DOCKER tasks go to the
docker containerizer, all others to the process one; a task none of them can run is refused
(`support.refusal`)."""
from __future__ import annotations

from typing import Any

from mesos_agent.containerizer.base import Containerizer, LaunchError
from mesos_agent.containerizer.isolation import Usage
from mesos_agent.containerizer.support import needed, refusal
from mesos_agent.recovery import Found
from mesos_common.messages import TaskInfo


class CompositeContainerizer:
    def __init__(self, children: dict[str, Containerizer]) -> None:
        self.children = children
        self._owner: dict[str, Containerizer] = {}

    def _child(self, task: TaskInfo) -> Containerizer:
        why = refusal(task, self.children)
        if why is not None:
            raise LaunchError(why)
        return self.children[needed(task)]

    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        child = self._child(task)
        pid = await child.launch(task_id, framework_id, task, sandbox)
        self._owner[task_id] = child
        return pid

    async def recover(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                      handle: str) -> Found:
        child = self._child(task)
        found = await child.recover(task_id, framework_id, task, sandbox, handle)
        if task_id in child.containers():
            self._owner[task_id] = child
        return found

    async def wait(self, task_id: str) -> tuple[int | None, int | None]:
        return await self._owner[task_id].wait(task_id)

    async def kill(self, task_id: str, grace_period: float) -> None:
        child = self._owner.get(task_id)
        if child is not None:
            await child.kill(task_id, grace_period)

    def resize(self, task_id: str, cpus: float, mem: float) -> None:
        resize = getattr(self._owner.get(task_id), "resize", None)
        if resize is not None:
            resize(task_id, cpus, mem)

    def containers(self) -> set[str]:
        return set().union(*(c.containers() for c in self.children.values()))

    def handle(self, task_id: str) -> str:
        child = self._owner.get(task_id)
        return child.handle(task_id) if child is not None else ""

    async def usage(self, task_id: str) -> Usage | None:
        child = self._owner.get(task_id)
        return await child.usage(task_id) if child is not None else None

    def limitation(self, task_id: str) -> str | None:
        child = self._owner.pop(task_id, None)
        return child.limitation(task_id) if child is not None else None

    async def remove_orphans(self, known: set[str]) -> list[str]:
        """Containers labelled as ours that no checkpointed task owns are removed."""
        gone: list[str] = []
        for c in self.children.values():
            remover = getattr(c, "remove_orphans", None)
            if remover is not None:
                gone += await remover(known)
        return gone

    def close(self) -> None:
        for c in self.children.values():
            closer = getattr(c, "close", None)
            if closer is not None:
                closer()

    def child(self, name: str) -> Any:
        return self.children.get(name)
