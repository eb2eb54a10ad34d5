"""Dynamic reservations (Mesos' docs/reservation.md): RESERVE and UNRESERVE, from a framework's
ACCEPT (on offered resources) or from an operator (on an agent's free resources).

A reservation turns unreserved resources of an agent into resources of one role (same
quantities), which the allocator then offers to that role's frameworks only; UNRESERVE turns
them back. The master books the change at once (the agent's total, the allocator) and writes
the agent's whole set of dynamic reservations to the registry (`UpdateReservations`); once that
is durable the agent is told (`CheckpointResources`), checkpoints the set and reports it when it
re-registers. The registry is the truth: a re-registering agent's report is corrected to it.
Static reservations (`--resources` with roles) can be neither made nor undone here.

The master records who made each reservation (the framework's or operator's principal, as
Mesos's `ReservationInfo.principal`); an UNRESERVE takes from its requester's own reservations
first and is allowed only if the `unreserve_resources` ACL lets the requester undo every
reserver's part it takes (a framework's RESERVE needs `reserve_resources` for the role).
"""
from __future__ import annotations

import json
from typing import Any

import attrs
from attrs import frozen

from mesos_common import messages as m
from mesos_common.resources import EMPTY, UNRESERVED, ResourceError, Resources
from mesos_master.core_base import EventTable, MasterBase
from mesos_master.registry.base import UpdateReservations
from mesos_master.reservations import NO_RESERVATIONS, Reservations
from mesos_master.state import Agent, Framework


@frozen
class ReserveRequest:
    """An operator's RESERVE_RESOURCES / POST /master/reserve (checked with
    `Master.reservation_error` by the HTTP layer first); `principal` is recorded as the
    reserver."""

    agent_id: str
    resources: Resources
    principal: str | None = None


@frozen
class UnreserveRequest:
    """An operator's UNRESERVE_RESOURCES / POST /master/unreserve; it takes from
    `principal`'s reservations first."""

    agent_id: str
    resources: Resources
    principal: str | None = None


def parse_request(reserve: bool, agent_id: Any, resources: Any,
                  principal: str | None = None) -> ReserveRequest | UnreserveRequest | str:
    """An operator's request from its HTTP parts (`resources`: a JSON list, or its text as in
    Mesos' form-encoded /master/reserve); a string says what is wrong (a 400)."""
    if not isinstance(agent_id, str) or not agent_id:
        return "an agent id is required"
    if isinstance(resources, str):
        try:
            resources = json.loads(resources)
        except ValueError as e:
            return f"resources are not JSON: {e}"
    if not isinstance(resources, list):
        return "resources must be a JSON list of resources"
    try:
        res = Resources.from_json(resources)
    except ResourceError as e:
        return str(e)
    error = _shape_error(res, None)
    if error is not None:
        return error
    return (ReserveRequest if reserve else UnreserveRequest)(agent_id, res, principal)


def _shape_error(res: Resources, roles: frozenset[str] | None) -> str | None:
    if not res:
        return "no resources to (un)reserve"
    if UNRESERVED in res.roles():
        return "resources to (un)reserve must each name a role other than '*'"
    if roles is not None and not res.roles() <= roles:
        return f"a framework of roles {sorted(roles)} cannot (un)reserve for " \
               f"{sorted(res.roles() - roles)}"
    return None


class ReservationHandlers(MasterBase):

    def reservation_error(self, req: ReserveRequest | UnreserveRequest) -> str | None:
        """Why the operator's request cannot be applied now (None: it can)."""
        agent = self.agents.get(req.agent_id)
        if agent is None:
            return f"no registered agent with id {req.agent_id!r}"
        error = _shape_error(req.resources, None)
        if error is not None:
            return error
        consumed, _ = self._conversion(agent, req.resources, isinstance(req, ReserveRequest))
        if consumed is None:
            return f"{req.resources!r} is not dynamically reserved on agent {agent.id}"
        if not (agent.total - agent.used).contains(consumed):
            return f"agent {agent.id} has no free {consumed!r}"
        return None

    def unreserve_refusal(self, principal: str | None, agent_id: str,
                          res: Resources) -> str | None:
        """Why the `unreserve_resources` ACL refuses `principal` the UNRESERVE of `res` on the
        agent: a reserver whose reservations it would undo (None: allowed, or nothing there
        to undo, which `reservation_error` reports)."""
        agent = self.agents.get(agent_id)
        taken = agent.reservations.take(res, principal) if agent is not None else None
        for reserver in sorted(taken[1]) if taken is not None else ():
            if not self.config.auth.acls.allowed(principal, "unreserve_resources", reserver):
                return f"unreserve_resources reserved by {reserver!r}"
        return None

    def _conversion(self, agent: Agent, res: Resources,
                    reserve: bool) -> tuple[Resources | None, Resources]:
        """(what is consumed, what it becomes); consumed None: an UNRESERVE of resources not
        dynamically reserved there."""
        if reserve:
            return res.flatten(), res
        if not agent.reserved.contains(res):
            return None, EMPTY
        return res, res.flatten()

    def _offer_operation(self, fw: Framework, agent: Agent, op: m.Operation,
                         remaining: Resources) -> Resources | str:
        """A RESERVE / UNRESERVE of an ACCEPT on the offered `remaining`: what remains after
        it, or why it was refused."""
        error = _shape_error(op.resources, fw.roles)
        if error is not None:
            return error
        principal = fw.info.principal
        refused = next((f"reserve_resources for {role!r}" for role in sorted(op.resources.roles())
                        if not self.config.auth.acls.allowed(principal, "reserve_resources", role)),
                       None) if op.type == "RESERVE" else \
            self.unreserve_refusal(principal, agent.id, op.resources)
        if refused is not None:
            return f"principal {principal!r} is not authorized to {refused}"
        consumed, converted = self._conversion(agent, op.resources, op.type == "RESERVE")
        if consumed is None:
            return f"{op.resources!r} is not dynamically reserved on agent {agent.id}"
        if not remaining.contains(consumed):
            return f"{consumed!r} is not in the offered resources"
        self._convert(agent, consumed, converted, fw.id, principal)
        self._log("info", f"framework {fw.id}: {op.type} {op.resources!r} on agent {agent.id}")
        return remaining - consumed + converted

    def _on_reserve_request(self, req: ReserveRequest | UnreserveRequest) -> None:
        error = self.reservation_error(req)
        if error is not None:
            return self._log("warning", f"operator's {type(req).__name__} refused: {error}")
        agent = self.agents[req.agent_id]
        consumed, converted = self._conversion(agent, req.resources,
                                               isinstance(req, ReserveRequest))
        assert consumed is not None
        self._rescind_agent_offers(agent, consumed)
        self._convert(agent, consumed, converted, None, req.principal)
        self._log("info", f"operator: {type(req).__name__} {req.resources!r} on agent {agent.id}")
        self._request_allocation([agent.id])

    def _rescind_agent_offers(self, agent: Agent, needed: Resources) -> None:
        """Free what is offered on the agent if the free part alone does not hold `needed`."""
        if (agent.total - agent.used - agent.offered).contains(needed):
            return
        for oid in sorted(agent.offers):
            self._recover_offer(self.offers[oid], None, rescind=True)

    def _convert(self, agent: Agent, consumed: Resources, converted: Resources,
                 framework_id: str | None, principal: str | None) -> None:
        """Book a RESERVE (recorded as `principal`'s) or an UNRESERVE (taken from
        `principal`'s reservations first)."""
        self.allocator.convert(agent.id, consumed, converted, framework_id)
        agent.info = attrs.evolve(agent.info, resources=agent.total - consumed + converted)
        taken = agent.reservations.take(consumed.reserved(), principal)
        assert taken is not None  # checked by the callers (`_conversion`)
        agent.reservations = taken[0].add(principal, converted.reserved())
        self._persist(UpdateReservations(agent.id, agent.reservations))

    def _reservations_persisted(self, op: UpdateReservations, ok: bool) -> None:
        if not ok:
            return self._log("error", f"registry write {op} failed: the reservations of agent "
                                      f"{op.agent_id} are not durable")
        agent = self.agents.get(op.agent_id)
        if agent is not None and agent.reservations == op.reserved:
            self._send(agent.peer, m.CheckpointResources(op.reserved.total))

    def _booked_info(self, msg: m.ReregisterAgent) -> tuple[m.AgentInfo, Reservations]:
        """The re-registering agent's info with the master's reservations in its total (its
        own report of them replaced), and those reservations: the books' while the agent is
        still registered here, else the registry's."""
        info, reported = msg.agent_info, msg.reserved
        if not info.resources.contains(reported):
            reported = EMPTY  # a confused report: take its total as unreserved
        base = info.resources - reported + reported.flatten()
        known = self.agents.get(msg.agent_id)  # its books may be ahead of a registry write
        truth = known.reservations if known is not None else \
            self.registry.reserved.get(msg.agent_id, NO_RESERVATIONS)
        held = truth.total
        if not base.contains(held.flatten()):
            self._log("warning", f"agent {msg.agent_id} no longer has the resources of its "
                                 f"reservations {held!r}; they are dropped")
            truth, held = NO_RESERVATIONS, EMPTY
            self._persist(UpdateReservations(msg.agent_id, NO_RESERVATIONS))
        return attrs.evolve(info, resources=base - held.flatten() + held), truth


#: The operator's requests handled here (mesos_master/core.py composes the master's table).
EVENTS: EventTable[ReservationHandlers] = {
    ReserveRequest: ReservationHandlers._on_reserve_request,
    UnreserveRequest: ReservationHandlers._on_reserve_request,
}
