"""A first fair allocator: whole agents to the framework with the lowest dominant share.

For every agent with unallocated resources, in id order, the active framework with the lowest
DRF dominant share (its allocation / cluster total; ties by framework id) that is not suppressed
and has no unexpired refuse filter for the agent gets everything on the agent it may use
(unreserved resources plus reservations of its roles). If reserved resources stay behind, the
next framework in line is considered for them. A later issue replaces this with hierarchical
DRF (role sorter -> framework sorter, weights, quota); the Allocator protocol stays.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

from attrs import define, field

from mesos_common.resources import EMPTY, Resources
from mesos_master.allocator.base import AgentId, FrameworkId, OfferGrant

MAX_REFUSE_SECONDS = 365 * 24 * 3600.0  # Mesos caps filters at a year, too


def _min_allocatable(free: Resources) -> bool:
    """Mesos' default --min_allocatable_resources (cpus:0.01|mem:32): no crumbs offered."""
    q = free.quantities()
    return q.get("cpus", 0.0) >= 0.01 or q.get("mem", 0.0) >= 32.0


@define
class _Agent:
    total: Resources
    allocated: dict[FrameworkId, Resources] = field(factory=dict)

    def free(self) -> Resources:
        out = self.total
        for res in self.allocated.values():
            out = out - res
        return out


@define
class _Framework:
    roles: frozenset[str]
    active: bool
    # Summed over agents; only its scalars are meaningful (ports of different agents overlap),
    # which is all the dominant share needs. Per-agent truth lives in _Agent.allocated.
    allocated: Resources = EMPTY
    suppressed: set[str] = field(factory=set)
    filters: dict[AgentId, float] = field(factory=dict)  # agent -> refused until

    def offerable(self, free: Resources) -> Resources:
        """What of `free` this framework may get through its roles that are not suppressed."""
        roles = self.roles - self.suppressed
        if not roles:
            return EMPTY
        unreserved = free.unreserved()
        out = unreserved
        for role in sorted(roles):
            if role != "*":
                out = out + free.reserved(role)
        return out


class SimpleAllocator:
    """See the module docstring. Deterministic: same calls, same grants."""

    def __init__(self, min_allocatable=_min_allocatable) -> None:
        self._agents: dict[AgentId, _Agent] = {}
        self._frameworks: dict[FrameworkId, _Framework] = {}
        self._total: Resources = EMPTY
        self._min_allocatable = min_allocatable
        self.allocation_runs = 0

    # ---------------------------------------------------------------- agents

    def add_agent(self, agent_id: AgentId, total: Resources,
                  used: Mapping[FrameworkId, Resources]) -> None:
        if agent_id in self._agents:
            self.remove_agent(agent_id)
        agent = _Agent(total, {fw: res for fw, res in used.items() if res})
        self._agents[agent_id] = agent
        self._total = self._total + total
        for fw_id, res in agent.allocated.items():
            fw = self._frameworks.get(fw_id)
            if fw is not None:
                fw.allocated = fw.allocated + res

    def remove_agent(self, agent_id: AgentId) -> None:
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return
        self._total = self._total - agent.total
        for fw_id, res in agent.allocated.items():
            fw = self._frameworks.get(fw_id)
            if fw is not None:
                fw.allocated = fw.allocated - res
                fw.filters.pop(agent_id, None)

    # ---------------------------------------------------------------- frameworks

    def add_framework(self, framework_id: FrameworkId, roles: frozenset[str],
                      used: Mapping[AgentId, Resources], active: bool) -> None:
        roles = frozenset(roles) or frozenset({"*"})
        if framework_id in self._frameworks:  # already known: only its roles/activity change
            known = self._frameworks[framework_id]
            known.roles, known.active = roles, active
            return
        fw = _Framework(roles, active)
        self._frameworks[framework_id] = fw
        for agent_id, agent in self._agents.items():  # allocations recorded by add_agent
            fw.allocated = fw.allocated + agent.allocated.get(framework_id, EMPTY)
        for agent_id, res in used.items():
            agent = self._agents.get(agent_id)
            if agent is not None and res:
                agent.allocated[framework_id] = agent.allocated.get(framework_id, EMPTY) + res
                fw.allocated = fw.allocated + res

    def remove_framework(self, framework_id: FrameworkId) -> None:
        self._frameworks.pop(framework_id, None)
        for agent in self._agents.values():
            agent.allocated.pop(framework_id, None)

    def activate_framework(self, framework_id: FrameworkId) -> None:
        fw = self._frameworks.get(framework_id)
        if fw is not None:
            fw.active = True

    def deactivate_framework(self, framework_id: FrameworkId) -> None:
        fw = self._frameworks.get(framework_id)
        if fw is not None:
            fw.active = False

    def suppress(self, framework_id: FrameworkId, roles: frozenset[str]) -> None:
        fw = self._frameworks.get(framework_id)
        if fw is not None:
            fw.suppressed |= set(roles or fw.roles)

    def revive(self, framework_id: FrameworkId, roles: frozenset[str]) -> None:
        fw = self._frameworks.get(framework_id)
        if fw is not None:
            fw.suppressed -= set(roles or fw.roles)
            fw.filters.clear()

    # ---------------------------------------------------------------- resources

    def recover(self, framework_id: FrameworkId, agent_id: AgentId, resources: Resources,
                refuse_seconds: float | None, now: float) -> None:
        agent = self._agents.get(agent_id)
        fw = self._frameworks.get(framework_id)
        if agent is not None and framework_id in agent.allocated:
            left = agent.allocated[framework_id] - resources
            if left:
                agent.allocated[framework_id] = left
            else:
                del agent.allocated[framework_id]
            if fw is not None:
                fw.allocated = fw.allocated - resources
        if fw is not None and agent is not None and refuse_seconds is not None:
            if math.isnan(refuse_seconds) or refuse_seconds <= 0:
                return
            until = now + min(refuse_seconds, MAX_REFUSE_SECONDS)
            fw.filters[agent_id] = max(until, fw.filters.get(agent_id, until))

    def allocate(self, now: float,
                 agents: Iterable[AgentId] | None = None) -> list[OfferGrant]:
        self.allocation_runs += 1
        ids = sorted(self._agents) if agents is None else sorted(
            a for a in set(agents) if a in self._agents)
        grants: list[OfferGrant] = []
        for agent_id in ids:
            grants.extend(self._allocate_agent(agent_id, now))
        return grants

    def _allocate_agent(self, agent_id: AgentId, now: float) -> list[OfferGrant]:
        agent = self._agents[agent_id]
        free = agent.free()
        grants: list[OfferGrant] = []
        tried: set[FrameworkId] = set()
        while free:
            best: tuple[float, FrameworkId] | None = None
            for fw_id, fw in self._frameworks.items():
                if fw_id in tried or not self._eligible(fw, agent_id, now):
                    continue
                offerable = fw.offerable(free)
                if not offerable or not self._min_allocatable(offerable):
                    continue
                key = (fw.allocated.dominant_share(self._total), fw_id)
                if best is None or key < best:
                    best = key
            if best is None:
                break
            fw_id = best[1]
            tried.add(fw_id)
            fw = self._frameworks[fw_id]
            res = fw.offerable(free)
            agent.allocated[fw_id] = agent.allocated.get(fw_id, EMPTY) + res
            fw.allocated = fw.allocated + res
            free = free - res
            grants.append(OfferGrant(fw_id, agent_id, res))
        return grants

    @staticmethod
    def _eligible(fw: _Framework, agent_id: AgentId, now: float) -> bool:
        if not fw.active:
            return False
        until = fw.filters.get(agent_id)
        if until is not None:
            if until > now:
                return False
            del fw.filters[agent_id]
        return True

    # ---------------------------------------------------------------- introspection

    def allocated(self, agent_id: AgentId) -> Mapping[FrameworkId, Resources]:
        """What each framework holds on the agent (offers + tasks): for checks and tests."""
        agent = self._agents.get(agent_id)
        return dict(agent.allocated) if agent is not None else {}

    def total(self) -> Resources:
        return self._total

    def framework_allocation(self, framework_id: FrameworkId) -> Resources:
        fw = self._frameworks.get(framework_id)
        return fw.allocated if fw is not None else EMPTY
