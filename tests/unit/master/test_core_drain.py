"""Draining and deactivating agents in the pure master core."""
from __future__ import annotations

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_master.core_drain import (
    DRAINED,
    DRAINING,
    DeactivateAgentRequest,
    DrainAgentRequest,
    ReactivateAgentRequest,
)
from mesos_master.registry.base import MarkGone
from tests.unit.master.harness import Harness, agent_info, command_task, persisted, sent, updates


def _drain_state(h: Harness, agent_id: str) -> str:
    drain = h.master.agents[agent_id].drain
    assert drain is not None, "the agent is not draining"
    return drain.state


def _running(h: Harness, agent_peer: bytes, fw: str, agent_id: str, task_id: str) -> None:
    (offer,) = [o for o in h.offers() if o.agent_id == agent_id]
    h.launch(b"fw1", fw, offer, [command_task(task_id, agent_id)])
    h.recv(agent_peer, m.StatusUpdate(fw, m.TaskStatus(task_id, ts.RUNNING, agent_id=agent_id,
                                                       uuid=b"u1")))


def _end(h: Harness, agent_peer: bytes, fw: str, agent_id: str, task_id: str) -> list:
    return h.recv(agent_peer, m.StatusUpdate(fw, m.TaskStatus(task_id, ts.KILLED,
                                                              agent_id=agent_id, uuid=b"u2")))


def _setup() -> tuple[Harness, str, str, str]:
    h = Harness(drain_notice=30.0)
    fw = h.subscribe()
    a1 = h.register_agent(b"a1", agent_info("h1"))
    a2 = h.register_agent(b"a2", agent_info("h2"))
    return h, fw, a1, a2


def test_deactivated_agent_gets_no_offers_until_reactivated() -> None:
    h, fw, a1, a2 = _setup()
    offers = h.offers()
    assert {o.agent_id for o in offers} == {a1, a2}
    out = h.handle(DeactivateAgentRequest(a1))
    assert [r.offer_id for r in sent(out, m.Rescind)] == [o.id for o in offers
                                                         if o.agent_id == a1]
    assert h.master.agents[a1].deactivated
    h.advance(10)
    assert all(o.agent_id != a1 for o in h.offers())
    h.handle(ReactivateAgentRequest(a1))
    assert not h.master.agents[a1].deactivated
    assert a1 in {o.agent_id for o in h.offers()}


def test_drain_asks_with_an_inverse_offer_and_waits_for_the_framework() -> None:
    h, fw, a1, a2 = _setup()
    _running(h, b"a1", fw, a1, "t1")
    out = h.handle(DrainAgentRequest(a1, max_grace_period=2.0))
    (inv,) = sent(out, m.InverseOffers, to=b"fw1")
    assert inv.inverse_offers[0].agent_id == a1
    assert inv.inverse_offers[0].start == h.now + 30.0
    assert not sent(out, m.KillTask)  # the framework moves its task first
    assert _drain_state(h, a1) == DRAINING
    assert all(o.agent_id != a1 for o in h.offers())
    # the framework kills its own task (after replacing it): nothing left -> DRAINED
    _end(h, b"a1", fw, a1, "t1")
    assert _drain_state(h, a1) == DRAINED
    assert ("drain_deadline", a1) not in h.timers


def test_accepting_the_inverse_offer_or_the_deadline_kills_with_the_capped_grace() -> None:
    h, fw, a1, a2 = _setup()
    _running(h, b"a1", fw, a1, "t1")
    out = h.handle(DrainAgentRequest(a1, max_grace_period=2.0))
    (inv,) = sent(out, m.InverseOffers)
    out = h.recv(b"fw1", m.DeclineInverseOffers(fw, (inv.inverse_offers[0].id,)))
    assert not sent(out, m.KillTask)
    out = h.recv(b"fw1", m.AcceptInverseOffers(fw, (inv.inverse_offers[0].id,)))
    (kill,) = sent(out, m.KillTask, to=b"a1")
    assert (kill.task_id, kill.grace_period) == ("t1", 2.0)
    out = h.advance(31)  # the deadline sends the kill again
    assert [k.task_id for k in sent(out, m.KillTask, to=b"a1")] == ["t1"]
    _end(h, b"a1", fw, a1, "t1")
    assert _drain_state(h, a1) == DRAINED


def test_drain_with_nothing_running_is_drained_at_once_and_mark_gone_marks_it_gone() -> None:
    h, fw, a1, a2 = _setup()
    out = h.handle(DrainAgentRequest(a1, mark_gone=True))
    assert sent(out, m.ShutdownAgent, to=b"a1")
    assert [op.agent_id for op in persisted(out) if isinstance(op, MarkGone)] == [a1]
    assert a1 not in h.master.agents and a1 in h.master.registry.gone


def test_reactivate_stops_a_drain_and_reregistration_keeps_it() -> None:
    h, fw, a1, a2 = _setup()
    _running(h, b"a1", fw, a1, "t1")
    h.handle(DrainAgentRequest(a1))
    task = m.TaskRecord(fw, command_task("t1", a1), ts.RUNNING)
    h.recv(b"a1", m.ReregisterAgent(a1, agent_info("h1"), (task,),
                                    (m.FrameworkInfo(name="fw", id=fw),), "1.0"))
    assert _drain_state(h, a1) == DRAINING
    assert all(o.agent_id != a1 for o in h.offers())
    h.handle(ReactivateAgentRequest(a1))
    assert h.master.agents[a1].drain is None and ("drain_deadline", a1) not in h.timers
    h.advance(10)
    assert updates(_end(h, b"a1", fw, a1, "t1"))
