"""Draining and deactivating agents (Mesos DRAIN_AGENT / DEACTIVATE_AGENT / REACTIVATE_AGENT).

A deactivated agent is offered to nobody; what runs there keeps running. Draining deactivates
the agent and asks every framework with tasks there for it back with an inverse offer whose
unavailability starts `drain_notice` from now. A framework that moves its tasks itself (Marathon
starts replacements elsewhere, then kills the drained ones within its health capacity) never
sees a kill from the master; one that accepts the inverse offer, or has not moved them by the
deadline, has its tasks there killed (kill grace capped by `max_grace_period`). The agent is
DRAINED once nothing runs on it; with `mark_gone` it is then marked gone (as MARK_AGENT_GONE).

Each call is written to the registry (`UpdateAgentDrain`) and takes effect only once that is
durable, so the operator's answer (`applied`) means a new leader knows it too; DRAINED is
written as well. A new leader restores the record when the agent re-registers
(`_restore_drain`): a deactivated agent stays unoffered, a draining one sends its inverse
offers again (to frameworks as they re-subscribe), re-arms the stored deadline and ends DRAINED.
"""
from __future__ import annotations

from attrs import frozen

from mesos_common import messages as m
from mesos_master.core_base import EventTable, MasterBase, MessageTable
from mesos_master.registry.base import (
    DRAINED,
    DRAINING,
    AgentDrain,
    MarkGone,
    RegistryState,
    UpdateAgentDrain,
)
from mesos_master.state import Agent, DrainInfo, Framework

__all__ = ["DRAINED", "DRAINING", "DeactivateAgentRequest", "DrainAgentRequest",
           "DrainHandlers", "ReactivateAgentRequest", "applied"]


@frozen
class DrainAgentRequest:
    agent_id: str
    max_grace_period: float | None = None
    mark_gone: bool = False


@frozen
class DeactivateAgentRequest:
    agent_id: str


@frozen
class ReactivateAgentRequest:
    agent_id: str


AgentRequest = DrainAgentRequest | DeactivateAgentRequest | ReactivateAgentRequest


def applied(registry: RegistryState, req: AgentRequest) -> bool:
    """Whether the registry holds the request (False after a failed write: an error answer)."""
    if isinstance(req, DrainAgentRequest):  # an idle agent may be drained and removed at once
        return registry.deactivated.get(req.agent_id) is not None or (
            req.mark_gone and req.agent_id not in registry.admitted
            and req.agent_id not in registry.unreachable)
    if isinstance(req, DeactivateAgentRequest):
        return req.agent_id in registry.deactivated
    return req.agent_id not in registry.deactivated


def drain_timer(agent_id: str) -> tuple[str, str]:
    return ("drain_deadline", agent_id)


class DrainHandlers(MasterBase):

    # ---------------------------------------------------------------- the operator's calls

    def _known(self, agent_id: str) -> bool:
        """Registered here, or in the registry (unreachable, or not back since a failover):
        as in Mesos, the call is recorded and takes effect when the agent re-registers."""
        return (agent_id in self.agents or agent_id in self.registry.admitted
                or agent_id in self.registry.unreachable)

    def _on_drain_agent(self, req: DrainAgentRequest) -> None:
        if not self._known(req.agent_id) or self.registry.deactivated.get(req.agent_id):
            return  # the HTTP layer answered already (unknown agent / already draining)
        drain = AgentDrain(DRAINING, req.max_grace_period, req.mark_gone,
                           self.now + self.config.drain_notice)
        self._persist(UpdateAgentDrain(req.agent_id, True, drain))

    def _on_deactivate_agent(self, req: DeactivateAgentRequest) -> None:
        if self._known(req.agent_id) and req.agent_id not in self.registry.deactivated:
            self._persist(UpdateAgentDrain(req.agent_id, True))

    def _on_reactivate_agent(self, req: ReactivateAgentRequest) -> None:
        """Offers again; a drain under way stops (what was killed stays killed)."""
        agent = self.agents.get(req.agent_id)
        if (agent is not None and agent.deactivated) or req.agent_id in self.registry.deactivated:
            self._persist(UpdateAgentDrain(req.agent_id, False))

    def _drain_persisted(self, op: UpdateAgentDrain, ok: bool) -> None:
        """PersistDone for UpdateAgentDrain: the call takes effect now (DRAINED needs nothing:
        the books were there first)."""
        if not ok:
            return self._log("error", f"registry write {op} failed; agent {op.agent_id} "
                                      "unchanged")
        agent = self.agents.get(op.agent_id)
        if agent is None:
            return  # it left meanwhile: the record is restored when it re-registers
        if not op.deactivated:
            if agent.deactivated:
                self._reactivate(agent)
        elif op.drain is None:
            if not agent.deactivated:
                self._deactivate(agent)
                self._log("info", f"agent {agent.id} deactivated")
        elif op.drain.state == DRAINING and agent.drain is None:
            self._start_drain(agent, op.drain, restored=False)

    def _restore_drain(self, agent: Agent) -> None:
        """A re-registering agent this master did not know: as the registry has it."""
        if agent.id not in self.registry.deactivated:
            return
        drain = self.registry.deactivated[agent.id]
        if drain is None:
            self._deactivate(agent)
            return self._log("info", f"agent {agent.id} is deactivated (registry)")
        self._start_drain(agent, drain, restored=True)

    # ---------------------------------------------------------------- the drain

    def _start_drain(self, agent: Agent, drain: AgentDrain, restored: bool) -> None:
        """Frameworks with tasks there are asked to move them, by `drain.deadline`. A drain
        restored by a new leader also waits for those not (yet) re-subscribed: they are asked
        when they do (`_ask_again`); a fresh one kills their tasks at once."""
        self._deactivate(agent)
        agent.drain = DrainInfo(drain.state, drain.max_grace_period, drain.mark_gone,
                                drain.deadline)
        if drain.state == DRAINED:
            self._log("info", f"agent {agent.id} is drained (registry)")
            return self._drained(agent)
        for fw_id in sorted({fw for (fw, _), t in agent.tasks.items() if not t.terminal}):
            fw = self.frameworks[fw_id]
            if fw.connected:
                agent.drain.waiting[fw_id] = self._send_inverse_offer(fw, agent,
                                                                      drain.deadline, None)
            elif restored:
                agent.drain.waiting[fw_id] = ""  # not asked yet
        again = " (again, from the registry)" if restored else ""
        self._log("info", f"draining agent {agent.id} ({agent.info.hostname}){again}: "
                          f"{len(agent.drain.waiting)} framework(s) asked to move their tasks")
        self._timer(drain_timer(agent.id), drain.deadline)
        self._drain_kill(agent, everyone=False)
        self._check_drained(agent)

    def _ask_again(self, fw: Framework) -> None:
        """A framework (re-)subscribed: ask it again for the draining agents it was asked for
        (a new leader, or a lost connection: it may never have had the inverse offer)."""
        for _, agent in sorted(self.agents.items()):
            drain = agent.drain
            if drain is not None and drain.state == DRAINING and fw.id in drain.waiting:
                drain.waiting[fw.id] = self._send_inverse_offer(fw, agent, drain.deadline, None)

    def _reactivate(self, agent: Agent) -> None:
        if agent.drain is not None:
            self._cancel(drain_timer(agent.id))
        agent.deactivated, agent.drain = False, None
        self.allocator.activate_agent(agent.id)
        self._log("info", f"agent {agent.id} reactivated")
        self._request_allocation([agent.id])

    def _deactivate(self, agent: Agent) -> None:
        agent.deactivated = True
        self.allocator.deactivate_agent(agent.id)
        for oid in sorted(agent.offers):
            self._recover_offer(self.offers[oid], None, rescind=True)

    def _send_inverse_offer(self, fw: Framework, agent: Agent, start: float,
                            duration: float | None) -> str:
        offer = m.InverseOffer(self.ids.next("IO"), fw.id, agent.id, agent.info.hostname,
                               start, duration)
        self.inverse_offers[offer.id] = (agent.id, fw.id)
        self._send(fw.peer, m.InverseOffers((offer,)))
        return offer.id

    def _on_inverse_offers_answer(self, msg: m.AcceptInverseOffers | m.DeclineInverseOffers,
                                  peer: bytes) -> None:
        """Kept for /maintenance/status; an accepted drain lets the master kill now (a
        declined one waits for its deadline)."""
        fw = self._framework_for(peer, msg, msg.framework_id)
        if fw is None:
            return
        accept = isinstance(msg, m.AcceptInverseOffers)
        for io_id in msg.inverse_offer_ids:
            ref = self.inverse_offers.get(io_id)
            if ref is None or ref[1] != fw.id:
                continue
            self.inverse_answers.setdefault(ref[0], {})[fw.id] = (
                "ACCEPT" if accept else "DECLINE", self.now)
            agent = self.agents.get(ref[0])
            if accept and agent is not None and agent.drain is not None and \
                    agent.drain.waiting.get(fw.id) == io_id:
                del agent.drain.waiting[fw.id]
                self._drain_kill(agent, everyone=False)

    def _drain_deadline(self, agent_id: str) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None and agent.drain is not None and agent.drain.state == DRAINING:
            agent.drain.waiting.clear()
            self._drain_kill(agent, everyone=True)

    def _drain_kill(self, agent: Agent, everyone: bool) -> None:
        """Kill the agent's live tasks of frameworks no longer asked to move them (all of
        them with `everyone`: a kill sent again, should the agent have missed one)."""
        assert agent.drain is not None
        grace_cap = agent.drain.max_grace_period
        for (fw_id, _), task in sorted(agent.tasks.items()):
            if task.terminal or (fw_id in agent.drain.waiting and not everyone):
                continue
            grace = task.info.kill_grace_period
            if grace_cap is not None:
                grace = grace_cap if grace is None else min(grace, grace_cap)
            self._send(agent.peer, m.KillTask(fw_id, task.id, grace))

    def _check_drained(self, agent: Agent) -> None:
        """Called whenever a task on a draining agent ends."""
        drain = agent.drain
        if drain is None or drain.state != DRAINING:
            return
        if any(not t.terminal for t in agent.tasks.values()):
            return
        drain.state = DRAINED
        drain.waiting.clear()
        self._cancel(drain_timer(agent.id))
        self._log("info", f"agent {agent.id} ({agent.info.hostname}) drained")
        self._persist(UpdateAgentDrain(agent.id, True, AgentDrain(
            DRAINED, drain.max_grace_period, drain.mark_gone, drain.deadline)))
        self._drained(agent)

    def _drained(self, agent: Agent) -> None:
        assert agent.drain is not None
        if agent.drain.mark_gone:  # as MARK_AGENT_GONE: shut down, and its id refused for good
            self._persist(MarkGone(agent.id, self.now))


EVENTS: EventTable[DrainHandlers] = {
    DrainAgentRequest: DrainHandlers._on_drain_agent,
    DeactivateAgentRequest: DrainHandlers._on_deactivate_agent,
    ReactivateAgentRequest: DrainHandlers._on_reactivate_agent,
}
MESSAGES: MessageTable[DrainHandlers] = {
    m.AcceptInverseOffers: DrainHandlers._on_inverse_offers_answer,
    m.DeclineInverseOffers: DrainHandlers._on_inverse_offers_answer,
}
