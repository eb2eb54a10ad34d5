"""Master core: agent registration, re-registration, liveness, removal, peer mistakes."""
from __future__ import annotations

from mesos_common import codec
from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.resources import Resources
from mesos_master.registry.base import AdmitAgent, MarkReachable, MarkUnreachable, RemoveAgent

from .harness import Harness, agent_info, command_task, only, persisted, sent, updates


def test_register_persists_before_answering() -> None:
    h = Harness(auto_persist=False)
    out = h.recv(b"a1", m.RegisterAgent(agent_info()))
    op = only(persisted(out))
    assert isinstance(op, AdmitAgent) and op.hostname == "h1"
    assert not sent(out, m.AgentRegistered)
    assert h.recv(b"a1", m.RegisterAgent(agent_info())) == []  # duplicate while pending
    out = h.handle(fx.PersistDone(op))
    reg = only(sent(out, m.AgentRegistered, to=b"a1"))
    assert reg == m.AgentRegistered(op.agent_id, "M", 15.0, epoch=h.now)
    assert h.master.registry.admitted == {op.agent_id: "h1"}
    out = h.recv(b"a1", m.RegisterAgent(agent_info()))  # duplicate once registered
    assert only(sent(out, m.AgentRegistered)).agent_id == op.agent_id
    assert not persisted(out)
    assert len(h.master.agents) == 1


def test_failed_registry_write_admits_nothing() -> None:
    h = Harness(auto_persist=False)
    op = only(persisted(h.recv(b"a1", m.RegisterAgent(agent_info()))))
    out = h.handle(fx.PersistDone(op, ok=False))
    assert not sent(out, m.AgentRegistered) and not h.master.agents
    assert only(persisted(h.recv(b"a1", m.RegisterAgent(agent_info())))) != op  # may retry


def _running_cluster(h: Harness, pa: bool = False):
    aid = h.register_agent(b"a1")
    caps = ("PARTITION_AWARE",) if pa else ()
    fid = h.subscribe(b"fw1", capabilities=caps)
    offer = only(h.offers())
    h.launch(b"fw1", fid, offer, [command_task("t1", aid)])
    return aid, fid


def test_reregister_after_master_restart_keeps_id_and_rebuilds_tasks() -> None:
    h = Harness()
    aid, fid = _running_cluster(h)
    fw_info = h.master.frameworks[fid].info
    task = h.master.frameworks[fid].tasks["t1"].info
    # a new master process on the same registry
    h2 = Harness(registry=h.registry, master_id="M2")
    assert h2.master.recovering == {aid}
    out = h2.recv(b"a1-new", m.ReregisterAgent(
        aid, agent_info(), tasks=(m.TaskRecord(fid, task, ts.RUNNING),), frameworks=(fw_info,)))
    assert not persisted(out)  # already admitted: nothing to write
    assert only(sent(out, m.AgentReregistered, to=b"a1-new")) == m.AgentReregistered(
        aid, "M2", 15.0, epoch=h2.now)
    fw = h2.master.frameworks[fid]
    assert fw.recovered and not fw.connected and fw.tasks["t1"].state == ts.RUNNING
    assert h2.master.agents[aid].used == Resources.parse("cpus:1;mem:128")
    # the framework comes back with its id and learns its task by reconciliation
    assert h2.subscribe(b"fw1-new", name="fw", id=fid) == fid
    st = only(updates(h2.recv(b"fw1-new", m.Reconcile(fid)), to=b"fw1-new"))
    assert (st.task_id, st.state, st.reason, st.uuid) == (
        "t1", ts.RUNNING, "REASON_RECONCILIATION", None)
    # offers only cover what the task does not use
    offer = only(h2.offers(b"fw1-new"))
    assert offer.resources == agent_info().resources - Resources.parse("cpus:1;mem:128")


def test_reregister_unknown_id_is_shut_down() -> None:
    h = Harness()
    out = h.recv(b"a9", m.ReregisterAgent("nope", agent_info()))
    assert only(sent(out, m.ShutdownAgent, to=b"a9")).reason
    assert not h.master.agents and not persisted(out)


def _advance_with_framework_heartbeats(h: Harness, seconds: float,
                                      peers=(b"fw1", b"fw2")) -> list:
    out: list = []
    for _ in range(int(seconds / 5)):
        for p in peers:
            h.recv(p, m.Heartbeat())
        out += h.advance(5.0)
    return out


def test_heartbeat_timeout_marks_unreachable_and_reports_tasks() -> None:
    h = Harness(agent_ping_timeout=10.0, max_agent_ping_timeouts=3, heartbeat_interval=10.0)
    s1 = h.register_agent(b"a1")
    s2 = h.register_agent(b"a2", agent_info("h2"))
    legacy = h.subscribe(b"fw1")
    aware = h.subscribe(b"fw2", name="pa", capabilities=("PARTITION_AWARE",))
    out = h.allocate()
    (o1,) = only(sent(out, m.Offers, to=b"fw1")).offers
    (o2,) = only(sent(out, m.Offers, to=b"fw2")).offers
    assert (o1.agent_id, o2.agent_id) == (s1, s2)
    h.launch(b"fw1", legacy, o1, [command_task("legacy-task", s1)], refuse_seconds=0)
    h.launch(b"fw2", aware, o2, [command_task("aware-task", s2)], refuse_seconds=0)
    leftovers = [o for msg in sent(h.allocate(), m.Offers) for o in msg.offers]
    assert len(leftovers) == 2
    out = _advance_with_framework_heartbeats(h, 40.0)  # agents stay silent
    ops = persisted(out)
    assert all(isinstance(op, MarkUnreachable) for op in ops)
    assert sorted(op.agent_id for op in ops) == [s1, s2]
    assert set(h.master.registry.unreachable) == {s1, s2} and not h.master.agents
    rescinded = {r.offer_id for r in sent(out, m.Rescind)}
    assert rescinded == {o.id for o in leftovers} and not h.master.offers
    lost = only(updates(out, to=b"fw1"))
    assert (lost.task_id, lost.state, lost.reason, lost.source, lost.agent_id, lost.uuid) == (
        "legacy-task", ts.LOST, "REASON_AGENT_REMOVED", "SOURCE_MASTER", s1, None)
    unreachable = only(updates(out, to=b"fw2"))
    assert (unreachable.task_id, unreachable.state, unreachable.reason) == (
        "aware-task", ts.UNREACHABLE, "REASON_AGENT_REMOVED")
    for peer in (b"fw1", b"fw2"):
        assert sorted(a.agent_id for a in sent(out, m.AgentLost, to=peer)) == [s1, s2]
    assert "aware-task" in h.master.frameworks[aware].unreachable_tasks
    # Heartbeats went out to agents while they were registered
    assert sent(out, m.Heartbeat, to=b"a1")


def test_agent_heartbeats_keep_it_registered() -> None:
    h = Harness(agent_ping_timeout=10.0, max_agent_ping_timeouts=2, heartbeat_interval=10.0)
    h.register_agent(b"a1")
    out: list = []
    for _ in range(20):
        h.recv(b"a1", m.Heartbeat())
        out += h.advance(5.0)
    assert len(h.master.agents) == 1 and not persisted(out)
    assert len(sent(out, m.Heartbeat, to=b"a1")) == 10  # one per heartbeat_interval


def test_unreachable_agent_reregisters_after_mark_reachable() -> None:
    h = Harness(agent_ping_timeout=10.0, max_agent_ping_timeouts=1, heartbeat_interval=10.0,
                auto_persist=True)
    s1, legacy = _running_cluster(h)
    task = h.master.frameworks[legacy].tasks["t1"].info
    fw_info = h.master.frameworks[legacy].info
    _advance_with_framework_heartbeats(h, 25.0, peers=(b"fw1",))
    assert s1 in h.master.registry.unreachable
    h.auto_persist = False
    msg = m.ReregisterAgent(s1, agent_info(), tasks=(m.TaskRecord(legacy, task, ts.RUNNING),),
                            frameworks=(fw_info,))
    out = h.recv(b"a1", msg)
    op = only(persisted(out))
    assert op == MarkReachable(s1, "h1") and not sent(out, m.AgentReregistered)
    h.registry.apply(op)
    out = h.handle(fx.PersistDone(op))
    assert only(sent(out, m.AgentReregistered, to=b"a1")).agent_id == s1
    # the legacy framework was told TASK_LOST: its tasks there are shut down, not adopted
    assert only(sent(out, m.ShutdownFramework, to=b"a1")) == m.ShutdownFramework(legacy)
    assert not h.master.agents[s1].tasks
    assert s1 in h.master.registry.admitted and not h.master.registry.unreachable


def test_unregister_removes_agent_and_reports_gone() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", capabilities=("PARTITION_AWARE",))
    h.launch(b"fw1", fid, only(h.offers()), [command_task("t1", aid)])
    out = h.recv(b"a1", m.UnregisterAgent(aid))
    assert persisted(out) == [RemoveAgent(aid)]
    st = only(updates(out, to=b"fw1"))
    assert (st.state, st.reason) == (ts.GONE, "REASON_AGENT_REMOVED")
    assert not h.master.agents and aid not in h.master.registry.admitted
    assert h.master.frameworks[fid].completed_tasks[0].state == ts.GONE


def test_unknown_peers_get_protocol_errors_and_change_nothing() -> None:
    h = Harness()
    status = m.TaskStatus("t1", ts.RUNNING, uuid=b"u" * 16)
    cases = [
        m.Heartbeat(), m.StatusUpdate("f", status), m.UnregisterAgent("S1"),
        m.Accept("f", ("o1",)), m.Decline("f", ("o1",)), m.Kill("f", "t"),
        m.Acknowledge("f", "S1", "t", b"u"), m.Reconcile("f"), m.Revive("f"), m.Suppress("f"),
        m.Teardown("f"),
        m.RunTask(m.FrameworkInfo("x"), command_task("t", "S1")),  # master -> agent only
        m.Offers(()), m.AgentRegistered("S1", "M", 1.0),
    ]
    for msg in cases:
        out = h.recv(b"stranger", msg)
        err = only(sent(out, m.ProtocolError, to=b"stranger"))
        assert err.in_reply_to == type(msg).__name__, msg
        assert all(isinstance(e, (fx.Send, fx.Log)) for e in out)
        assert len(sent(out, object)) == 1
    assert not h.master.agents and not h.master.frameworks


def test_protocol_error_from_peer_is_not_answered_and_decode_errors_are() -> None:
    h = Harness()
    assert not sent(h.recv(b"p", m.ProtocolError("you are wrong", "Heartbeat")), object)
    err = only(sent(h.recv(b"p", codec.DecodeError("bad", "Accept")), m.ProtocolError))
    assert err.in_reply_to == "Accept"


def test_agent_cannot_act_as_framework_and_vice_versa() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    assert only(sent(h.recv(b"a1", m.Subscribe(m.FrameworkInfo("x"))), m.ProtocolError))
    assert only(sent(h.recv(b"fw1", m.RegisterAgent(agent_info())), m.ProtocolError))
    assert only(sent(h.recv(b"fw1", m.StatusUpdate(fid, m.TaskStatus("t", ts.RUNNING))),
                     m.ProtocolError))
    assert only(sent(h.recv(b"a1", m.Revive(fid)), m.ProtocolError))
    assert only(sent(h.recv(b"fw1", m.UnregisterAgent(aid)), m.ProtocolError))
    assert aid in h.master.agents and fid in h.master.frameworks


def test_reregister_while_registered_resets_books_and_drops_vanished_tasks() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    offer = only(h.offers())
    h.launch(b"fw1", fid, offer, [command_task("t1", aid), command_task("t2", aid)])
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING, uuid=b"1" * 16)))
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t2", ts.RUNNING, uuid=b"2" * 16)))
    t1 = h.master.frameworks[fid].tasks["t1"]
    out = h.recv(b"a1b", m.ReregisterAgent(aid, agent_info(), tasks=(
        m.TaskRecord(fid, t1.info, ts.RUNNING),)))
    assert only(sent(out, m.AgentReregistered, to=b"a1b")).agent_id == aid
    st = only(updates(out, to=b"fw1"))
    assert (st.task_id, st.state) == ("t2", ts.LOST)  # not partition aware: GONE -> LOST
    assert h.master.agents[aid].used == t1.resources
    assert h.master.peers.get(b"a1") is None and h.master.peers[b"a1b"] == ("agent", aid)


def test_reregistering_known_agent_keeps_decline_filters_unless_its_attributes_change() -> None:
    """Mesos updateSlave: an agent that re-registers while still registered keeps the
    frameworks' refuse filters on it (same attributes); changed attributes drop them."""
    import attrs
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    offer = only(h.offers(b"fw1"))
    h.recv(b"fw1", m.Decline(fid, (offer.id,), refuse_seconds=30.0))
    out = h.recv(b"a1b", m.ReregisterAgent(aid, agent_info()))  # a new connection
    assert not sent(out + h.advance(10.0), m.Offers)  # still filtered
    changed = attrs.evolve(agent_info(), attributes={"rack": "r2"})
    out = h.recv(b"a1c", m.ReregisterAgent(aid, changed))
    (msg,) = sent(out + h.advance(5.0), m.Offers)  # filters went with the old attributes
    h.recv(b"fw1", m.Decline(fid, (msg.offers[0].id,), refuse_seconds=30.0))
    out = h.recv(b"a1d", m.ReregisterAgent(aid, changed))
    assert not sent(out + h.advance(5.0), m.Offers)  # filtered again
    no_docker = attrs.evolve(changed, containerizers=("mesos",))
    out = h.recv(b"a1e", m.ReregisterAgent(aid, no_docker))  # restarted without an engine
    (msg,) = sent(out + h.advance(5.0), m.Offers)  # what it can run changed: filters went
    assert msg.offers[0].containerizers == ("mesos",)
    assert h.master.agents[aid].info.containerizers == ("mesos",)
