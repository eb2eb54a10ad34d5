"""Master core: status updates and acknowledgements, kill, reconciliation."""
from __future__ import annotations

import pytest

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.resources import Resources

from .harness import AGENT_RES, Harness, agent_info, command_task, only, sent, updates

R = Resources.parse
U1, U2 = b"1" * 16, b"2" * 16


def _launched(h: Harness, pa: bool = False, task_res: str = "cpus:1;mem:128", **info):
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", capabilities=("PARTITION_AWARE",) if pa else (), **info)
    h.launch(b"fw1", fid, only(h.offers()), [command_task("t1", aid, task_res)],
             refuse_seconds=0)
    return aid, fid


def test_status_update_forwarded_and_recorded() -> None:
    h = Harness()
    aid, fid = _launched(h)
    out = h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING, uuid=U1,
                                                          healthy=True)))
    upd = only(sent(out, m.Update, to=b"fw1"))
    assert upd.framework_id == fid
    assert (upd.status.state, upd.status.agent_id, upd.status.uuid) == (ts.RUNNING, aid, U1)
    task = h.master.frameworks[fid].tasks["t1"]
    assert task.state == ts.RUNNING and [s[0] for s in task.statuses] == [ts.STAGING, ts.RUNNING]
    assert h.master.counters["valid_status_updates"] == 1


def test_acknowledgement_forwarded_and_terminal_task_completed() -> None:
    h = Harness()
    aid, fid = _launched(h)
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING, uuid=U1)))
    out = h.recv(b"fw1", m.Acknowledge(fid, aid, "t1", U1))
    assert only(sent(out, m.StatusUpdateAck, to=b"a1")) == m.StatusUpdateAck(fid, aid, "t1", U1)
    assert "t1" in h.master.frameworks[fid].tasks
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.FINISHED, uuid=U2)))
    fw = h.master.frameworks[fid]
    assert "t1" in fw.tasks  # terminal but not yet acknowledged
    h.recv(b"fw1", m.Acknowledge(fid, aid, "t1", U1))  # an old uuid does not complete it
    assert "t1" in fw.tasks
    h.recv(b"fw1", m.Acknowledge(fid, aid, "t1", U2))
    assert "t1" not in fw.tasks and fw.completed_tasks[-1].state == ts.FINISHED
    assert h.master.counters["tasks_finished"] == 1


def test_terminal_update_recovers_resources_once() -> None:
    h = Harness()
    aid, fid = _launched(h, task_res=AGENT_RES)
    assert not h.offers()  # the whole agent is used by t1
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.FAILED, uuid=U1)))
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.FAILED, uuid=U1)))  # retry
    assert h.master.agents[aid].used == R("")
    assert only(h.offers()).resources == R(AGENT_RES)
    assert h.master.counters["tasks_failed"] == 1


def test_illegal_transition_is_logged_and_forwarded() -> None:
    h = Harness()
    aid, fid = _launched(h)
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.KILLED, uuid=U1)))
    out = h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING, uuid=U2)))
    assert only(updates(out, to=b"fw1")).state == ts.RUNNING
    assert any("illegal transition" in e.text for e in out if hasattr(e, "text"))
    assert h.master.frameworks[fid].tasks["t1"].state == ts.KILLED


def test_update_for_unknown_framework_is_dropped() -> None:
    h = Harness()
    h.register_agent(b"a1")
    out = h.recv(b"a1", m.StatusUpdate("ghost", m.TaskStatus("t", ts.RUNNING, uuid=U1)))
    assert not sent(out, object)
    assert h.master.counters["invalid_status_updates"] == 1


def test_update_while_framework_disconnected_is_dropped_for_the_agent_to_retry() -> None:
    h = Harness(heartbeat_interval=10.0)
    aid, fid = _launched(h, failover_timeout=3600.0)
    for _ in range(8):
        h.recv(b"a1", m.Heartbeat())
        h.advance(5.0)
    out = h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING, uuid=U1)))
    assert not sent(out, m.Update)
    assert h.master.frameworks[fid].tasks["t1"].state == ts.RUNNING


def test_kill_known_task_goes_to_agent() -> None:
    h = Harness()
    aid, fid = _launched(h)
    out = h.recv(b"fw1", m.Kill(fid, "t1"))
    assert only(sent(out, m.KillTask, to=b"a1")) == m.KillTask(fid, "t1", None)


@pytest.mark.parametrize("pa,expected", [(False, ts.LOST), (True, ts.UNKNOWN)])
def test_kill_unknown_task_answers_from_master(pa: bool, expected: str) -> None:
    h = Harness()
    _launched(h, pa=pa)
    fid = next(iter(h.master.frameworks))
    out = h.recv(b"fw1", m.Kill(fid, "nope"))
    st = only(updates(out, to=b"fw1"))
    assert (st.task_id, st.state, st.source, st.uuid) == ("nope", expected, "SOURCE_MASTER",
                                                          None)
    assert not sent(out, m.KillTask)


def test_implicit_reconciliation_reports_every_task() -> None:
    h = Harness()
    aid, fid = _launched(h)
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING, uuid=U1, healthy=False)))
    st = only(updates(h.recv(b"fw1", m.Reconcile(fid)), to=b"fw1"))
    assert (st.task_id, st.state, st.reason, st.source, st.uuid, st.agent_id, st.healthy) == (
        "t1", ts.RUNNING, "REASON_RECONCILIATION", "SOURCE_MASTER", None, aid, False)
    assert st.message == "Reconciliation: Latest task state"


@pytest.mark.parametrize("pa", [False, True])
def test_explicit_reconciliation_cases(pa: bool) -> None:
    h = Harness(agent_ping_timeout=5.0, max_agent_ping_timeouts=1, heartbeat_interval=5.0)
    aid, fid = _launched(h, pa=pa)
    s2 = h.register_agent(b"a2", agent_info("h2"))
    lost = lambda state: state if pa else ts.LOST  # noqa: E731
    for _ in range(3):  # a2 goes silent -> unreachable; a1 and the framework stay
        h.recv(b"a1", m.Heartbeat())
        h.recv(b"fw1", m.Heartbeat())
        h.advance(5.0)
    assert s2 in h.master.registry.unreachable
    asks = (m.ReconcileTask("t1"), m.ReconcileTask("x", aid), m.ReconcileTask("y", s2),
            m.ReconcileTask("z", "never-seen"), m.ReconcileTask("w"))
    got = {s.task_id: s.state for s in updates(h.recv(b"fw1", m.Reconcile(fid, asks)))}
    assert got == {"t1": ts.STAGING, "x": lost(ts.GONE), "y": lost(ts.UNREACHABLE),
                   "z": lost(ts.UNKNOWN), "w": lost(ts.UNKNOWN)}


def test_reconciliation_waits_for_recovering_agents() -> None:
    h = Harness()
    aid, fid = _launched(h)
    h2 = Harness(registry=h.registry, master_id="M2")
    h2.subscribe(b"fw1", id=fid)
    out = h2.recv(b"fw1", m.Reconcile(fid, (m.ReconcileTask("t1"), m.ReconcileTask("t2", aid))))
    assert not updates(out)  # the agent may still come back with these tasks
    for _ in range(61):  # past agent_reregister_timeout (600 s): it is unreachable now
        h2.recv(b"fw1", m.Heartbeat())
        h2.advance(10.0)
    assert aid in h2.master.registry.unreachable
    got = {s.task_id: s.state for s in updates(h2.recv(b"fw1", m.Reconcile(
        fid, (m.ReconcileTask("t1"), m.ReconcileTask("t2", aid)))))}
    assert got == {"t1": ts.LOST, "t2": ts.LOST}


def test_staging_task_without_word_from_agent_is_resent_with_the_agent_epoch() -> None:
    h = Harness()
    aid, fid = _launched(h)
    epoch = h.master.agents[aid].epoch
    assert not sent(h.advance(14.0), m.RunTask)  # the first tick comes too soon after launch
    out = h.advance(16.0)  # a heartbeat interval without word: the RunTask may be lost
    again = only(sent(out, m.RunTask, to=b"a1"))
    assert again.task.task_id == "t1" and again.epoch == epoch
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.STARTING, uuid=U1)))
    assert not sent(h.advance(45.0), m.RunTask)  # the agent has it: no more copies


def test_retried_reregistration_on_same_connection_keeps_tasks_and_epoch() -> None:
    h = Harness()
    aid, fid = _launched(h)
    epoch = h.master.agents[aid].epoch
    stale_report = m.ReregisterAgent(aid, agent_info())  # predates the launch of t1
    out = h.recv(b"a1", stale_report)
    assert only(sent(out, m.AgentReregistered, to=b"a1")).epoch == epoch
    assert "t1" in h.master.frameworks[fid].tasks and not updates(out)
    out = h.recv(b"a1-new", stale_report)  # a new connection: the agent restarted
    assert only(sent(out, m.AgentReregistered, to=b"a1-new")).epoch > epoch
    assert [u.state for u in updates(out)] == [ts.LOST]  # DROPPED, not partition aware


def test_retried_update_is_forwarded_again_only_after_the_retry_interval() -> None:
    """The agent retries every 2 s at first: the master passes a retry (same uuid) on at most
    once per status_retry_forward_interval, and at once to a re-subscribed framework."""
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    offer = h.offers()[0]
    h.launch(b"fw1", fid, offer, [command_task("t1", aid)])
    update = m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING, uuid=b"u" * 16))
    assert len(updates(h.recv(b"a1", update), to=b"fw1")) == 1
    assert updates(h.recv(b"a1", update, now=h.now + 2.0), to=b"fw1") == []
    assert updates(h.recv(b"a1", update, now=h.now + 4.0), to=b"fw1") == []
    assert len(updates(h.recv(b"a1", update, now=h.now + 5.0), to=b"fw1")) == 1  # 11 s on
    task = h.master.frameworks[fid].tasks["t1"]
    assert [s[0] for s in task.statuses] == [ts.STAGING, ts.RUNNING]  # retries: one entry
    newer = m.StatusUpdate(fid, m.TaskStatus("t1", ts.FINISHED, uuid=b"v" * 16))
    assert len(updates(h.recv(b"a1", newer, now=h.now + 0.1), to=b"fw1")) == 1  # a new uuid
    h.recv(b"fw2", m.Subscribe(m.FrameworkInfo(name="fw", id=fid)))  # failover
    assert len(updates(h.recv(b"a1", newer, now=h.now + 0.1), to=b"fw2")) == 1
