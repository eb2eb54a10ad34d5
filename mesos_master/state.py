"""The master's in-memory records (soft state, rebuilt from re-registration) and invariants.

Records are mutable attrs classes owned by the core; views and tests only read them.
`check_invariants` states what must hold after every event, whatever the peers did.
"""
from __future__ import annotations

from collections import deque
from typing import Iterable

from attrs import define, field

from mesos_common import messages as m
from mesos_common import task_states
from mesos_common.resources import EMPTY, Resources

MAX_STATUSES_PER_TASK = 32


@define(eq=False)
class Task:
    framework_id: str
    agent_id: str
    info: m.TaskInfo
    state: str
    role: str = "*"
    statuses: list[tuple[str, float, bool | None]] = field(factory=list)  # (state, time, healthy)
    latest: m.TaskStatus | None = None  # latest status the agent sent (or the master made)
    resources_recovered: bool = False  # resources given back on the first terminal update

    @property
    def id(self) -> str:
        return self.info.task_id

    @property
    def resources(self) -> Resources:
        return self.info.resources

    @property
    def terminal(self) -> bool:
        return task_states.is_terminal(self.state)

    def record(self, state: str, timestamp: float, healthy: bool | None = None) -> None:
        self.statuses.append((state, timestamp, healthy))
        if len(self.statuses) > MAX_STATUSES_PER_TASK:
            del self.statuses[1]  # keep the first (launch) status and the latest ones


@define(eq=False)
class Offer:
    id: str
    framework_id: str
    agent_id: str
    resources: Resources
    created: float


@define(eq=False)
class Agent:
    id: str
    peer: bytes
    info: m.AgentInfo
    version: str
    registered_time: float
    last_seen: float
    reregistered_time: float | None = None
    used: Resources = EMPTY  # resources of non-terminal tasks (and terminal ones not yet recovered)
    offered: Resources = EMPTY
    tasks: dict[tuple[str, str], Task] = field(factory=dict)  # (framework, task) -> task
    offers: set[str] = field(factory=set)
    unreachable_pending: bool = False  # Persist(MarkUnreachable) emitted, not yet done
    epoch: float = 0.0  # stamp of the latest (re-)admission, carried by RunTask

    @property
    def total(self) -> Resources:
        return self.info.resources


@define(eq=False)
class Framework:
    id: str
    info: m.FrameworkInfo
    peer: bytes | None
    registered_time: float
    last_seen: float
    active: bool = True
    connected: bool = True
    recovered: bool = False  # placeholder learned from an agent; not subscribed to this master
    reregistered_time: float | None = None
    unregistered_time: float | None = None
    tasks: dict[str, Task] = field(factory=dict)
    unreachable_tasks: dict[str, Task] = field(factory=dict)
    completed_tasks: deque[Task] = field(factory=lambda: deque(maxlen=1000))
    offers: set[str] = field(factory=set)

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.info.capabilities

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self.info.roles) or frozenset({"*"})

    def known_task(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id) or self.unreachable_tasks.get(task_id)


class InvariantError(AssertionError):
    pass


def _fail(text: str) -> None:
    raise InvariantError(text)


def check_invariants(agents: dict[str, Agent], frameworks: dict[str, Framework],
                     offers: dict[str, Offer]) -> None:
    """Raise InvariantError when the records contradict each other (a bug of ours)."""
    _check_offers(agents, frameworks, offers)
    for agent in agents.values():
        used = _sum(t.resources for t in agent.tasks.values() if not t.resources_recovered)
        if used != agent.used:
            _fail(f"agent {agent.id}: used {agent.used!r} != sum of its tasks {used!r}")
        if not agent.total.contains(agent.offered + agent.used):
            _fail(f"agent {agent.id}: offered {agent.offered!r} + used {agent.used!r} exceed "
                  f"total {agent.total!r}")
    homes: dict[tuple[str, str], str] = {}
    for agent in agents.values():
        for key, task in agent.tasks.items():
            if key in homes:
                _fail(f"task {key} on two agents: {homes[key]} and {agent.id}")
            homes[key] = agent.id
            fw = frameworks.get(task.framework_id)
            if task.agent_id != agent.id or fw is None or fw.tasks.get(task.id) is not task:
                _fail(f"task {key} on agent {agent.id} is not its framework's task")
    for fw in frameworks.values():
        for task_id, task in fw.tasks.items():
            if homes.get((fw.id, task_id)) != task.agent_id or task.framework_id != fw.id:
                _fail(f"task {task_id} of framework {fw.id} has no agent")
            if task_id in fw.unreachable_tasks:
                _fail(f"task {task_id} of framework {fw.id} both active and unreachable")


def _check_offers(agents: dict[str, Agent], frameworks: dict[str, Framework],
                  offers: dict[str, Offer]) -> None:
    per_agent: dict[str, list[Resources]] = {}
    for offer in offers.values():
        agent = agents.get(offer.agent_id)
        fw = frameworks.get(offer.framework_id)
        if agent is None or offer.id not in agent.offers:
            _fail(f"offer {offer.id} on unknown agent {offer.agent_id}")
        if fw is None or offer.id not in fw.offers:
            _fail(f"offer {offer.id} of unknown framework {offer.framework_id}")
        if not offer.resources:
            _fail(f"offer {offer.id} is empty")
        per_agent.setdefault(offer.agent_id, []).append(offer.resources)
    for agent in agents.values():
        parts = per_agent.get(agent.id, [])
        if _sum(parts) != agent.offered:
            _fail(f"agent {agent.id}: offered {agent.offered!r} != sum of its offers")
        held = [t.resources for t in agent.tasks.values() if not t.resources_recovered]
        if _shares_items(parts + held):
            _fail(f"agent {agent.id}: a port or set item is in two offers (or offered and used)")
        if any(o not in offers for o in agent.offers):
            _fail(f"agent {agent.id} lists a dead offer")
    for fw in frameworks.values():
        if any(o not in offers for o in fw.offers):
            _fail(f"framework {fw.id} lists a dead offer")


def _items(res: Resources, name: str) -> int:
    return sum(e - b + 1 for b, e in res.ranges(name)) + len(res.set_items(name))


def _shares_items(parts: list[Resources]) -> bool:
    """Scalars that are double-counted show up as offered + used > total; ranges and sets
    merge on `+`, so overlap is found by counting items: the union must be as large as the sum."""
    union = _sum(parts)
    names = union.names() - set(union.quantities())
    return any(sum(_items(p, n) for p in parts) != _items(union, n) for n in names)


def _sum(items: Iterable[Resources]) -> Resources:
    out = EMPTY
    for r in items:
        out = out + r
    return out
