"""Hierarchical DRF allocator: roles by DRF (with weights), then frameworks within a role.

Mesos' HierarchicalAllocatorProcess with return values instead of callbacks. One cycle:
1. quota stage: roles whose guarantee is not yet met get agents first (in role DRF order);
2. fair stage: every agent (in a random order, as Mesos shuffles) goes to the first role in
   DRF order that has an eligible framework; inside the role, to the first framework in DRF
   order that is active, not suppressed for the role and has no unexpired refuse filter for
   the agent. It gets everything on the agent it may use: unreserved resources plus the
   reservations of its role (`cpus(ads):2` is offered only to role `ads`). While a role's
   quota is unmet, other roles are not given resources the quota still needs (headroom).

Built for 10,000 agents x 1,000 frameworks per cycle in Python: shares are cached in the
sorters and updated incrementally; an agent without reservations is handed out as its one
`free` Resources object (no algebra in the loop); min-allocatable and headroom checks use
per-agent milli-unit dicts; refuse filters are one int bit mask per agent, so "first eligible
framework" is a short scan of the role's order or, when most frameworks refused the agent, a
walk over the few eligible bits.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mesos_common.resources import EMPTY, Resources
from mesos_master.allocator.base import AgentId, FrameworkId, OfferGrant
from mesos_master.allocator.filters import AgentFilters, ExpiryInterner
from mesos_master.allocator.quantities import (
    MIN_CPUS,
    MIN_MEM,
    allocatable,
    fits_headroom,
    milli,
    sum_chunks,
    take_chunk,
    take_headroom,
)
from mesos_master.allocator.sorter import DRFSorter, Quantities, Sorter, _add_q, dominant_share

SCAN_LIMIT = 16    # extra framework-order entries a scan may try before walking the bits


class _Agent:
    __slots__ = ("id", "total", "free", "free_q", "reserved", "alloc", "filters", "gpus")

    def __init__(self, agent_id: str, total: Resources) -> None:
        self.id = agent_id
        self.total = total
        self.free = total
        self.free_q: Quantities = {}
        self.reserved = bool(total.reserved())
        self.gpus = total.scalar("gpus") > 0  # offered to GPU_RESOURCES frameworks only
        # (framework index, role) -> what it holds here, as the grants/uses it came in (summed
        # only when needed: a decline usually hands back exactly one chunk)
        self.alloc: dict[tuple[int, str], list[Resources]] = {}
        self.filters = AgentFilters()

    def refresh(self) -> None:
        """free_q: unreserved free quantities (what any role could get, and headroom)."""
        self.free_q = milli(self.free.unreserved() if self.reserved else self.free)


class _Framework:
    __slots__ = ("id", "index", "roles", "active", "suppressed", "agents")

    def __init__(self, fw_id: str, index: int, roles: frozenset[str], active: bool) -> None:
        self.id, self.index, self.roles, self.active = fw_id, index, roles, active
        self.suppressed: set[str] = set()
        self.agents: dict[str, int] = {}  # agent id -> number of (role) allocations there


class _Role:
    __slots__ = ("name", "index", "sorter", "active_mask", "frameworks", "quota")

    def __init__(self, name: str, index: int, sorter: Sorter) -> None:
        self.name, self.index, self.sorter = name, index, sorter
        self.active_mask = 0  # bits of frameworks in this role that may get offers
        self.frameworks: set[str] = set()
        self.quota: Quantities = {}


class HierarchicalAllocator:
    """See the module docstring. Deterministic for a given `rng` seed."""

    def __init__(self, rng: random.Random | None = None,
                 sorter_factory: Callable[[], Sorter] = DRFSorter) -> None:
        self._rng = rng or random.Random(0)
        self._sorter_factory = sorter_factory
        self._agents: dict[AgentId, _Agent] = {}
        self._agent_list: list[_Agent] = []
        self._frameworks: dict[FrameworkId, _Framework] = {}
        self._fw_by_index: dict[int, _Framework] = {}
        self._no_gpus = 0  # bits of the frameworks without GPU_RESOURCES
        self._free_indices: list[int] = []
        self._roles: dict[str, _Role] = {}
        self._role_by_index: dict[int, _Role] = {}
        self._role_sorter: Sorter = sorter_factory()
        self._total: Quantities = {}
        self._total_res: Resources | None = EMPTY
        self._total_dirty = False
        self._expiry = ExpiryInterner()
        self._weights: dict[str, float] = {}
        self.allocation_runs = 0
        self._out: list[OfferGrant] = []
        self._inactive: set[AgentId] = set()  # deactivated or draining: offered to nobody

    # ---------------------------------------------------------------- roles, weights, quota

    def _role(self, name: str) -> _Role:
        role = self._roles.get(name)
        if role is None:
            role = _Role(name, len(self._role_by_index), self._sorter_factory())
            role.sorter.set_total(self._total)
            self._roles[name] = role
            self._role_by_index[role.index] = role
            self._role_sorter.add(name, role.index)
            if name in self._weights:
                self._role_sorter.update_weight(name, self._weights[name])
        return role

    def update_weights(self, weights: Mapping[str, float]) -> None:
        """Role weights (default 1): a role's share counts as share / weight."""
        for name, w in weights.items():
            if not w > 0:
                raise ValueError(f"weight of role {name!r} must be positive, got {w!r}")
            self._weights[name] = float(w)
            self._role_sorter.update_weight(self._role(name).name, float(w))

    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def set_quota(self, role: str, guarantee: Resources | None) -> None:
        """Guaranteed minimum for `role` (None or empty removes it)."""
        self._role(role).quota = milli(guarantee) if guarantee else {}

    def quotas(self) -> dict[str, Quantities]:
        return {r.name: dict(r.quota) for r in self._roles.values() if r.quota}

    def _sync_role(self, role: _Role) -> None:
        """A role is in the role order iff some framework of it may get offers."""
        if role.active_mask:
            self._role_sorter.activate(role.name)
        else:
            self._role_sorter.deactivate(role.name)

    # ---------------------------------------------------------------- agents

    def add_agent(self, agent_id: AgentId, total: Resources,
                  used: Mapping[FrameworkId, Resources], keep_filters: bool = False) -> None:
        """Add an agent, or rebook one that is still here. Refuse filters live on the agent's
        record, as in Mesos 1.9+: `remove_agent` drops them (removeSlave -> removeFilters),
        so an agent that comes back after removal is offered at once; rebooking a known agent
        with `keep_filters` (it re-registered with the same attributes: Mesos updateSlave)
        keeps them until they expire."""
        old = self._agents.get(agent_id)
        inactive = agent_id in self._inactive
        if old is not None:
            self.remove_agent(agent_id)
        if inactive and old is not None:
            self._inactive.add(agent_id)
        agent = _Agent(agent_id, total)
        if keep_filters and old is not None:
            agent.filters = old.filters
        self._agents[agent_id] = agent
        self._agent_list.append(agent)
        self._change_total(total, 1)
        for fw_id, res in used.items():
            fw = self._frameworks.get(fw_id)
            if fw is None:
                fw = self._add_framework_record(fw_id, frozenset({"*"}), False)
            self._charge_used(agent, fw, res)
        agent.refresh()

    def _change_total(self, res: Resources, sign: int) -> None:
        """The pool grew or shrank: every share is stale; sorters recompute lazily."""
        _add_q(self._total, milli(res), sign)
        self._total_res = None
        self._total_dirty = True

    def _refresh_total(self) -> None:
        if self._total_dirty:
            self._total_dirty = False
            self._role_sorter.set_total(self._total)
            for role in self._roles.values():
                role.sorter.set_total(self._total)

    def _charge_used(self, agent: _Agent, fw: _Framework, res: Resources) -> None:
        """Resources held by running tasks: reservations to their role, the rest to the
        framework's first role."""
        if not res:
            return
        rest = res
        for name in sorted(fw.roles):
            part = res.reserved(name) if name != "*" else EMPTY
            if part:
                self._charge(agent, fw, self._role(name), part)
                rest = rest - part
        if rest:
            self._charge(agent, fw, self._role(min(fw.roles)), rest)

    def _charge(self, agent: _Agent, fw: _Framework, role: _Role, res: Resources) -> None:
        key = (fw.index, role.name)
        chunks = agent.alloc.get(key)
        if chunks is None:
            fw.agents[agent.id] = fw.agents.get(agent.id, 0) + 1
            agent.alloc[key] = [res]
        else:
            chunks.append(res)
        agent.free = agent.free - res
        q = milli(res)
        if fw.id not in role.sorter:
            role.sorter.add(fw.id, fw.index)
            role.frameworks.add(fw.id)
        role.sorter.allocated(fw.id, q)
        self._role_sorter.allocated(role.name, q)

    def deactivate_agent(self, agent_id: AgentId) -> None:
        self._inactive.add(agent_id)

    def activate_agent(self, agent_id: AgentId) -> None:
        self._inactive.discard(agent_id)

    def remove_agent(self, agent_id: AgentId) -> None:
        self._inactive.discard(agent_id)
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return
        self._agent_list.remove(agent)
        for (index, role_name), chunks in agent.alloc.items():
            fw = self._fw_by_index[index]
            fw.agents.pop(agent_id, None)
            self._uncharge_sorters(fw, self._roles[role_name], milli(sum_chunks(chunks)))
        self._change_total(agent.total, -1)

    def _uncharge_sorters(self, fw: _Framework, role: _Role, q: Quantities) -> None:
        role.sorter.unallocated(fw.id, q)
        self._role_sorter.unallocated(role.name, q)

    # ---------------------------------------------------------------- frameworks

    def add_framework(self, framework_id: FrameworkId, roles: frozenset[str],
                      used: Mapping[AgentId, Resources], active: bool) -> None:
        roles = frozenset(roles) or frozenset({"*"})
        fw = self._frameworks.get(framework_id)
        if fw is None:
            fw = self._add_framework_record(framework_id, roles, active)
        else:  # already known (re-subscribed or learned from an agent): roles/activity only
            self._set_inactive(fw)
            for name in fw.roles - roles:
                role = self._roles[name]
                if not any(k[0] == fw.index and k[1] == name
                           for a in fw.agents for k in self._agents[a].alloc):
                    role.sorter.remove(fw.id)
                    role.frameworks.discard(fw.id)
            fw.roles = roles
            fw.suppressed &= roles
            fw.active = active
        for name in roles:
            role = self._role(name)
            if fw.id not in role.sorter:
                role.sorter.add(fw.id, fw.index)
                role.frameworks.add(fw.id)
        for agent_id, res in used.items():
            agent = self._agents.get(agent_id)
            if agent is not None and res:
                self._charge_used(agent, fw, res)
                agent.refresh()
        self._set_active(fw)

    def _add_framework_record(self, fw_id: str, roles: frozenset[str],
                              active: bool) -> _Framework:
        index = self._free_indices.pop() if self._free_indices else len(self._fw_by_index)
        fw = _Framework(fw_id, index, roles, active)
        self._frameworks[fw_id] = fw
        self._fw_by_index[index] = fw
        self._no_gpus |= 1 << index
        return fw

    def set_gpu_capable(self, framework_id: FrameworkId, capable: bool) -> None:
        fw = self._frameworks.get(framework_id)
        if fw is not None:
            bit = 1 << fw.index
            self._no_gpus = self._no_gpus & ~bit if capable else self._no_gpus | bit

    def _refused(self, agent: _Agent) -> int:
        """Bits of the frameworks the agent may not be offered to: its refuse filters, and
        on a GPU agent the frameworks without GPU_RESOURCES."""
        return agent.filters.mask | self._no_gpus if agent.gpus else agent.filters.mask

    def _set_active(self, fw: _Framework) -> None:
        """Put the framework in the order of every role it may get offers for."""
        bit = 1 << fw.index
        for name in fw.roles:
            role = self._roles[name]
            if fw.active and name not in fw.suppressed:
                role.sorter.activate(fw.id)
                role.active_mask |= bit
            else:
                role.sorter.deactivate(fw.id)
                role.active_mask &= ~bit
            self._sync_role(role)

    def _set_inactive(self, fw: _Framework) -> None:
        bit = ~(1 << fw.index)
        for name in fw.roles:
            role = self._roles[name]
            role.sorter.deactivate(fw.id)
            role.active_mask &= bit
            self._sync_role(role)

    def remove_framework(self, framework_id: FrameworkId) -> None:
        fw = self._frameworks.pop(framework_id, None)
        if fw is None:
            return
        self._set_inactive(fw)
        for agent_id in fw.agents:
            agent = self._agents[agent_id]
            for key in [k for k in agent.alloc if k[0] == fw.index]:
                res = sum_chunks(agent.alloc.pop(key))
                agent.free = agent.free + res
                self._role_sorter.unallocated(key[1], milli(res))
            agent.refresh()
        for role in self._roles.values():
            if fw.id in role.sorter:
                role.sorter.remove(fw.id)
                role.frameworks.discard(fw.id)
        for agent in self._agent_list:
            agent.filters.clear(fw.index)
        del self._fw_by_index[fw.index]
        self._free_indices.append(fw.index)

    def activate_framework(self, framework_id: FrameworkId) -> None:
        fw = self._frameworks.get(framework_id)
        if fw is not None:
            fw.active = True
            self._set_active(fw)

    def deactivate_framework(self, framework_id: FrameworkId) -> None:
        fw = self._frameworks.get(framework_id)
        if fw is not None:
            fw.active = False
            self._set_inactive(fw)

    def suppress(self, framework_id: FrameworkId, roles: frozenset[str]) -> None:
        fw = self._frameworks.get(framework_id)
        if fw is not None:
            fw.suppressed |= set(roles or fw.roles) & fw.roles
            self._set_active(fw)

    def revive(self, framework_id: FrameworkId, roles: frozenset[str]) -> None:
        """Undo suppress for `roles` and clear the framework's refuse filters (Mesos)."""
        fw = self._frameworks.get(framework_id)
        if fw is not None:
            fw.suppressed -= set(roles or fw.roles)
            self._set_active(fw)
            for agent in self._agent_list:
                agent.filters.clear(fw.index)

    # ---------------------------------------------------------------- resources

    def recover(self, framework_id: FrameworkId, agent_id: AgentId, resources: Resources,
                refuse_seconds: float | None, now: float) -> None:
        agent = self._agents.get(agent_id)
        fw = self._frameworks.get(framework_id)
        if agent is None or fw is None:
            return
        rem = resources
        for key in [k for k in agent.alloc if k[0] == fw.index]:
            if not rem:
                break
            chunks = agent.alloc[key]
            if take_chunk(chunks, rem) is None:  # not one of the chunks: sum them and subtract
                entry = sum_chunks(chunks)
                stays = entry - rem
                part = entry - stays
                chunks[:] = [stays] if stays else []
            else:
                part = rem
            if not part:
                continue
            rem = EMPTY if part is rem else rem - part
            if not chunks:
                del agent.alloc[key]
                left = fw.agents.get(agent_id, 1) - 1
                if left > 0:
                    fw.agents[agent_id] = left
                else:
                    fw.agents.pop(agent_id, None)
            agent.free = agent.free + part
            self._uncharge_sorters(fw, self._roles[key[1]], milli(part))
        agent.refresh()
        if refuse_seconds is not None:
            until = self._expiry(now, refuse_seconds)
            if until is not None:
                agent.filters.add(fw.index, until)

    def convert(self, agent_id: AgentId, consumed: Resources, converted: Resources,
                framework_id: FrameworkId | None = None) -> None:
        agent = self._agents[agent_id]
        if framework_id is None:
            assert agent.free.contains(consumed), (agent.free, consumed)
            agent.free = agent.free - consumed + converted
        else:
            index = self._frameworks[framework_id].index
            for key in [k for k in agent.alloc if k[0] == index]:
                held = sum_chunks(agent.alloc[key])
                if held.contains(consumed):
                    agent.alloc[key] = [held - consumed + converted]
                    break
            else:
                raise AssertionError(f"{framework_id} holds no {consumed!r} on {agent_id}")
        agent.total = agent.total - consumed + converted
        agent.reserved = bool(agent.total.reserved())
        agent.refresh()

    # ---------------------------------------------------------------- allocation

    def allocate(self, now: float,
                 agents: Iterable[AgentId] | None = None) -> list[OfferGrant]:
        self.allocation_runs += 1
        self._refresh_total()
        if agents is None:
            todo = list(self._agent_list)
        else:
            todo = [self._agents[a] for a in dict.fromkeys(agents) if a in self._agents]
        if self._inactive:
            todo = [a for a in todo if a.id not in self._inactive]
        self._rng.shuffle(todo)
        grants: list[OfferGrant] = []
        self._out = grants
        need = self._quota_needs()
        if need:
            self._quota_stage(todo, now, need, grants)
            need = self._quota_needs()  # what is still unmet after the quota stage
        headroom = self._headroom(need) if need else None
        for agent in todo:
            if agent.free:
                if agent.filters.next_expiry <= now:
                    agent.filters.expire(now)
                if agent.reserved:
                    self._allocate_reserved(agent, grants, headroom)
                else:
                    self._allocate_plain(agent, grants, headroom)
        return grants

    def _allocate_plain(self, agent: _Agent, grants: list[OfferGrant],
                        headroom: Quantities | None, roles: list[_Role] | None = None) -> None:
        """Fast path: an agent without reservations goes whole to one framework."""
        q = agent.free_q
        if not (q.get("cpus", 0) >= MIN_CPUS or q.get("mem", 0) >= MIN_MEM):
            return
        if headroom is not None and not fits_headroom(headroom, q):
            return
        fm = self._refused(agent)
        by_index = self._role_by_index
        for entry in (roles if roles is not None else self._role_sorter.entries()):
            role = entry if isinstance(entry, _Role) else by_index[entry[2]]
            index = _first_eligible(role, fm)
            if index is not None:
                self._grant(agent, self._fw_by_index[index], role, agent.free, q)
                if headroom is not None:
                    take_headroom(headroom, q)
                return

    def _allocate_reserved(self, agent: _Agent, grants_out: list[OfferGrant],
                           headroom: Quantities | None,
                           roles: list[_Role] | None = None) -> None:
        """Slow path: reservations go to their roles; the unreserved part to one role."""
        fm = self._refused(agent)
        if roles is None:
            roles = [self._role_by_index[e[2]] for e in self._role_sorter.entries()]
        unreserved_taken = False
        for role in roles:
            if not agent.free:
                return
            offer = agent.free.reserved(role.name) if role.name != "*" else EMPTY
            uq = agent.free_q
            take_unreserved = (not unreserved_taken and allocatable(uq) and
                               (headroom is None or fits_headroom(headroom, uq)))
            if take_unreserved:
                offer = offer + agent.free.unreserved()
            if not offer or not allocatable(milli(offer)):
                continue
            index = _first_eligible(role, fm)
            if index is None:
                continue
            if take_unreserved:
                unreserved_taken = True
                if headroom is not None:
                    take_headroom(headroom, uq)
            self._grant(agent, self._fw_by_index[index], role, offer, milli(offer))

    def _grant(self, agent: _Agent, fw: _Framework, role: _Role, res: Resources,
               q: Quantities) -> None:
        key = (fw.index, role.name)
        chunks = agent.alloc.get(key)
        if chunks is None:
            agent.alloc[key] = [res]
            fw.agents[agent.id] = fw.agents.get(agent.id, 0) + 1
        else:
            chunks.append(res)
        if res is agent.free:
            agent.free = EMPTY
            agent.free_q = {}
        else:
            agent.free = agent.free - res
            agent.refresh()
        role.sorter.allocated(fw.id, q)
        self._role_sorter.allocated(role.name, q)
        self._out.append(OfferGrant(fw.id, agent.id, res))

    # ---------------------------------------------------------------- quota

    def _quota_needs(self) -> dict[str, Quantities]:
        """Per role with a quota: what it still lacks to reach its guarantee."""
        needs = {}
        for role in self._roles.values():
            if role.quota:
                alloc = self._role_sorter.allocation(role.name)
                lack = {n: v - alloc.get(n, 0) for n, v in role.quota.items()
                        if v > alloc.get(n, 0)}
                if lack:
                    needs[role.name] = lack
        return needs

    def _lacks(self, role: _Role) -> bool:
        alloc = self._role_sorter.allocation(role.name)
        return any(v > alloc.get(n, 0) for n, v in role.quota.items())

    def _headroom(self, needs: dict[str, Quantities]) -> Quantities:
        """Unreserved free resources beyond what unmet quotas still need; other roles may
        only take agents that leave the need covered."""
        free: Quantities = {}
        for agent in self._agent_list:
            _add_q(free, agent.free_q, 1)
        for lack in needs.values():
            for n, v in lack.items():
                free[n] = free.get(n, 0) - v
        return free

    def _quota_stage(self, todo: list[_Agent], now: float, needs: dict[str, Quantities],
                     grants: list[OfferGrant]) -> None:
        order = [self._roles[e[1]] for e in self._role_sorter.entries() if e[1] in needs]
        for role in order:
            for agent in todo:
                if not self._lacks(role):
                    break
                if not agent.free:
                    continue
                if agent.filters.next_expiry <= now:
                    agent.filters.expire(now)
                if agent.reserved:
                    self._allocate_reserved(agent, grants, None, roles=[role])
                else:
                    self._allocate_plain(agent, grants, None, roles=[role])

    # ---------------------------------------------------------------- introspection

    def allocated(self, agent_id: AgentId) -> dict[FrameworkId, Resources]:
        """What each framework holds on the agent (offers + tasks): for checks and tests."""
        agent = self._agents.get(agent_id)
        out: dict[FrameworkId, Resources] = {}
        if agent is not None:
            for (index, _), chunks in agent.alloc.items():
                fw_id = self._fw_by_index[index].id
                out[fw_id] = out.get(fw_id, EMPTY) + sum_chunks(chunks)
        return out

    def total(self) -> Resources:
        if self._total_res is None:
            out = EMPTY
            for agent in self._agent_list:
                out = out + agent.total
            self._total_res = out
        return self._total_res

    def framework_allocation(self, framework_id: FrameworkId) -> Resources:
        fw = self._frameworks.get(framework_id)
        out = EMPTY
        if fw is not None:
            for agent_id in fw.agents:
                for (index, _), chunks in self._agents[agent_id].alloc.items():
                    if index == fw.index:
                        out = out + sum_chunks(chunks)
        return out

    def role_allocation(self, role: str) -> Quantities:
        self._refresh_total()
        return self._role_sorter.allocation(role) if role in self._roles else {}

    def framework_share(self, framework_id: FrameworkId) -> float:
        """Unweighted dominant share of everything the framework holds."""
        return dominant_share(milli(self.framework_allocation(framework_id)), self._total, 1.0)

    def roles_info(self) -> list[dict[str, Any]]:
        """For GET /roles: weight, quota, allocation (milli-units) and frameworks per role."""
        out = []
        for name in sorted(self._roles):
            role = self._roles[name]
            out.append({"name": name, "weight": self._weights.get(name, 1.0),
                        "quota": dict(role.quota),
                        "allocated": self._role_sorter.allocation(name),
                        "frameworks": sorted(f for f in role.frameworks
                                             if f in self._frameworks)})
        return out

    def filtered(self, framework_id: FrameworkId, agent_id: AgentId, now: float) -> bool:
        fw, agent = self._frameworks.get(framework_id), self._agents.get(agent_id)
        return fw is not None and agent is not None and agent.filters.filtered(fw.index, now)


def _first_eligible(role: _Role, fm: int) -> int | None:
    """Index of the first framework in the role's DRF order that did not refuse the agent.

    With `n` of the role's `m` active frameworks eligible, scanning the order finds one after
    about m/n entries and walking the eligible bits costs n steps: scan when n*n > m, walk
    otherwise (and when an unlucky scan runs too long), so an agent costs O(sqrt(m)) even
    when nearly every framework has refused it (the end of the DeclineOffers benchmark)."""
    if not fm:
        order = role.sorter.entries()
        return order[0][2] if order else None
    eligible = role.active_mask & ~fm
    if not eligible:
        return None
    order = role.sorter.entries()
    n = eligible.bit_count()
    if n * n > len(order):
        for entry in order[:SCAN_LIMIT + 4 * len(order) // n]:
            i = entry[2]
            if not (fm >> i) & 1:
                return i
    key = role.sorter.entry
    best = None
    best_i = None
    while eligible:
        low = eligible & -eligible
        i = low.bit_length() - 1
        eligible ^= low
        k = key(i)
        if best is None or k < best:
            best, best_i = k, i
    return best_i
