"""Deactivation and drain in the registry: the operation, its storage in memory and SQLite,
and a master that restores them from the registry (a new leader, or a restart)."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_master.api_v1.operator import OperatorApi
from mesos_master.core import Master
from mesos_master.core_drain import (
    DeactivateAgentRequest,
    DrainAgentRequest,
    ReactivateAgentRequest,
    applied,
)
from mesos_master.registry.base import (
    DRAINED,
    DRAINING,
    AdmitAgent,
    AgentDrain,
    MarkGone,
    MarkReachable,
    MarkUnreachable,
    MemoryRegistry,
    RegistryState,
    RemoveAgent,
    UpdateAgentDrain,
)
from mesos_master.registry.sqlite import SqliteRegistry
from mesos_master.registry.zookeeper import _decode, _encode
from mesos_master.state import DrainInfo
from tests.unit.master.harness import (
    Harness,
    agent_info,
    command_task,
    only,
    persisted,
    sent,
)
from tests.unit.master.test_registry import ops as agent_ops

DRAIN = AgentDrain(DRAINING, 2.0, False, 1030.0)


# ------------------------------------------------------------------ the operation


def test_update_agent_drain_records_and_clears() -> None:
    s = RegistryState()
    assert not UpdateAgentDrain("a", True).apply(s)  # unknown agent
    AdmitAgent("a", "h").apply(s)
    assert UpdateAgentDrain("a", True).apply(s)
    assert s.deactivated == {"a": None}
    assert not UpdateAgentDrain("a", True).apply(s)
    assert not UpdateAgentDrain("a", True, AgentDrain(DRAINED, None, False, 1.0)).apply(s)
    assert UpdateAgentDrain("a", True, DRAIN).apply(s)  # a deactivated agent may be drained
    assert not UpdateAgentDrain("a", True).apply(s)  # deactivating keeps the drain
    assert s.deactivated == {"a": DRAIN}
    drained = AgentDrain(DRAINED, 2.0, False, 1030.0)
    assert UpdateAgentDrain("a", True, drained).apply(s)
    assert s.deactivated == {"a": drained}
    assert UpdateAgentDrain("a", False).apply(s)
    assert s.deactivated == {}
    assert not UpdateAgentDrain("a", False).apply(s)
    # DRAINED only over DRAINING: a reactivation written first is not undone
    assert not UpdateAgentDrain("a", True, drained).apply(s)


def test_unreachable_keeps_the_drain_and_removal_forgets_it() -> None:
    s = RegistryState()
    for op in (AdmitAgent("a", "h"), AdmitAgent("b", "h2"), UpdateAgentDrain("a", True, DRAIN),
               UpdateAgentDrain("b", True), MarkUnreachable("a", 5.0)):
        assert op.apply(s)
    assert s.deactivated == {"a": DRAIN, "b": None}
    assert UpdateAgentDrain("a", True, AgentDrain(DRAINED, 2.0, False, 1030.0)).apply(s)
    assert MarkReachable("a", "h").apply(s)
    assert "a" in s.deactivated
    assert RemoveAgent("a").apply(s) and MarkGone("b", 6.0).apply(s)
    assert s.deactivated == {}


# ------------------------------------------------------------------ storage


def test_sqlite_keeps_deactivation_and_drain_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    reg = SqliteRegistry(path)
    for op in (AdmitAgent("a", "h1"), AdmitAgent("b", "h2"), AdmitAgent("c", "h3"),
               UpdateAgentDrain("a", True, DRAIN), UpdateAgentDrain("b", True),
               UpdateAgentDrain("c", True, AgentDrain(DRAINING, None, True, 7.5))):
        assert reg.apply(op)
    assert reg.apply_many([UpdateAgentDrain("c", True, AgentDrain(DRAINED, None, True, 7.5)),
                           RemoveAgent("c")]) == [True, True]
    reg.close()
    reopened = SqliteRegistry(path)
    assert reopened.load().deactivated == {"a": DRAIN, "b": None}
    assert reopened.apply(UpdateAgentDrain("b", False))
    reopened.close()
    assert SqliteRegistry(path).load().deactivated == {"a": DRAIN}


def test_sqlite_registry_written_before_the_table_existed_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE admitted (agent_id TEXT PRIMARY KEY, hostname TEXT NOT NULL);"
                     "INSERT INTO admitted VALUES ('a', 'h');")
    db.commit()
    db.close()
    reg = SqliteRegistry(path)
    assert reg.load() == RegistryState({"a": "h"})
    assert reg.apply(UpdateAgentDrain("a", True, DRAIN))
    reg.close()
    assert SqliteRegistry(path).load().deactivated == {"a": DRAIN}


def test_zookeeper_document_keeps_them_and_older_documents_load() -> None:
    state = RegistryState({"a": "h", "b": "h2"}, {"c": 1.0},
                          deactivated={"a": DRAIN, "b": None,
                                       "c": AgentDrain(DRAINED, None, True, 9.0)})
    assert _decode(_encode(state)) == state
    doc = json.loads(_encode(state))
    assert doc["deactivated"]["b"] is None and doc["deactivated"]["a"]["state"] == DRAINING
    assert _decode(b'{"admitted": {"a": "h"}}') == RegistryState({"a": "h"})
    with pytest.raises(ValueError):
        AgentDrain.from_json({"state": "NOPE", "mark_gone": False, "deadline": 1.0})


drain_ops = st.builds(
    UpdateAgentDrain, st.sampled_from("abcd"), st.booleans(),
    st.one_of(st.none(), st.builds(AgentDrain, st.sampled_from([DRAINING, DRAINED]),
                                   st.sampled_from([None, 0.0, 3.5]), st.booleans(),
                                   st.sampled_from([10.0, 20.0]))))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.one_of(agent_ops, drain_ops), max_size=8), max_size=6))
def test_sqlite_and_zookeeper_documents_match_memory(tmp_path_factory: pytest.TempPathFactory,
                                                     batches: list) -> None:
    path = tmp_path_factory.mktemp("reg") / "r.sqlite"
    mem, sql = MemoryRegistry(), SqliteRegistry(path)
    for batch in batches:
        assert [mem.apply(op) for op in batch] == sql.apply_many(batch)
        state = mem.load()
        assert set(state.deactivated) <= set(state.admitted) | set(state.unreachable)
    sql.close()
    assert SqliteRegistry(path).load() == mem.load()
    assert _decode(_encode(mem.load())) == mem.load()


# ------------------------------------------------------------------ the master


def _running(h: Harness, agent_peer: bytes, fw: str, agent_id: str, task_id: str) -> None:
    (offer,) = [o for o in h.offers() if o.agent_id == agent_id]
    h.launch(b"fw1", fw, offer, [command_task(task_id, agent_id)])
    h.recv(agent_peer, m.StatusUpdate(fw, m.TaskStatus(task_id, ts.RUNNING, agent_id=agent_id,
                                                       uuid=b"u1")))


def _reregister(h: Harness, peer: bytes, agent_id: str, host: str, fw: str | None = None,
                task_id: str | None = None) -> list[Any]:
    tasks = () if task_id is None or fw is None else (
        m.TaskRecord(fw, command_task(task_id, agent_id), ts.RUNNING),)
    fws = () if fw is None else (m.FrameworkInfo(name="fw", id=fw),)
    return h.recv(peer, m.ReregisterAgent(agent_id, agent_info(host), tasks, fws, "1.0"))


def _drain(h: Harness, agent_id: str) -> DrainInfo:
    drain = h.master.agents[agent_id].drain
    assert drain is not None
    return drain


def _cluster() -> tuple[Harness, str, str, str]:
    """A framework with a task on a1; a2 idle."""
    h = Harness(drain_notice=30.0)
    fw = h.subscribe()
    a1 = h.register_agent(b"a1", agent_info("h1"))
    a2 = h.register_agent(b"a2", agent_info("h2"))
    _running(h, b"a1", fw, a1, "t1")
    return h, fw, a1, a2


def test_the_calls_are_written_before_they_take_effect() -> None:
    h = Harness(drain_notice=30.0, auto_persist=False)
    h.auto_persist = True
    a1 = h.register_agent(b"a1", agent_info("h1"))
    h.auto_persist = False
    out = h.handle(DrainAgentRequest(a1, max_grace_period=2.0))
    op = only(persisted(out))
    assert op == UpdateAgentDrain(a1, True, AgentDrain(DRAINING, 2.0, False, h.now + 30.0))
    assert not h.master.agents[a1].deactivated and not applied(h.master.registry,
                                                               DrainAgentRequest(a1))
    h.registry.apply(op)
    h.handle(fx.PersistDone(op, True))
    drain = h.master.agents[a1].drain
    assert drain is not None and drain.state == DRAINED  # nothing ran there
    assert applied(h.master.registry, DrainAgentRequest(a1))


def test_a_failed_write_changes_nothing_and_is_not_applied() -> None:
    h = Harness(drain_notice=30.0)
    h.subscribe()
    a1 = h.register_agent(b"a1", agent_info("h1"))
    h.auto_persist = False
    for req in (DrainAgentRequest(a1), DeactivateAgentRequest(a1)):
        op = only(persisted(h.handle(req)))
        out = h.handle(fx.PersistDone(op, False))
        assert any(isinstance(e, fx.Log) and e.level == "error" for e in out)
        assert not h.master.agents[a1].deactivated and h.master.agents[a1].drain is None
        assert not applied(h.master.registry, req)
    assert a1 in {o.agent_id for o in h.offers()}


def test_a_new_leader_keeps_deactivated_and_draining_agents() -> None:
    h, fw, a1, a2 = _cluster()
    h.handle(DrainAgentRequest(a1, max_grace_period=2.0))
    h.handle(DeactivateAgentRequest(a2))
    deadline = h.now + 30.0
    assert h.registry.load().deactivated == {
        a1: AgentDrain(DRAINING, 2.0, False, deadline), a2: None}

    h.advance(5)
    h.restart("M2")
    # the agents come back first (the framework is not re-subscribed yet): nobody to ask
    out = _reregister(h, b"a1", a1, "h1", fw, "t1")
    assert not sent(out, m.InverseOffers) and not sent(out, m.KillTask)
    _reregister(h, b"a2", a2, "h2")
    agents = h.master.agents
    assert agents[a1].deactivated
    assert _drain(h, a1).state == DRAINING and _drain(h, a1).deadline == deadline
    assert agents[a2].deactivated and agents[a2].drain is None
    assert h.timers[("drain_deadline", a1)] == deadline
    # the framework re-subscribes: asked again, with the deadline it was told before
    out = h.recv(b"fw1", m.Subscribe(m.FrameworkInfo(name="fw", id=fw)))
    inv = only(only(sent(out, m.InverseOffers, to=b"fw1")).inverse_offers)
    assert (inv.agent_id, inv.start) == (a1, deadline)
    assert not {a1, a2} & {o.agent_id for o in h.offers()}
    # it does not move its task: killed at the deadline, with the capped grace
    out = h.advance(30)
    kill = only(sent(out, m.KillTask, to=b"a1"))
    assert (kill.task_id, kill.grace_period) == ("t1", 2.0)
    out = h.recv(b"a1", m.StatusUpdate(fw, m.TaskStatus("t1", ts.KILLED, agent_id=a1,
                                                        uuid=b"u2")))
    assert _drain(h, a1).state == DRAINED
    assert h.registry.load().deactivated[a1] == AgentDrain(DRAINED, 2.0, False, deadline)

    h.restart("M3")  # DRAINED is durable too
    _reregister(h, b"a1", a1, "h1")
    assert _drain(h, a1).state == DRAINED and h.master.agents[a1].deactivated
    assert ("drain_deadline", a1) not in h.timers


def test_a_framework_already_back_is_asked_when_the_agent_returns() -> None:
    h, fw, a1, _ = _cluster()
    h.handle(DrainAgentRequest(a1))
    h.restart("M2")
    h.recv(b"fw1", m.Subscribe(m.FrameworkInfo(name="fw", id=fw)))
    out = _reregister(h, b"a1", a1, "h1", fw, "t1")
    inv = only(only(sent(out, m.InverseOffers, to=b"fw1")).inverse_offers)
    assert inv.agent_id == a1
    # it moves the task itself: DRAINED without a kill from the master
    out = h.recv(b"a1", m.StatusUpdate(fw, m.TaskStatus("t1", ts.KILLED, agent_id=a1,
                                                        uuid=b"u2")))
    assert not sent(out, m.KillTask)
    assert _drain(h, a1).state == DRAINED


def test_a_deadline_passed_during_the_failover_kills_on_return() -> None:
    h, fw, a1, _ = _cluster()
    h.handle(DrainAgentRequest(a1))
    h.advance(60)  # the old leader's timer: gone with it
    h.restart("M2")
    h.advance(1)
    _reregister(h, b"a1", a1, "h1", fw, "t1")
    out = h.advance(0)
    assert [k.task_id for k in sent(out, m.KillTask, to=b"a1")] == ["t1"]


def test_reactivate_clears_it_for_good() -> None:
    h, fw, a1, a2 = _cluster()
    h.handle(DrainAgentRequest(a1))
    h.handle(DeactivateAgentRequest(a2))
    h.restart("M2")
    _reregister(h, b"a1", a1, "h1", fw, "t1")
    _reregister(h, b"a2", a2, "h2")
    h.recv(b"fw1", m.Subscribe(m.FrameworkInfo(name="fw", id=fw)))
    for aid in (a1, a2):
        h.handle(ReactivateAgentRequest(aid))
        assert applied(h.master.registry, ReactivateAgentRequest(aid))
    assert h.registry.load().deactivated == {}
    assert ("drain_deadline", a1) not in h.timers
    h.restart("M3")
    _reregister(h, b"a1", a1, "h1", fw, "t1")
    _reregister(h, b"a2", a2, "h2")
    h.recv(b"fw1", m.Subscribe(m.FrameworkInfo(name="fw", id=fw)))
    assert not h.master.agents[a1].deactivated and not h.master.agents[a2].deactivated
    assert {a1, a2} <= {o.agent_id for o in h.offers()}


def test_a_drained_agent_marked_gone_is_removed_by_the_new_leader() -> None:
    """The master went away between writing DRAINED and removing the agent."""
    reg = MemoryRegistry()
    reg.apply(AdmitAgent("S1", "h1"))
    reg.apply(UpdateAgentDrain("S1", True, AgentDrain(DRAINING, None, True, 50.0)))
    reg.apply(UpdateAgentDrain("S1", True, AgentDrain(DRAINED, None, True, 50.0)))
    h = Harness(reg)
    out = _reregister(h, b"a1", "S1", "h1")
    assert sent(out, m.ShutdownAgent, to=b"a1")
    assert [op.agent_id for op in persisted(out) if isinstance(op, MarkGone)] == ["S1"]
    state = reg.load()
    assert "S1" not in h.master.agents and "S1" in state.gone and not state.deactivated


# ------------------------------------------------------------------ the operator's answer


class _Host:
    """The server's side of OperatorApi over a Harness whose registry writes succeed or not."""

    def __init__(self, h: Harness, write_ok: bool) -> None:
        self.h, self.write_ok = h, write_ok
        self.master: Master | None = h.master
        self.flags: dict[str, str] = {}
        self.leading = True

    def info(self) -> dict[str, Any]:
        return {}

    def leader_info(self) -> dict[str, Any] | None:
        return None

    def feed(self, event: Any) -> None:
        for e in self.h.handle(event):
            if isinstance(e, fx.Persist):
                if self.write_ok:
                    self.h.registry.apply(e.op)
                self.h.handle(fx.PersistDone(e.op, self.write_ok))

    async def written(self) -> None:
        return None


def _call(host: _Host, body: dict[str, Any]) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        api = OperatorApi(host)
        app = web.Application()
        app.router.add_post("/api/v1", api.handle)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            r = await client.post("/api/v1", data=json.dumps(body))
            return r.status, await r.text()
        finally:
            await client.close()
    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["DRAIN_AGENT", "DEACTIVATE_AGENT"])
def test_the_operator_is_answered_by_the_registry(kind: str) -> None:
    h = Harness(auto_persist=False)
    h.auto_persist = True
    a1 = h.register_agent(b"a1", agent_info("h1"))
    h.auto_persist = False
    body = {"type": kind, kind.lower(): {"agent_id": {"value": a1}}}
    status, text = _call(_Host(h, write_ok=False), body)
    assert (status, text) == (503, "registry write failed")
    assert not h.master.agents[a1].deactivated
    assert _call(_Host(h, write_ok=True), body)[0] == 200
    assert h.master.agents[a1].deactivated and a1 in h.registry.load().deactivated
    body = {"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": a1}}}
    assert _call(_Host(h, write_ok=False), body)[0] == 503
    assert h.master.agents[a1].deactivated
    assert _call(_Host(h, write_ok=True), body)[0] == 200
    assert not h.master.agents[a1].deactivated and h.registry.load().deactivated == {}


def test_calls_on_an_agent_not_back_yet_are_recorded_and_apply_when_it_returns() -> None:
    """As in Mesos: an agent recovered from the registry but not re-registered (or
    unreachable) may be drained, deactivated and reactivated; it returns that way."""
    h, fw, a1, a2 = _cluster()
    h.restart("M2")
    assert a1 not in h.master.agents and a2 not in h.master.agents
    h.handle(DrainAgentRequest(a1, max_grace_period=1.0))
    h.handle(DeactivateAgentRequest(a2))
    assert applied(h.master.registry, DrainAgentRequest(a1))
    assert applied(h.master.registry, DeactivateAgentRequest(a2))
    h.handle(ReactivateAgentRequest(a2))
    assert applied(h.master.registry, ReactivateAgentRequest(a2))
    h.handle(DeactivateAgentRequest(a2))
    h.recv(b"fw1", m.Subscribe(m.FrameworkInfo(name="fw", id=fw)))
    out = _reregister(h, b"a1", a1, "h1", fw, "t1")
    assert only(only(sent(out, m.InverseOffers, to=b"fw1")).inverse_offers).agent_id == a1
    _reregister(h, b"a2", a2, "h2")
    assert _drain(h, a1).state == DRAINING and h.master.agents[a1].deactivated
    assert h.master.agents[a2].deactivated and h.master.agents[a2].drain is None
    assert not {a1, a2} & {o.agent_id for o in h.offers()}
    # an id the registry never admitted is still refused (the HTTP layer answers 400)
    assert not persisted(h.handle(DrainAgentRequest("nope")))
