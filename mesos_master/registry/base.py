"""Registry state and operations (cf. Mesos registrar.hpp / registry_operations.hpp).

The registry holds only what a restarted master cannot learn again from its peers: which agent
ids were admitted (so a returning agent keeps its id), which are unreachable (so their tasks
are reported correctly during reconciliation), the operator's role weights and quotas, the
maintenance schedule with the machines that are down, and which agents an operator deactivated
or is draining (so a new leader offers them to nobody and finishes the drain).
Every change is a small frozen operation whose pure `apply(state) -> bool` says whether it
mutated anything; the core emits `Persist(op)` and acts only once `PersistDone(op)` comes
back, so nothing is acknowledged before it is durable.
"""
from __future__ import annotations

import copy
from typing import Any, Protocol

from attrs import define, field, frozen

from mesos_master.reservations import NO_RESERVATIONS, Reservations

Machine = tuple[str, str]  # Mesos MachineID: (hostname, ip); either may be empty


@frozen
class Window:
    """A maintenance window: these machines are unavailable from `start` (wall-clock
    seconds) for `duration` (None: open-ended)."""

    machines: tuple[Machine, ...]
    start: float
    duration: float | None = None


DRAINING, DRAINED = "DRAINING", "DRAINED"


@frozen
class AgentDrain:
    """What the registry keeps of an operator's DRAIN_AGENT (Mesos' Registry.Slave.drain_info):
    the state, the call's options, and when the agent's tasks are killed if their frameworks
    have not moved them (`deadline`, wall-clock seconds: the master's clock is the wall clock,
    so a new leader keeps the deadline the frameworks were told)."""

    state: str  # DRAINING | DRAINED
    max_grace_period: float | None
    mark_gone: bool
    deadline: float

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "max_grace_period": self.max_grace_period,
                "mark_gone": self.mark_gone, "deadline": self.deadline}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AgentDrain:
        grace = doc.get("max_grace_period")
        state = str(doc["state"])
        if state not in (DRAINING, DRAINED):
            raise ValueError(f"unknown drain state {state!r}")
        return cls(state, None if grace is None else float(grace), bool(doc["mark_gone"]),
                   float(doc["deadline"]))


@define
class RegistryState:
    """Admitted agents (id -> hostname), unreachable agents and agents an operator marked gone
    (id -> time marked); disjoint. The dynamic reservations of admitted or unreachable agents
    (id -> reserved resources by who reserved them). Role weights (role -> weight) and quota
    guarantees (role -> {resource: amount}). Agents an operator deactivated (id -> their
    drain, None when only deactivated), admitted or unreachable."""

    admitted: dict[str, str] = field(factory=dict)
    unreachable: dict[str, float] = field(factory=dict)
    weights: dict[str, float] = field(factory=dict)
    quotas: dict[str, dict[str, float]] = field(factory=dict)
    gone: dict[str, float] = field(factory=dict)
    reserved: dict[str, Reservations] = field(factory=dict)
    schedule: list[Window] = field(factory=list)
    down: set[Machine] = field(factory=set)
    deactivated: dict[str, AgentDrain | None] = field(factory=dict)

    def copy(self) -> RegistryState:
        return copy.deepcopy(self)


@frozen
class AdmitAgent:
    """A newly registering agent gets its id; refused (no mutation) if the id is taken."""

    agent_id: str
    hostname: str

    def apply(self, state: RegistryState) -> bool:
        if self.agent_id in state.admitted or self.agent_id in state.unreachable \
                or self.agent_id in state.gone:
            return False
        state.admitted[self.agent_id] = self.hostname
        return True


@frozen
class MarkUnreachable:
    """An admitted agent stopped answering: it may come back, its tasks are UNREACHABLE."""

    agent_id: str
    time: float

    def apply(self, state: RegistryState) -> bool:
        if self.agent_id not in state.admitted:
            return False
        del state.admitted[self.agent_id]
        state.unreachable[self.agent_id] = self.time
        return True


@frozen
class MarkReachable:
    """An unreachable agent re-registered; it is admitted again (with its current hostname)."""

    agent_id: str
    hostname: str = ""

    def apply(self, state: RegistryState) -> bool:
        if self.agent_id in state.gone:
            return False
        was_unreachable = state.unreachable.pop(self.agent_id, None) is not None
        if self.agent_id in state.admitted and not was_unreachable:
            return False
        state.admitted[self.agent_id] = self.hostname
        return True


@frozen
class RemoveAgent:
    """The agent left for good (it unregistered): forget it entirely."""

    agent_id: str

    def apply(self, state: RegistryState) -> bool:
        state.reserved.pop(self.agent_id, None)
        state.deactivated.pop(self.agent_id, None)
        a = state.admitted.pop(self.agent_id, None) is not None
        u = state.unreachable.pop(self.agent_id, None) is not None
        return a or u


@frozen
class MarkGone:
    """An operator declared the agent gone for good (Mesos' MARK_AGENT_GONE): its id may never
    come back, so it is remembered rather than forgotten."""

    agent_id: str
    time: float

    def apply(self, state: RegistryState) -> bool:
        a = state.admitted.pop(self.agent_id, None) is not None
        u = state.unreachable.pop(self.agent_id, None) is not None
        if not (a or u):
            return False
        state.reserved.pop(self.agent_id, None)
        state.deactivated.pop(self.agent_id, None)
        state.gone[self.agent_id] = self.time
        return True


@frozen
class UpdateReservations:
    """An agent's dynamic reservations are now `reserved` (the whole set with who made each;
    empty: none), so a restarted master offers them to their roles only (Mesos' checkpointed
    resources) and still knows whom an UNRESERVE takes from."""

    agent_id: str
    reserved: Reservations

    def apply(self, state: RegistryState) -> bool:
        if self.agent_id not in state.admitted and self.agent_id not in state.unreachable:
            return False
        if state.reserved.get(self.agent_id, NO_RESERVATIONS) == self.reserved:
            return False
        if self.reserved:
            state.reserved[self.agent_id] = self.reserved
        else:
            del state.reserved[self.agent_id]
        return True


@frozen
class UpdateAgentDrain:
    """An agent's deactivation and drain are now these (Mesos' DeactivateAgent, DrainAgent,
    MarkAgentDrained and ReactivateAgent registry operations in one): `deactivated` False
    clears both; True with `drain` None is a plain DEACTIVATE_AGENT, which leaves a drain as
    it is (draining deactivates); a DRAINED drain is recorded only over a DRAINING one."""

    agent_id: str
    deactivated: bool
    drain: AgentDrain | None = None

    def apply(self, state: RegistryState) -> bool:
        if self.agent_id not in state.admitted and self.agent_id not in state.unreachable:
            return False
        known = self.agent_id in state.deactivated
        if not self.deactivated:
            state.deactivated.pop(self.agent_id, None)
            return known
        old = state.deactivated.get(self.agent_id)
        if known and (self.drain is None or old == self.drain):
            return False
        if self.drain is not None and self.drain.state == DRAINED and \
                (old is None or old.state != DRAINING):
            return False
        state.deactivated[self.agent_id] = self.drain
        return True


@frozen
class UpdateWeights:
    """Set the weights of the given roles (others keep theirs; weight 1 is the default)."""

    weights: tuple[tuple[str, float], ...]

    def apply(self, state: RegistryState) -> bool:
        changed = False
        for role, weight in self.weights:
            if state.weights.get(role) != weight:
                state.weights[role] = weight
                changed = True
        return changed


@frozen
class UpdateQuota:
    """Set a role's guarantee (scalar name -> amount); an empty guarantee removes it."""

    role: str
    guarantee: tuple[tuple[str, float], ...]

    def apply(self, state: RegistryState) -> bool:
        new = dict(self.guarantee)
        if state.quotas.get(self.role, {}) == new:
            return False
        if new:
            state.quotas[self.role] = new
        else:
            del state.quotas[self.role]
        return True


@frozen
class UpdateSchedule:
    """Replace the maintenance schedule (a down machine stays in it: checked before)."""

    windows: tuple[Window, ...]

    def apply(self, state: RegistryState) -> bool:
        if state.schedule == list(self.windows):
            return False
        state.schedule = list(self.windows)
        return True


@frozen
class StartMaintenance:
    """Scheduled machines go down: their agents are removed and may not register."""

    machines: tuple[Machine, ...]

    def apply(self, state: RegistryState) -> bool:
        new = set(self.machines) - state.down
        state.down |= new
        return bool(new)


@frozen
class StopMaintenance:
    """Down machines come back up and leave the schedule."""

    machines: tuple[Machine, ...]

    def apply(self, state: RegistryState) -> bool:
        gone = set(self.machines) & state.down
        if not gone:
            return False
        state.down -= gone
        windows = [Window(tuple(mc for mc in w.machines if mc not in gone), w.start, w.duration)
                   for w in state.schedule]
        state.schedule = [w for w in windows if w.machines]
        return True


MaintenanceOperation = UpdateSchedule | StartMaintenance | StopMaintenance
AgentOperation = (AdmitAgent | MarkUnreachable | MarkReachable | RemoveAgent | MarkGone
                  | UpdateReservations | UpdateAgentDrain)
RegistryOperation = (AdmitAgent | MarkUnreachable | MarkReachable | RemoveAgent | MarkGone
                     | UpdateReservations | UpdateAgentDrain | UpdateWeights | UpdateQuota
                     | UpdateSchedule | StartMaintenance | StopMaintenance)


def maintenance_json(state: RegistryState) -> dict[str, Any]:
    """The schedule and the down machines as stored (sqlite row, ZooKeeper node)."""
    return {"schedule": [{"machines": [list(mc) for mc in w.machines], "start": w.start,
                          "duration": w.duration} for w in state.schedule],
            "down": sorted(list(mc) for mc in state.down)}


def load_maintenance(state: RegistryState, doc: dict[str, Any]) -> None:
    state.schedule = [Window(tuple((str(h), str(i)) for h, i in w["machines"]),
                             float(w["start"]),
                             None if w.get("duration") is None else float(w["duration"]))
                      for w in doc.get("schedule", [])]
    state.down = {(str(h), str(i)) for h, i in doc.get("down", [])}


def deactivated_json(state: RegistryState) -> dict[str, Any]:
    """Deactivated agents as stored (ZooKeeper node): id -> drain (null: only deactivated)."""
    return {a: None if d is None else d.to_json() for a, d in state.deactivated.items()}


def load_deactivated(doc: dict[str, Any]) -> dict[str, AgentDrain | None]:
    return {str(a): None if d is None else AgentDrain.from_json(d) for a, d in doc.items()}


class Registry(Protocol):
    """Where the state lives: memory (tests, --registry=in_memory) or SQLite (embedded)."""

    def load(self) -> RegistryState: ...

    def apply(self, op: RegistryOperation) -> bool: ...

    def apply_many(self, ops: list[RegistryOperation]) -> list[bool]: ...

    def close(self) -> None: ...


class MemoryRegistry:
    """The in-memory twin of SqliteRegistry: same semantics, nothing survives the process."""

    def __init__(self, state: RegistryState | None = None) -> None:
        self._state = state.copy() if state is not None else RegistryState()

    def load(self) -> RegistryState:
        return self._state.copy()

    def apply(self, op: RegistryOperation) -> bool:
        return op.apply(self._state)

    def apply_many(self, ops: list[RegistryOperation]) -> list[bool]:
        return [op.apply(self._state) for op in ops]

    def close(self) -> None:
        pass
