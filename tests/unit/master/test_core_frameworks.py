"""Master core: subscription and failover, offers, accept (valid and invalid), decline."""
from __future__ import annotations

import pytest

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.resources import Resources
from mesos_master.core_operator import TeardownRequest

from .harness import AGENT_RES, Harness, agent_info, command_task, only, sent, updates

R = Resources.parse


def test_subscribe_assigns_id_and_keeps_a_given_one() -> None:
    h = Harness()
    fid = h.subscribe(b"fw1", name="one")
    assert fid.startswith("M-") and h.master.frameworks[fid].connected
    assert h.subscribe(b"fw2", name="two", id="old-framework-id") == "old-framework-id"
    assert h.master.frameworks["old-framework-id"].active


def test_failover_to_new_connection() -> None:
    h = Harness()
    aid = h.register_agent()
    fid = h.subscribe(b"fw1")
    offer = only(h.offers(b"fw1"))
    out = h.recv(b"fw1-b", m.Subscribe(m.FrameworkInfo("fw", id=fid)))
    assert only(sent(out, m.Error, to=b"fw1")).message == "framework failed over"
    assert only(sent(out, m.Subscribed, to=b"fw1-b")).framework_id == fid
    assert offer.id not in h.master.offers  # old offers are void ...
    (again,) = h.offers(b"fw1-b")  # ... and their resources offered afresh
    assert again.resources == offer.resources and again.agent_id == aid
    err = only(sent(h.recv(b"fw1", m.Heartbeat()), m.ProtocolError, to=b"fw1"))
    assert err.in_reply_to == "Heartbeat"


def test_offers_grouped_per_framework_and_never_twice() -> None:
    h = Harness()
    for i in range(3):
        h.register_agent(f"a{i}".encode(), agent_info(f"h{i}"))
    h.subscribe(b"fw1")
    out = h.allocate()
    (msg,) = sent(out, m.Offers, to=b"fw1")
    assert len(msg.offers) == 3 and {o.hostname for o in msg.offers} == {"h0", "h1", "h2"}
    assert msg.offers[0].attributes == {"rack": "r1"}
    assert msg.offers[0].containerizers == ("docker", "mesos")  # what the agent runs
    assert not sent(h.advance(5.0), m.Offers)
    assert len(h.master.offers) == 3


def _one_offer(h: Harness, **info):
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", **info)
    return aid, fid, only(h.offers(b"fw1"))


def test_accept_launches_and_recovers_the_rest_with_default_filter() -> None:
    h = Harness()
    aid, fid, offer = _one_offer(h)
    task = command_task("t1", aid, "cpus:1;mem:100;ports:[31000-31000]")
    out = h.launch(b"fw1", fid, offer, [task])
    run = only(sent(out, m.RunTask, to=b"a1"))
    assert run.task == task and run.framework.id == fid
    assert not updates(out)
    t = h.master.frameworks[fid].tasks["t1"]
    assert t.state == ts.STAGING and h.master.agents[aid].used == task.resources
    # unused resources are filtered for 5 s (Mesos default), then offered again
    assert not sent(h.advance(4.0), m.Offers)
    (again,) = [o for msg in sent(h.advance(2.0), m.Offers) for o in msg.offers]
    assert again.resources == R(AGENT_RES) - task.resources


def _assert_each(statuses, state, reason):
    assert statuses and all((s.state, s.reason, s.source, s.uuid) ==
                            (state, reason, "SOURCE_MASTER", None) for s in statuses)


@pytest.mark.parametrize("partition_aware,expected", [(False, ts.LOST), (True, ts.DROPPED)])
def test_accept_with_invalid_offers(partition_aware: bool, expected: str) -> None:
    h = Harness()
    caps = ("PARTITION_AWARE",) if partition_aware else ()
    aid, fid, offer = _one_offer(h, capabilities=caps)
    tasks = (command_task("t1", aid), command_task("t2", aid))
    op = m.Operation("LAUNCH", tasks)
    out = h.recv(b"fw1", m.Accept(fid, (offer.id, "no-such-offer"), (op,)))
    statuses = updates(out, to=b"fw1")
    assert [s.task_id for s in statuses] == ["t1", "t2"]
    _assert_each(statuses, expected, "REASON_INVALID_OFFERS")
    assert not sent(out, m.RunTask) and offer.id not in h.master.offers
    assert only(h.offers(b"fw1")).resources == offer.resources  # recovered without filter


def test_accept_offers_of_two_agents_or_of_another_framework_is_invalid() -> None:
    h = Harness()
    a1 = h.register_agent(b"a1")
    h.register_agent(b"a2", agent_info("h2"))
    fid = h.subscribe(b"fw1")
    o1, o2 = sorted(h.offers(b"fw1"), key=lambda o: o.agent_id)
    op = m.Operation("LAUNCH", (command_task("t1", a1),))
    out = h.recv(b"fw1", m.Accept(fid, (o1.id, o2.id), (op,)))
    assert only(updates(out)).reason == "REASON_INVALID_OFFERS"
    other = h.subscribe(b"fw2", name="other")
    mine = h.offers(b"fw1") or h.offers(b"fw1")
    out = h.recv(b"fw2", m.Accept(other, (mine[0].id,), (op,)))
    assert only(updates(out, to=b"fw2")).reason == "REASON_INVALID_OFFERS"
    assert mine[0].id in h.master.offers  # another framework's offer is left alone


INVALID_TASKS = {
    "duplicate id": lambda aid: command_task("t0", aid),
    "wrong agent": lambda aid: command_task("t9", "some-other-agent"),
    "no resources": lambda aid: command_task("t9", aid, ""),
    "too much": lambda aid: command_task("t9", aid, "cpus:100"),
    "port not offered": lambda aid: command_task("t9", aid, "cpus:1;ports:[80-80]"),
    "nothing to run": lambda aid: m.TaskInfo("n", "t9", aid, R("cpus:1")),
    "empty command": lambda aid: m.TaskInfo("n", "t9", aid, R("cpus:1"), m.CommandInfo("")),
    "slash in id": lambda aid: command_task("a/b", aid),
    "backslash in id": lambda aid: command_task("a\\b", aid),
    "space in id": lambda aid: command_task("a b", aid),
    "no-break space in id": lambda aid: command_task("a\u00a0b", aid),
    "tab in id": lambda aid: command_task("a\tb", aid),
    "unprintable id": lambda aid: command_task("a\x7fb", aid),
    "dot-dot id": lambda aid: command_task("..", aid),
    "docker without image": lambda aid: m.TaskInfo(
        "n", "t9", aid, R("cpus:1"), container=m.ContainerInfo("DOCKER")),
}


@pytest.mark.parametrize("case", sorted(INVALID_TASKS))
def test_invalid_task_gets_task_error(case: str) -> None:
    h = Harness()
    aid, fid, offer = _one_offer(h)
    bad = INVALID_TASKS[case](aid)
    out = h.launch(b"fw1", fid, offer, [command_task("t0", aid, "cpus:1;mem:10"), bad])
    assert [r.task.task_id for r in sent(out, m.RunTask)] == ["t0"]
    st = only(updates(out, to=b"fw1"))
    assert (st.task_id, st.state, st.reason, st.source) == (
        bad.task_id, ts.ERROR, "REASON_TASK_INVALID", "SOURCE_MASTER")
    assert st.message
    assert bad.task_id not in h.master.frameworks[fid].tasks or case == "duplicate id"


def test_docker_task_with_command_is_valid() -> None:
    h = Harness()
    aid, fid, offer = _one_offer(h)
    task = m.TaskInfo("web", "t1", aid, R("cpus:1;mem:64"), m.CommandInfo("httpd -f"),
                      m.ContainerInfo("DOCKER", m.DockerInfo("busybox")))
    assert only(sent(h.launch(b"fw1", fid, offer, [task]), m.RunTask)).task == task


def test_decline_filters_until_refuse_seconds() -> None:
    h = Harness()
    _, fid, offer = _one_offer(h)
    h.recv(b"fw1", m.Decline(fid, (offer.id,), refuse_seconds=30.0))
    assert not h.master.offers
    assert not sent(h.advance(29.0), m.Offers)
    assert sent(h.advance(2.0), m.Offers)


def test_decline_default_filter_and_revive_clears_it() -> None:
    h = Harness()
    _, fid, offer = _one_offer(h)
    h.recv(b"fw1", m.Decline(fid, (offer.id,)))
    assert not sent(h.advance(4.5), m.Offers)
    h.recv(b"fw1", m.Decline(fid, ("unknown-offer",)))  # ignored
    h.recv(b"fw1", m.Revive(fid))
    assert sent(h.advance(1.0), m.Offers)


def test_suppress_stops_offers_until_revive() -> None:
    h = Harness()
    _, fid, offer = _one_offer(h)
    h.recv(b"fw1", m.Suppress(fid))
    h.recv(b"fw1", m.Decline(fid, (offer.id,), refuse_seconds=0.0))
    assert not sent(h.advance(10.0), m.Offers)
    h.recv(b"fw1", m.Revive(fid))
    assert sent(h.advance(1.0), m.Offers)


def test_offer_timeout_rescinds() -> None:
    h = Harness(offer_timeout=10.0)
    _, fid, offer = _one_offer(h)
    out = h.advance(10.0)
    assert only(sent(out, m.Rescind, to=b"fw1")).offer_id == offer.id
    assert sent(h.advance(1.0), m.Offers)  # offered again (no filter)


def test_silent_framework_is_deactivated_then_removed_after_failover_timeout() -> None:
    h = Harness(heartbeat_interval=10.0)
    aid, fid, offer = _one_offer(h, failover_timeout=60.0)
    h.launch(b"fw1", fid, offer, [command_task("t1", aid)])
    out: list = []
    for _ in range(8):  # the agent keeps heartbeating; the framework does not
        h.recv(b"a1", m.Heartbeat())
        out += h.advance(5.0)
    fw = h.master.frameworks[fid]
    assert not fw.connected and not fw.active and not fw.offers and not h.master.offers
    err = only(sent(h.recv(b"fw1", m.Accept(fid, ("x",))), m.ProtocolError, to=b"fw1"))
    assert err.in_reply_to == "Accept"
    out = []
    for _ in range(14):
        h.recv(b"a1", m.Heartbeat())
        out += h.advance(5.0)
    assert fid not in h.master.frameworks and not sent(out, m.Offers)
    assert only(sent(out, m.ShutdownFramework, to=b"a1")) == m.ShutdownFramework(fid)
    assert h.master.agents[aid].used == R("")
    assert h.master.completed_frameworks[-1].completed_tasks[-1].state == ts.KILLED


def test_framework_busy_with_other_messages_is_not_silent() -> None:
    """Its heartbeats may wait behind its own acknowledgements in the master's queue: any
    message from the framework's connection counts as a sign of life."""
    h = Harness(heartbeat_interval=10.0)
    aid, fid, offer = _one_offer(h, failover_timeout=0.0)
    h.launch(b"fw1", fid, offer, [command_task("t1", aid)])
    for _ in range(12):  # 60 s without a framework heartbeat, but reconciling all along
        h.recv(b"a1", m.Heartbeat())
        h.recv(b"fw1", m.Reconcile(fid, ()))
        h.advance(5.0)
    fw = h.master.frameworks[fid]
    assert fw.connected and fw.active and "t1" in fw.tasks


def test_framework_reconnecting_before_failover_timeout_keeps_tasks() -> None:
    h = Harness(heartbeat_interval=10.0)
    aid, fid, offer = _one_offer(h, failover_timeout=300.0)
    h.launch(b"fw1", fid, offer, [command_task("t1", aid)])
    for _ in range(10):
        h.recv(b"a1", m.Heartbeat())
        h.advance(5.0)
    assert not h.master.frameworks[fid].connected
    assert h.subscribe(b"fw1", id=fid, failover_timeout=300.0) == fid
    assert ("framework_failover", fid) not in h.timers
    assert "t1" in h.master.frameworks[fid].tasks and h.master.frameworks[fid].active


def test_teardown_shuts_down_and_forgets_the_framework() -> None:
    h = Harness()
    aid, fid, offer = _one_offer(h)
    h.launch(b"fw1", fid, offer, [command_task("t1", aid)], refuse_seconds=0)
    leftover = only(h.offers())
    out = h.recv(b"fw1", m.Teardown(fid))
    assert only(sent(out, m.ShutdownFramework, to=b"a1")) == m.ShutdownFramework(fid)
    assert fid not in h.master.frameworks and leftover.id not in h.master.offers
    assert h.master.agents[aid].used == R("") and h.master.agents[aid].offered == R("")
    out = h.recv(b"fw1", m.Subscribe(m.FrameworkInfo("fw", id=fid)))
    assert "removed" in only(sent(out, m.Error, to=b"fw1")).message
    h.subscribe(b"fw2", name="next")
    assert only(h.offers(b"fw2")).resources == R(AGENT_RES)


def test_subscribe_with_bad_role_or_id_is_refused() -> None:
    h = Harness()
    out = h.recv(b"f", m.Subscribe(m.FrameworkInfo("x", roles=("bad role",))))
    assert only(sent(out, m.Error, to=b"f")) and not h.master.frameworks
    out = h.recv(b"f", m.Subscribe(m.FrameworkInfo("x", id="a/b")))
    assert only(sent(out, m.Error, to=b"f")) and not h.master.frameworks
    out = h.recv(b"f", m.Subscribe(m.FrameworkInfo("x", failover_timeout=float("nan"))))
    assert only(sent(out, m.Error, to=b"f"))


def test_persisted_effects_are_only_registry_operations() -> None:
    h = Harness(auto_persist=False)
    out = h.recv(b"a", m.RegisterAgent(agent_info()))
    assert [type(e) for e in out] == [fx.Persist]


def test_new_framework_on_a_reused_connection_disconnects_the_old_one() -> None:
    h = Harness()
    old = h.subscribe(b"fw1", name="old", failover_timeout=60.0)
    new = h.subscribe(b"fw1", name="new")
    assert new != old and h.master.peers[b"fw1"] == ("framework", new)
    assert not h.master.frameworks[old].connected
    assert ("framework_failover", old) in h.timers


def test_retried_first_subscribe_on_the_same_connection_gets_the_same_framework() -> None:
    h = Harness()
    info = m.FrameworkInfo(name="fw", user="u")
    first = only(sent(h.recv(b"fw1", m.Subscribe(info)), m.Subscribed, to=b"fw1"))
    again = only(sent(h.recv(b"fw1", m.Subscribe(info)), m.Subscribed, to=b"fw1"))
    assert again.framework_id == first.framework_id and len(h.master.frameworks) == 1


def _big_accept(h: Harness) -> tuple[m.Accept, str]:
    """150 small tasks, each port used once, some invalid (bad id, a reused id, too big)."""
    aid = h.register_agent(b"a1", agent_info(res="cpus:100;mem:100000;ports:[31000-31199]"))
    fid = h.subscribe(b"fw1")
    (offer,) = h.offers(b"fw1")
    tasks = [command_task(f"t{i}", aid, f"cpus:0.5;mem:10;ports:[{31000 + i}-{31000 + i}]")
             for i in range(150)]
    tasks[3] = command_task("bad id", aid, "cpus:0.1")
    tasks[70] = command_task("t1", aid, "cpus:0.1")  # already used by this ACCEPT
    tasks[140] = command_task("huge", aid, "cpus:1000")
    return m.Accept(fid, (offer.id,), (m.Operation("LAUNCH", tuple(tasks)),)), aid


def test_an_accept_in_pieces_is_the_accept_at_once_and_the_books_balance_between() -> None:
    whole, split = Harness(), Harness()
    accept, aid = _big_accept(whole)
    assert _big_accept(split)[0] == accept
    at_once = whole.recv(b"fw1", accept)
    pieces = []
    for piece in split.master.handle_in_pieces(fx.Received(b"fw1", accept), split.now):
        split.master.check_invariants()  # the runtime sends between pieces; nothing else runs
        pieces.append(piece)
    assert len(pieces) == 3  # after tasks 64 and 128, then the rest
    assert [len(sent(p, m.RunTask)) for p in pieces] == [63, 63, 21]
    assert [e for p in pieces for e in p] == at_once
    assert split.master.agents[aid].used == whole.master.agents[aid].used
    assert split.master.counters == whole.master.counters
    offered = [[o.resources for msg in sent(h.advance(6.0), m.Offers) for o in msg.offers]
               for h in (split, whole)]  # the rest, once its refusal filter is over
    assert offered[0] == offered[1] and len(offered[0]) == 1
    # everything else comes whole, as from `handle`
    (beat,) = split.master.handle_in_pieces(fx.TimerFired(("heartbeat",)), split.now + 20)
    assert beat == whole.master.handle(fx.TimerFired(("heartbeat",)), whole.now + 20)


def test_operator_teardown_tells_the_framework_and_removes_it() -> None:
    h = Harness()
    aid, fid, offer = _one_offer(h)
    h.launch(b"fw1", fid, offer, [command_task("t1", aid)], refuse_seconds=0)
    assert h.handle(TeardownRequest("no-such-framework")) == []
    out = h.handle(TeardownRequest(fid))
    assert only(sent(out, m.Error, to=b"fw1")).message == "Framework removed"
    assert only(sent(out, m.ShutdownFramework, to=b"a1")) == m.ShutdownFramework(fid)
    assert fid not in h.master.frameworks
    assert [t.state for t in h.master.completed_frameworks[-1].completed_tasks] == [ts.KILLED]
