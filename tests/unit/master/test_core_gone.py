"""Master core: an operator marks an agent gone (Mesos' MARK_AGENT_GONE)."""
from __future__ import annotations

import pytest

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_master.core_operator import MarkGoneRequest
from mesos_master.registry.base import AdmitAgent, MarkGone, MarkReachable, RegistryState

from .harness import Harness, agent_info, command_task, only, persisted, sent, updates


def _running(h: Harness, pa: bool) -> tuple[str, str]:
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", capabilities=("PARTITION_AWARE",) if pa else ())
    h.launch(b"fw1", fid, only(h.offers()), [command_task("t1", aid)])
    return aid, fid


@pytest.mark.parametrize("pa,state", [(True, ts.GONE_BY_OPERATOR), (False, ts.LOST)])
def test_gone_agent_is_shut_down_and_its_tasks_reported(pa: bool, state: str) -> None:
    h = Harness()
    aid, fid = _running(h, pa)
    out = h.handle(MarkGoneRequest(aid))
    assert isinstance(only(persisted(out)), MarkGone)
    assert only(sent(out, m.ShutdownAgent, to=b"a1"))
    st = only(updates(out, to=b"fw1"))
    assert (st.task_id, st.state, st.reason) == ("t1", state, "REASON_AGENT_REMOVED_BY_OPERATOR")
    assert aid not in h.master.agents and "t1" not in h.master.frameworks[fid].tasks
    assert h.master.registry.gone == {aid: h.now} and aid not in h.master.registry.admitted
    assert only(sent(out, m.AgentLost, to=b"fw1")).agent_id == aid


def test_gone_id_is_refused_after_a_master_restart_too() -> None:
    h = Harness()
    aid, _ = _running(h, pa=True)
    h.handle(MarkGoneRequest(aid))
    for harness in (h, Harness(registry=h.registry, master_id="M2")):
        out = harness.recv(b"a1-again", m.ReregisterAgent(aid, agent_info()))
        assert "marked gone" in only(sent(out, m.ShutdownAgent, to=b"a1-again")).reason
        assert not persisted(out) and aid not in harness.master.agents
    assert h.master.recovering == set()


def test_unreachable_agent_marked_gone_ends_its_unreachable_tasks() -> None:
    h = Harness()
    aid, fid = _running(h, pa=True)
    for _ in range(int(h.master.config.agent_timeout) // 5 + 8):  # the framework stays
        h.recv(b"fw1", m.Heartbeat())
        h.advance(5.0)
    assert "t1" in h.master.frameworks[fid].unreachable_tasks
    out = h.handle(MarkGoneRequest(aid))
    assert only(updates(out, to=b"fw1")).state == ts.GONE_BY_OPERATOR
    assert not h.master.frameworks[fid].unreachable_tasks
    assert h.master.registry.gone == {aid: h.now} and not h.master.registry.unreachable


def test_unknown_or_repeated_mark_writes_nothing() -> None:
    h = Harness()
    assert h.handle(MarkGoneRequest("nobody")) == []
    state = RegistryState(gone={"S1": 1.0})
    assert not AdmitAgent("S1", "h").apply(state) and not MarkReachable("S1").apply(state)
    assert not MarkGone("S1", 2.0).apply(state) and state.gone == {"S1": 1.0}
