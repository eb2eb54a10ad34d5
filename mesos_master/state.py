"""The master's in-memory records (soft state, rebuilt from re-registration) and invariants.

Records are mutable attrs classes owned by the core; views and tests only read them.
`check_invariants` states what must hold after every event, whatever the peers did.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, NoReturn

from attrs import define, field

from mesos_common import messages as m
from mesos_common import task_states
from mesos_common.resources import EMPTY, Resources
from mesos_master.reservations import NO_RESERVATIONS, Reservations

MAX_STATUSES_PER_TASK = 32


_NO_LABELS: dict[str, str] = {}  # shared by every task without labels (never mutated)


@define(eq=False)
class Task:
    """One task as the master books it. At 100k tasks every byte counts (issue #7): the
    history is one flat list, only the latest update's uuid and health are kept (what
    acknowledgement and reconciliation need), and once the agent has confirmed the launch
    `info` is swapped for a compact copy without command, data or health check (only a
    STAGING task may need its RunTask sent again)."""

    framework_id: str
    agent_id: str
    info: m.TaskInfo
    state: str
    role: str = "*"
    history: list[Any] = field(factory=list)  # flat (state, time, healthy) triples
    latest_uuid: bytes | None = None  # uuid of the latest agent update (None: none, or no uuid)
    healthy: bool | None = None  # health in the latest agent update
    confirmed: bool = False  # the agent has sent an update for it
    forwarded_at: float | None = None  # when the latest update went to the framework
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

    @property
    def statuses(self) -> list[tuple[str, float, bool | None]]:
        """(state, time, healthy), oldest first."""
        h = self.history
        return [(h[i], h[i + 1], h[i + 2]) for i in range(0, len(h), 3)]

    @property
    def last_status_time(self) -> float | None:
        return self.history[-2] if self.history else None

    def record(self, state: str, timestamp: float, healthy: bool | None = None) -> None:
        self.history += (state, timestamp, healthy)
        if len(self.history) > 3 * MAX_STATUSES_PER_TASK:
            del self.history[3:6]  # keep the first (launch) status and the latest ones

    def confirm(self, uuid: bytes | None, healthy: bool | None, resources: Resources) -> None:
        """The agent reported on the task: keep what views and kills need, drop the rest."""
        self.latest_uuid, self.healthy = uuid, healthy
        if not self.confirmed:
            self.confirmed = True
            self.info = compact_info(self.info, self.agent_id, resources)


def compact_info(info: m.TaskInfo, agent_id: str, resources: Resources) -> m.TaskInfo:
    """What the master still needs of a launched task: ids, name, resources (pass a shared
    copy), labels and container (for /master/state) and the kill grace period."""
    return m.TaskInfo(name=info.task_id if info.name == info.task_id else info.name,
                      task_id=info.task_id, agent_id=agent_id, resources=resources,
                      container=info.container, kill_grace_period=info.kill_grace_period,
                      labels=info.labels or _NO_LABELS)


@define(eq=False)
class Offer:
    id: str
    framework_id: str
    agent_id: str
    resources: Resources
    created: float


@define(eq=False)
class DrainInfo:
    """An operator's DRAIN_AGENT: DRAINING until nothing runs on the agent, then DRAINED.
    `waiting`: framework -> the inverse offer it was sent and has not accepted; the master
    kills that framework's tasks when it accepts or at `deadline`."""

    state: str
    max_grace_period: float | None
    mark_gone: bool
    deadline: float
    waiting: dict[str, str] = field(factory=dict)


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
    # Custom executors running here by (framework, executor id); their resources are in `used`
    executors: dict[tuple[str, str], m.ExecutorInfo] = field(factory=dict)
    offers: set[str] = field(factory=set)
    unreachable_pending: bool = False  # Persist(MarkUnreachable) emitted, not yet done
    epoch: float = 0.0  # stamp of the latest (re-)admission, carried by RunTask
    principal: str | None = None  # as authenticated when it (re-)registered
    # dynamic reservations (in `total` too) by who made them, as in the registry
    reservations: Reservations = NO_RESERVATIONS
    deactivated: bool = False  # no offers (DEACTIVATE_AGENT, or draining)
    drain: DrainInfo | None = None

    @property
    def total(self) -> Resources:
        return self.info.resources

    @property
    def reserved(self) -> Resources:
        """The dynamic reservations, whoever made them."""
        return self.reservations.total


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


def _fail(text: str) -> NoReturn:
    raise InvariantError(text)


def check_invariants(agents: dict[str, Agent], frameworks: dict[str, Framework],
                     offers: dict[str, Offer]) -> None:
    """Raise InvariantError when the records contradict each other (a bug of ours)."""
    _check_offers(agents, frameworks, offers)
    for agent in agents.values():
        used = (_sum(t.resources for t in agent.tasks.values() if not t.resources_recovered)
                + _sum(e.resources for e in agent.executors.values()))
        if used != agent.used:
            _fail(f"agent {agent.id}: used {agent.used!r} != sum of its tasks and executors "
                  f"{used!r}")
        if not agent.total.contains(agent.reserved):
            _fail(f"agent {agent.id}: reservations {agent.reserved!r} beyond its total")
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
        if not offer.resources.roles() <= fw.roles | {"*"}:
            _fail(f"offer {offer.id} holds reservations of roles other than {fw.id}'s")
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
