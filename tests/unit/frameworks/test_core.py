"""SchedulerCore: exact effects for every event and command, no IO, no clock."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from frameworks import core as c
from frameworks.core import Abort, Callback, SchedulerCore
from mesos_common import messages as m
from mesos_common.effects import (
    CancelTimer,
    LeaderChanged,
    Log,
    MasterConnected,
    Received,
    Redetect,
    Send,
    SetTimer,
    TimerFired,
)
from mesos_common.resources import Resources

INFO = m.FrameworkInfo(name="fw", user="u")
MASTER = {"id": "m1", "hostname": "h", "ip": "127.0.0.1", "port": 5050,
          "zmq_endpoint": "tcp://127.0.0.1:5049", "version": "0.1"}
HB = 10.0


def rx(msg: object) -> Received:
    return Received(b"master", msg)


def no_logs(effects: list) -> list:
    return [e for e in effects if not isinstance(e, Log)]


def subscribed_core(now: float = 0.0, **kw: object) -> SchedulerCore:
    core = SchedulerCore(INFO, **kw)  # type: ignore[arg-type]
    core.handle(MasterConnected(MASTER), now)
    core.handle(rx(m.Subscribed("fw-1", "m1", HB)), now)
    return core


def task(tid: str = "t1") -> m.TaskInfo:
    return m.TaskInfo(name=tid, task_id=tid, agent_id="a1",
                      resources=Resources.from_scalars(cpus=0.1, mem=32),
                      command=m.CommandInfo("true"))


def test_core_is_pure() -> None:
    tree = ast.parse(Path(c.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom)}
    banned = {"asyncio", "zmq", "time", "socket", "subprocess", "threading", "aiohttp",
              "docker", "kazoo", "sqlite3", "random"}
    assert not imported & banned


def test_master_connected_sends_subscribe_and_arms_retry() -> None:
    core = SchedulerCore(INFO)
    assert core.handle(MasterConnected(MASTER), 100.0) == [
        Send(None, m.Subscribe(INFO)), SetTimer(c.SUBSCRIBE_TIMER, 100.5)]
    assert core.state == c.SUBSCRIBING


def test_first_subscribed_registers_and_starts_heartbeats() -> None:
    core = SchedulerCore(INFO)
    core.handle(MasterConnected(MASTER), 0.0)
    effects = core.handle(rx(m.Subscribed("fw-1", "m1", HB)), 1.0)
    assert no_logs(effects) == [
        CancelTimer(c.SUBSCRIBE_TIMER),
        SetTimer(c.HEARTBEAT_TIMER, 11.0),
        SetTimer(c.MASTER_TIMER, 31.0),
        Callback("registered", ("fw-1", {**MASTER, "id": "m1"})),
    ]
    assert core.framework_id == "fw-1" and core.subscribed


def test_subscribe_retries_with_backoff_then_redetects() -> None:
    core = SchedulerCore(INFO, subscribe_backoff=1.0, subscribe_backoff_max=4.0,
                         redetect_after=3)
    core.handle(MasterConnected(MASTER), 0.0)
    sub = Send(None, m.Subscribe(INFO))
    assert core.handle(TimerFired(c.SUBSCRIBE_TIMER), 1.0) == [
        sub, SetTimer(c.SUBSCRIBE_TIMER, 3.0)]
    assert core.handle(TimerFired(c.SUBSCRIBE_TIMER), 3.0) == [
        sub, SetTimer(c.SUBSCRIBE_TIMER, 7.0)]
    effects = core.handle(TimerFired(c.SUBSCRIBE_TIMER), 7.0)
    assert no_logs(effects) == [Redetect("no answer to 3 Subscribe attempts")]
    assert core.state == c.DISCONNECTED
    # backoff keeps its (capped) value across the re-detection
    assert core.handle(MasterConnected(MASTER), 8.0) == [sub, SetTimer(c.SUBSCRIBE_TIMER, 12.0)]


def test_stale_subscribe_timer_is_ignored_once_subscribed() -> None:
    core = subscribed_core()
    assert core.handle(TimerFired(c.SUBSCRIBE_TIMER), 5.0) == []


def test_heartbeat_timer_sends_heartbeat_and_rearms() -> None:
    core = subscribed_core()
    assert core.handle(TimerFired(c.HEARTBEAT_TIMER), 10.0) == [
        Send(None, m.Heartbeat()), SetTimer(c.HEARTBEAT_TIMER, 20.0)]


def test_master_timer_rearms_while_master_talks() -> None:
    core = subscribed_core()
    assert core.handle(rx(m.Heartbeat()), 25.0) == []
    assert core.handle(TimerFired(c.MASTER_TIMER), 30.0) == [SetTimer(c.MASTER_TIMER, 55.0)]


def test_silent_master_disconnects_and_redetects() -> None:
    core = subscribed_core()
    effects = core.handle(TimerFired(c.MASTER_TIMER), 30.0)
    assert no_logs(effects) == [
        CancelTimer(c.HEARTBEAT_TIMER), CancelTimer(c.MASTER_TIMER),
        Callback("disconnected", ()),
        Redetect("master silent for 30.0s (3 heartbeat intervals)"),
    ]
    assert core.state == c.DISCONNECTED


def test_protocol_error_to_heartbeat_means_master_forgot_us() -> None:
    core = subscribed_core()
    effects = no_logs(core.handle(rx(m.ProtocolError("unknown framework", "Heartbeat")), 3.0))
    assert effects[:3] == [CancelTimer(c.HEARTBEAT_TIMER), CancelTimer(c.MASTER_TIMER),
                           Callback("disconnected", ())]
    assert isinstance(effects[3], Redetect) and len(effects) == 4


def test_resubscribe_carries_framework_id_and_reregisters() -> None:
    core = subscribed_core()
    core.handle(rx(m.ProtocolError("who?", "Heartbeat")), 3.0)
    with_id = m.FrameworkInfo(name="fw", user="u", id="fw-1")
    assert core.handle(MasterConnected({**MASTER, "id": "m2"}), 4.0) == [
        Send(None, m.Subscribe(with_id)), SetTimer(c.SUBSCRIBE_TIMER, 4.5)]
    effects = no_logs(core.handle(rx(m.Subscribed("fw-1", "m2", HB)), 5.0))
    assert effects[-1] == Callback("reregistered", ({**MASTER, "id": "m2"},))


def test_preset_framework_id_gets_reregistered_like_pymesos() -> None:
    core = SchedulerCore(m.FrameworkInfo(name="fw", id="fw-9"))
    core.handle(MasterConnected(MASTER), 0.0)
    effects = core.handle(rx(m.Subscribed("fw-9", "m1", HB)), 0.0)
    assert effects[-1] == Callback("reregistered", ({**MASTER, "id": "m1"},))


def test_master_connected_while_subscribed_reports_disconnect() -> None:
    core = subscribed_core()
    effects = core.handle(MasterConnected(MASTER), 2.0)
    with_id = m.FrameworkInfo(name="fw", user="u", id="fw-1")
    assert effects == [CancelTimer(c.HEARTBEAT_TIMER), CancelTimer(c.MASTER_TIMER),
                       Callback("disconnected", ()), Send(None, m.Subscribe(with_id)),
                       SetTimer(c.SUBSCRIBE_TIMER, 2.5)]


def test_offers_rescind_agent_lost_callbacks() -> None:
    core = subscribed_core()
    offer = m.Offer("o1", "fw-1", "a1", "h1", Resources.from_scalars(cpus=1))
    assert core.handle(rx(m.Offers((offer,))), 1.0) == [Callback("resource_offers", ([offer],))]
    assert core.handle(rx(m.Rescind("o1")), 1.0) == [Callback("offer_rescinded", ("o1",))]
    assert core.handle(rx(m.AgentLost("a1")), 1.0) == [Callback("agent_lost", ("a1",))]


def test_update_with_uuid_is_acked_after_the_callback() -> None:
    core = subscribed_core()
    st = m.TaskStatus("t1", "TASK_RUNNING", agent_id="a1", uuid=b"u" * 16)
    assert core.handle(rx(m.Update(st, "fw-1")), 1.0) == [
        Callback("status_update", (st,)),
        Send(None, m.Acknowledge("fw-1", "a1", "t1", b"u" * 16)),
    ]


def test_update_without_uuid_or_with_explicit_acks_is_not_acked() -> None:
    core = subscribed_core()
    st = m.TaskStatus("t1", "TASK_LOST", agent_id="a1", source="SOURCE_MASTER")
    assert core.handle(rx(m.Update(st)), 1.0) == [Callback("status_update", (st,))]
    explicit = subscribed_core(implicit_acknowledgements=False)
    st2 = m.TaskStatus("t1", "TASK_RUNNING", agent_id="a1", uuid=b"u" * 16)
    assert explicit.handle(rx(m.Update(st2)), 1.0) == [Callback("status_update", (st2,))]
    assert explicit.acknowledge("a1", "t1", b"u" * 16) == [
        Send(None, m.Acknowledge("fw-1", "a1", "t1", b"u" * 16))]


def test_messages_before_subscribed_are_dropped() -> None:
    core = SchedulerCore(INFO)
    core.handle(MasterConnected(MASTER), 0.0)
    offer = m.Offer("o1", "fw-1", "a1", "h1", Resources.from_scalars(cpus=1))
    st = m.TaskStatus("t1", "TASK_RUNNING", agent_id="a1", uuid=b"u" * 16)
    assert no_logs(core.handle(rx(m.Offers((offer,))), 0.1)) == []
    assert no_logs(core.handle(rx(m.Update(st)), 0.1)) == []
    assert core.handle(rx(m.Rescind("o1")), 0.1) == []


def test_error_is_fatal() -> None:
    core = subscribed_core()
    effects = core.handle(rx(m.Error("framework removed")), 2.0)
    assert no_logs(effects) == [
        CancelTimer(c.SUBSCRIBE_TIMER), CancelTimer(c.HEARTBEAT_TIMER),
        CancelTimer(c.MASTER_TIMER), Callback("error", ("framework removed",)),
        Abort("framework removed")]
    assert core.stopped
    assert core.handle(rx(m.Heartbeat()), 3.0) == []
    assert core.launch(["o1"], [task()]) == []  # stopped: nothing at all


def test_other_protocol_errors_and_unexpected_messages_only_log() -> None:
    core = subscribed_core()
    (eff,) = core.handle(rx(m.ProtocolError("bad", "Accept")), 1.0)
    assert isinstance(eff, Log) and eff.level == "warning"
    (eff,) = core.handle(rx(m.ShutdownAgent("no")), 1.0)
    assert isinstance(eff, Log) and core.subscribed


def test_commands_when_subscribed() -> None:
    core = subscribed_core()
    t = task()
    assert core.launch(["o1"], [t], 5.0) == [Send(None, m.Accept(
        "fw-1", ("o1",), (m.Operation("LAUNCH", (t,)),), 5.0))]
    assert core.launch(["o1"], []) == [Send(None, m.Decline("fw-1", ("o1",), None))]
    assert core.decline(["o1", "o2"], 60) == [Send(None, m.Decline("fw-1", ("o1", "o2"), 60))]
    assert core.kill("t1", "a1") == [Send(None, m.Kill("fw-1", "t1", "a1"))]
    assert core.reconcile([m.ReconcileTask("t1")]) == [
        Send(None, m.Reconcile("fw-1", (m.ReconcileTask("t1"),)))]
    assert core.reconcile() == [Send(None, m.Reconcile("fw-1", ()))]
    assert core.revive(["r"]) == [Send(None, m.Revive("fw-1", ("r",)))]
    assert core.suppress() == [Send(None, m.Suppress("fw-1", ()))]


@pytest.mark.parametrize("command", [
    lambda core: core.decline(["o1"]), lambda core: core.kill("t1"),
    lambda core: core.acknowledge("a1", "t1", b"u"), lambda core: core.reconcile(),
    lambda core: core.revive(), lambda core: core.suppress()])
def test_commands_while_disconnected_are_dropped_with_a_log(command) -> None:
    core = SchedulerCore(INFO)
    (eff,) = command(core)
    assert isinstance(eff, Log) and eff.level == "warning"


def test_launch_while_disconnected_reports_tasks_lost() -> None:
    core = SchedulerCore(INFO)
    effects = core.launch(["o1"], [task("t1"), task("t2")])
    assert isinstance(effects[0], Log)
    assert effects[1:] == [Callback("status_update", (m.TaskStatus(
        task_id=tid, state="TASK_LOST", agent_id="a1", message="Master disconnected",
        reason="REASON_MASTER_DISCONNECTED", source="SOURCE_MASTER"),)) for tid in ("t1", "t2")]


def test_stop_without_failover_tears_down() -> None:
    core = subscribed_core()
    assert core.stop() == [CancelTimer(c.SUBSCRIBE_TIMER), CancelTimer(c.HEARTBEAT_TIMER),
                           CancelTimer(c.MASTER_TIMER), Send(None, m.Teardown("fw-1"))]
    assert core.stopped and core.stop() == []


def test_stop_with_failover_just_goes_quiet() -> None:
    core = subscribed_core()
    assert core.stop(failover=True) == [CancelTimer(k) for k in c.ALL_TIMERS]
    assert core.handle(TimerFired(c.HEARTBEAT_TIMER), 10.0) == []


def test_teardown_while_disconnected_logs() -> None:
    core = subscribed_core()
    core.handle(TimerFired(c.MASTER_TIMER), 100.0)
    effects = core.teardown()
    assert [e for e in effects if isinstance(e, Send)] == []
    assert isinstance(effects[-1], Log) and core.stopped


def test_zero_heartbeat_interval_disables_heartbeats() -> None:
    core = SchedulerCore(INFO)
    core.handle(MasterConnected(MASTER), 0.0)
    effects = core.handle(rx(m.Subscribed("fw-1", "m1", 0.0)), 0.0)
    assert not [e for e in effects if isinstance(e, SetTimer)]


def test_not_leader_reply_while_subscribing_redetects_without_disconnected_callback() -> None:
    core = SchedulerCore(INFO)
    core.handle(MasterConnected(MASTER), 0.0)
    out = core.handle(rx(m.ProtocolError("not leader, leader is unknown", "Subscribe")), 0.1)
    assert CancelTimer(c.SUBSCRIBE_TIMER) in out and isinstance(out[-1], Redetect)
    assert not [e for e in out if isinstance(e, Callback)]
    assert core.state == c.DISCONNECTED


def test_not_leader_reply_while_subscribed_loses_the_master() -> None:
    core = subscribed_core()
    out = core.handle(rx(m.ProtocolError("not leader, leader is M2 at tcp://h:1",
                                         "Heartbeat")), 1.0)
    assert Callback("disconnected", ()) in out and isinstance(out[-1], Redetect)


def test_leader_change_seen_in_zookeeper_moves_on_at_once() -> None:
    core = subscribed_core()
    out = core.handle(LeaderChanged("json.info_0000000003"), 1.0)
    assert Callback("disconnected", ()) in out and isinstance(out[-1], Redetect)
    assert core.state == c.DISCONNECTED
    assert core.handle(LeaderChanged("json.info_0000000004"), 1.1) == []  # detecting already
