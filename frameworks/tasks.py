"""Building TaskInfos out of offers, and packing many tasks into one offer.

Every framework needs the same two things: turn "cpus/mem/disk/N ports for this command"
into a TaskInfo whose resources really come from an offer (the master rejects a task that
asks for resources its offer does not hold), and keep track of what is left of an offer so
that one offer can host many tasks. Scalars are taken from the offer's reservations for the
framework's role first, then from unreserved resources, as Mesos frameworks usually do.
"""
from __future__ import annotations

from collections.abc import Mapping

from mesos_common.messages import (
    CommandInfo,
    ContainerInfo,
    ExecutorInfo,
    Offer,
    Operation,
    TaskInfo,
)
from mesos_common.resources import UNRESERVED, ResourceError, Resources

__all__ = ["ResourcesLeft", "launch", "make_task", "reserve", "task_resources", "unreserve"]


def _take_scalar(available: Resources, name: str, amount: float,
                 into: dict[tuple[str, str], int]) -> None:
    """Add `amount` of `name` from `available` to `into` ((name, role) -> milli-units),
    reserved roles before `*`; raises if short. Exact integer milli-units throughout: a
    framework packing a thousand tasks into one offer calls this three times per task."""
    need = round(amount * 1000)  # milli-units, as Resources stores scalars
    if need <= 0:
        return
    have = available.scalar_milli(name)
    for role in sorted(have, key=lambda r: (r == UNRESERVED, r)):
        part = min(have[role], need)
        if part > 0:
            into[(name, role)] = part
            need -= part
        if need == 0:
            return
    raise ResourceError(f"need {amount:g} {name} but only "
                        f"{available.scalar(name):g} available")


def task_resources(available: Resources, cpus: float, mem: float, disk: float = 0,
                   ports: int = 0, gpus: int = 0) -> tuple[Resources, list[int]]:
    """The resources a task needs, cut out of `available`, and the ports picked.

    Raises ResourceError when they do not fit.
    """
    scalars: dict[tuple[str, str], int] = {}
    _take_scalar(available, "cpus", cpus, scalars)
    _take_scalar(available, "mem", mem, scalars)
    _take_scalar(available, "disk", disk, scalars)
    _take_scalar(available, "gpus", gpus, scalars)
    res = Resources.from_milli(scalars)
    picked: list[int] = []
    if ports:
        picked, port_res = available.take_ports(ports)
        res += port_res
    return res, picked


def make_task(task_id: str, offer: Offer, command: str | None, cpus: float, mem: float,
              disk: float = 0, ports: int = 0, env: Mapping[str, str] | None = None,
              name: str | None = None, shell: bool = True, *,
              available: Resources | None = None, container: ContainerInfo | None = None,
              arguments: tuple[str, ...] = (), labels: Mapping[str, str] | None = None,
              executor: ExecutorInfo | None = None, data: bytes | None = None,
              ) -> TaskInfo:
    """A TaskInfo running `command` on `offer`'s agent with resources taken from the offer.

    `available` (default: all of the offer) is what may still be used, for packing.
    Picked ports are also given to the task as `PORT0..PORTn` and `PORTS` in its
    environment (Marathon's convention) unless `env` sets them. With `command=None` (a
    Docker image's own entrypoint) the CommandInfo has no value and `shell=False`.
    With `executor` the task runs on that custom executor (`command` must be None; `data`
    is handed to it); the executor's own resources are not taken from `available`: keep
    room for them while it is not running on that agent.
    Raises ResourceError when the task does not fit.
    """
    res, picked = task_resources(offer.resources if available is None else available,
                                 cpus, mem, disk, ports)
    environment = {f"PORT{i}": str(p) for i, p in enumerate(picked)}
    if picked:
        environment["PORTS"] = ",".join(map(str, picked))
    environment.update(env or {})
    if executor is not None and command is not None:
        raise ValueError("a task has a command or an executor, not both")
    cmd = None if executor is not None else CommandInfo(
        value=command or "", shell=shell and command is not None, arguments=tuple(arguments),
        environment=environment)
    return TaskInfo(name=name or task_id, task_id=task_id, agent_id=offer.agent_id,
                    resources=res, command=cmd, container=container,
                    labels=dict(labels or {}), executor=executor, data=data)


class ResourcesLeft:
    """What is left of one offer while tasks are packed into it.

    >>> left = ResourcesLeft(offer)
    >>> while pending and left.fits(cpus=0.1, mem=32):
    ...     tasks.append(left.make_task(next_id(), "sleep 1", cpus=0.1, mem=32))
    """

    def __init__(self, offer: Offer) -> None:
        self.offer = offer
        self.left = offer.resources
        self.tasks: list[TaskInfo] = []

    def fits(self, cpus: float, mem: float, disk: float = 0, ports: int = 0) -> bool:
        try:
            task_resources(self.left, cpus, mem, disk, ports)
        except ResourceError:
            return False
        return True

    def make_task(self, task_id: str, command: str | None, cpus: float, mem: float,
                  disk: float = 0, ports: int = 0, env: Mapping[str, str] | None = None,
                  name: str | None = None, shell: bool = True, **kw: object) -> TaskInfo:
        """Like `make_task`, from what is left; the task's resources are then used up."""
        task = make_task(task_id, self.offer, command, cpus, mem, disk, ports, env, name,
                         shell, available=self.left, **kw)  # type: ignore[arg-type]
        self.left -= task.resources
        self.tasks.append(task)
        return task

    def take(self, task_id: str, command: str | None, cpus: float, mem: float,
             **kw: object) -> TaskInfo | None:
        """`make_task`, or None when the task does not fit any more."""
        try:
            return self.make_task(task_id, command, cpus, mem, **kw)  # type: ignore[arg-type]
        except ResourceError:
            return None


def reserve(resources: Resources | str, role: str) -> Operation:
    """A RESERVE of unreserved offered `resources` (text or Resources) for `role`."""
    res = Resources.parse(resources) if isinstance(resources, str) else resources
    return Operation("RESERVE", resources=res.flatten(role))


def unreserve(resources: Resources) -> Operation:
    """An UNRESERVE of resources of an offer reserved for a role (e.g. `offer.resources
    .reserved("web")`): they go back to `*`."""
    return Operation("UNRESERVE", resources=resources.reserved())


def launch(*tasks: TaskInfo) -> Operation:
    return Operation("LAUNCH", tuple(tasks))
