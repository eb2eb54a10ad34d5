"""Master failover in the pure core: recovered frameworks that never come back, agents that
never re-register, and reconciliation answered from re-registration reports."""
from __future__ import annotations

from mesos_common import messages as m
from mesos_common import task_states as ts
from tests.unit.master.harness import Harness, agent_info, only, sent, updates
from tests.unit.master.test_core_agents import _running_cluster


def _failed_over(failover_timeout: float) -> tuple[Harness, str, str]:
    """A new leader on the old registry, the agent back with the framework's task."""
    h = Harness()
    aid, fid = _running_cluster(h)
    info = m.FrameworkInfo(name="fw", id=fid, failover_timeout=failover_timeout)
    task = h.master.frameworks[fid].tasks["t1"].info
    h2 = Harness(registry=h.registry, master_id="M2", heartbeat_interval=1.0,
                 agent_reregister_timeout=3.0)
    h2.recv(b"a1-new", m.ReregisterAgent(aid, agent_info(),
                                         tasks=(m.TaskRecord(fid, task, ts.RUNNING),),
                                         frameworks=(info,)))
    return h2, aid, fid


def test_recovered_framework_not_back_within_failover_timeout_is_torn_down() -> None:
    h, aid, fid = _failed_over(failover_timeout=30.0)
    assert ("framework_failover", fid) in h.timers
    assert h.timers[("framework_failover", fid)] == h.now + 30.0
    h.advance(29.0)
    assert fid in h.master.frameworks
    out = h.advance(2.0)
    assert fid not in h.master.frameworks
    assert sent(out, m.ShutdownFramework, to=b"a1-new") or sent(out, m.KillTask, to=b"a1-new")


def test_recovered_framework_gets_at_least_the_agents_recovery_window() -> None:
    h, aid, fid = _failed_over(failover_timeout=0.0)
    assert h.timers[("framework_failover", fid)] == h.now + 3.0  # agent_reregister_timeout
    assert h.subscribe(b"fw-new", name="fw", id=fid) == fid
    assert ("framework_failover", fid) not in h.timers
    for _ in range(5):  # past the placeholder's deadline, heartbeating like a live framework
        h.advance(1.0)
        h.recv(b"fw-new", m.Heartbeat())
    assert h.master.frameworks[fid].tasks["t1"].state == ts.RUNNING


def test_implicit_and_explicit_reconciliation_after_failover() -> None:
    h, aid, fid = _failed_over(failover_timeout=30.0)
    h.subscribe(b"fw-new", name="fw", id=fid)
    implicit = updates(h.recv(b"fw-new", m.Reconcile(fid)), to=b"fw-new")
    assert [(u.task_id, u.state) for u in implicit] == [("t1", ts.RUNNING)]
    explicit = updates(h.recv(b"fw-new", m.Reconcile(fid, (m.ReconcileTask("t1"),
                                                            m.ReconcileTask("ghost"),))),
                       to=b"fw-new")
    states = {u.task_id: u.state for u in explicit}
    assert states["t1"] == ts.RUNNING
    assert states["ghost"] in (ts.LOST, ts.UNKNOWN, ts.GONE)


def test_agent_not_back_within_reregister_timeout_is_unreachable_and_reported() -> None:
    h = Harness()
    aid, fid = _running_cluster(h)
    h2 = Harness(registry=h.registry, master_id="M2", agent_reregister_timeout=20.0)
    assert h2.master.recovering == {aid}
    h2.subscribe(b"fw-new", name="fw", id=fid)
    out = h2.advance(21.0)
    assert aid in h2.registry.load().unreachable
    assert sent(out, m.AgentLost, to=b"fw-new") == [m.AgentLost(aid)]
    st = only(updates(h2.recv(b"fw-new", m.Reconcile(fid, (m.ReconcileTask("t1", aid),))),
                      to=b"fw-new"))
    assert st.state in (ts.LOST, ts.UNREACHABLE)
