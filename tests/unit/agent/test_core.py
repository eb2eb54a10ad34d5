"""The agent core driven by events, asserting exact effects. No sleeping, no ports."""
from __future__ import annotations

import random
import signal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_agent.core import DISCONNECTED, REGISTERING, RUNNING, Agent, AgentConfig
from mesos_agent.events import (
    KillProcess,
    LaunchTask,
    MasterConnected,
    Redetect,
    StopAgent,
    TaskExited,
    TaskLaunched,
    TaskLaunchFailed,
)
from mesos_agent.recovery import Checkpoint, TaskCheckpoint
from mesos_agent.status import TIMER
from mesos_common import task_states as ts
from mesos_common.effects import CancelTimer, Log, Received, Send, SetTimer, Start, TimerFired
from mesos_common.messages import (
    AgentInfo,
    AgentRegistered,
    AgentReregistered,
    CommandInfo,
    FrameworkInfo,
    Heartbeat,
    KillTask,
    ProtocolError,
    RegisterAgent,
    ReregisterAgent,
    RunTask,
    ShutdownAgent,
    ShutdownFramework,
    StatusUpdate,
    StatusUpdateAck,
    TaskInfo,
    TaskRecord,
    TaskStatus,
)
from mesos_common.resources import Resources

RES = Resources.parse("cpus:2;mem:1024;ports:[31000-31009]")
INFO = AgentInfo(hostname="h1", port=5051, resources=RES, attributes={"rack": "r1", "n": 2.0},
                 containerizers=("mesos",))
FW = FrameworkInfo(name="fw", id="F1")
HB = 5.0


def make_agent(**kw: Any) -> Agent:
    cfg = AgentConfig(hostname="h1", port=5051, resources=RES, work_dir="/w",
                      attributes={"rack": "r1", "n": 2.0}, **kw)
    agent = Agent(cfg, random.Random(7))
    feed(agent, Start(), 0.0)
    return agent


def test_run_task_beyond_capacity_waits_for_killed_tasks() -> None:
    """A task that would not fit beside processes still being killed waits for them."""
    agent = registered_agent()
    running_task(agent, "t1", resources=RES)  # the whole agent
    recv(agent, ShutdownFramework("F1"), 2.0)  # t1 is being killed: its process still runs
    out = recv(agent, RunTask(FW, task("t2", resources=RES)), 2.1)
    assert not [e for e in out if isinstance(e, LaunchTask)]
    out = feed(agent, TaskExited("t1", None, signal.SIGTERM), 2.2)
    assert [e.task.task_id for e in out if isinstance(e, LaunchTask)] == ["t2"]


def feed(agent: Agent, event: Any, now: float) -> list:
    effects = agent.handle(event, now)
    agent.check_invariants()
    return effects


def recv(agent: Agent, msg: Any, now: float) -> list:
    return feed(agent, Received(b"", msg), now)


def no_logs(effects: list) -> list:
    return [e for e in effects if not isinstance(e, Log)]


def updates(effects: list) -> list[tuple[str, str]]:
    return [(e.msg.status.task_id, e.msg.status.state) for e in effects
            if isinstance(e, Send) and isinstance(e.msg, StatusUpdate)]


def registered_agent(**kw: Any) -> Agent:
    agent = make_agent(**kw)
    feed(agent, MasterConnected(), 0.0)
    recv(agent, AgentRegistered("A1", "M1", HB), 0.5)
    return agent


def task(tid: str = "t1", **kw: Any) -> TaskInfo:
    kw.setdefault("agent_id", "A1")
    kw.setdefault("resources", Resources.parse("cpus:1"))
    return TaskInfo(name=tid, task_id=tid,
                    command=CommandInfo("echo hi"), **kw)


def head_of(agent: Agent, tid: str) -> TaskStatus:
    """The update at the head of `tid`'s queue, which the test expects to be there."""
    head = agent.updates.head(tid)
    assert head is not None
    return head


def ack(status: TaskStatus) -> StatusUpdateAck:
    """The framework's acknowledgement of an update the agent sent (it carries a uuid)."""
    assert status.uuid is not None
    return StatusUpdateAck("F1", "A1", status.task_id, status.uuid)


def ack_all(agent: Agent, tid: str, now: float) -> list:
    """Ack every pending update of `tid` in order; returns all effects."""
    out = []
    while (head := agent.updates.head(tid)) is not None:
        out += recv(agent, ack(head), now)
    return out


def running_task(agent: Agent, tid: str = "t1", fw: FrameworkInfo = FW, **kw: Any) -> None:
    recv(agent, RunTask(fw, task(tid, **kw)), 1.0)
    feed(agent, TaskLaunched(tid, 4242), 1.1)
    ack_all(agent, tid, 1.2)


# ---------------------------------------------------------------- registration and liveness


def test_master_connected_registers_and_retries_with_backoff_then_redetects() -> None:
    agent = make_agent()
    assert feed(agent, MasterConnected(), 10.0) == [
        CancelTimer("heartbeat"), Send(None, RegisterAgent(INFO, version="corral-0.1.0")),
        SetTimer("register", 11.0)]
    assert agent.state == REGISTERING
    assert feed(agent, TimerFired("register"), 11.0)[1] == SetTimer("register", 13.0)
    assert feed(agent, TimerFired("register"), 13.0)[1] == SetTimer("register", 17.0)
    effects = feed(agent, TimerFired("register"), 17.0)
    assert effects[-1] == Redetect("no reply to 3 registration attempts")
    assert agent.state == DISCONNECTED
    assert feed(agent, TimerFired("register"), 18.0) == []  # stale
    # the backoff keeps growing across re-detection until a reply arrives
    assert feed(agent, MasterConnected(), 20.0)[-1] == SetTimer("register", 28.0)


def test_registered_heartbeats_and_detects_a_silent_master() -> None:
    agent = make_agent()
    feed(agent, MasterConnected(), 0.0)
    effects = recv(agent, AgentRegistered("A1", "M1", HB), 1.0)
    assert no_logs(effects) == [CancelTimer("register"), SetTimer("heartbeat", 6.0)]
    assert Log("info", "registered with master M1 as agent A1") in effects
    assert agent.state == RUNNING and agent.agent_id == "A1"
    assert feed(agent, TimerFired("heartbeat"), 6.0) == [Send(None, Heartbeat()),
                                                        SetTimer("heartbeat", 11.0)]
    recv(agent, Heartbeat(), 10.0)  # any message counts as a sign of life
    assert feed(agent, TimerFired("heartbeat"), 21.0)[0] == Send(None, Heartbeat())
    effects = feed(agent, TimerFired("heartbeat"), 25.0)
    assert effects[-1] == Redetect("master silent for 15.0s")
    assert CancelTimer("heartbeat") in effects and agent.state == DISCONNECTED


def test_duplicate_registration_reply_is_harmless() -> None:
    agent = registered_agent()
    assert recv(agent, AgentRegistered("A1", "M1", HB), 2.0) == []
    assert no_logs(recv(agent, AgentRegistered("A2", "M1", HB), 2.0)) == []
    assert agent.agent_id == "A1"


def test_protocol_error_to_heartbeat_means_reregister_with_id_and_tasks() -> None:
    agent = registered_agent()
    running_task(agent)
    recv(agent, RunTask(FW, task("t2")), 2.0)
    feed(agent, TaskLaunched("t2", 11), 2.0)
    feed(agent, TaskExited("t2", 1, None), 2.1)  # terminal, not acked
    assert recv(agent, ProtocolError("who?", "RegisterAgent"), 3.0) == [
        Log("warning", "master rejected our RegisterAgent: who?")]
    effects = recv(agent, ProtocolError("unknown agent", "Heartbeat"), 3.0)
    assert isinstance(effects[-1], Redetect) and agent.state == DISCONNECTED
    assert CancelTimer(TIMER) in effects  # updates paused
    effects = feed(agent, MasterConnected(), 4.0)
    reg = effects[1].msg
    assert isinstance(reg, ReregisterAgent) and reg.agent_id == "A1"
    assert {(r.task.task_id, r.state) for r in reg.tasks} == {
        ("t1", ts.RUNNING), ("t2", ts.FAILED)}  # latest states; updates follow in order
    assert reg.frameworks == (FW,)
    assert updates(effects) == []
    effects = recv(agent, AgentReregistered("A1", "M2", HB), 5.0)
    assert updates(effects) == [("t2", ts.STARTING)]  # resent only now, head first
    assert agent.master_id == "M2" and agent.state == RUNNING


def test_reregistered_with_another_id_is_ignored() -> None:
    agent = registered_agent()
    feed(agent, MasterConnected(), 2.0)
    effects = recv(agent, AgentReregistered("A9", "M2", HB), 2.5)
    assert [type(e) for e in effects] == [Log] and agent.state == REGISTERING


def test_registered_under_a_new_id_while_reregistering_starts_afresh() -> None:
    agent = registered_agent()
    running_task(agent)
    feed(agent, MasterConnected(), 2.0)
    effects = recv(agent, AgentRegistered("A2", "M2", HB), 2.5)
    assert KillProcess("t1", 3.0) in effects
    assert agent.agent_id == "A2" and agent.tasks() == {} and agent.draining() == {"t1"}


def test_shutdown_agent_kills_everything_and_registers_afresh() -> None:
    agent = registered_agent()
    running_task(agent)
    recv(agent, RunTask(FW, task("t2")), 2.0)  # still launching
    effects = recv(agent, ShutdownAgent("unknown agent"), 3.0)
    assert no_logs(effects) == [KillProcess("t1", 3.0), CancelTimer("heartbeat"),
                                Send(None, RegisterAgent(INFO, version="corral-0.1.0")),
                                SetTimer("register", 4.0)]
    assert agent.agent_id is None and agent.state == REGISTERING
    assert agent.draining() == {"t1", "t2"}
    assert feed(agent, TaskLaunched("t2", 99), 3.5) == [KillProcess("t2", 0.0)]
    assert feed(agent, TaskExited("t1", None, signal.SIGTERM), 4.0) == []
    assert feed(agent, TaskExited("t2", None, signal.SIGKILL), 4.0) == []
    assert agent.draining() == set()


def test_a_fresh_registration_refused_backs_off() -> None:
    agent = registered_agent()
    recv(agent, ShutdownAgent("its machine is down for maintenance"), 3.0)  # afresh, now
    effects = no_logs(recv(agent, ShutdownAgent("its machine is down for maintenance"), 3.1))
    assert not [e for e in effects if isinstance(e, Send)]  # no RegisterAgent at once
    (timer,) = [e for e in effects if isinstance(e, SetTimer)]
    assert timer.key == "register" and timer.at > 4.0
    assert [e.msg for e in feed(agent, TimerFired("register"), timer.at)
            if isinstance(e, Send)] == [RegisterAgent(INFO, version="corral-0.1.0")]


# ---------------------------------------------------------------- task life


def test_run_task_launches_in_a_mesos_sandbox() -> None:
    agent = registered_agent()
    t = task(agent_id="whatever")
    effects = recv(agent, RunTask(FW, t), 1.0)
    [launch] = effects
    assert isinstance(launch, LaunchTask) and launch.framework_id == "F1"
    assert launch.task.agent_id == "A1" and launch.task.task_id == "t1"
    assert launch.sandbox == f"/w/slaves/A1/frameworks/F1/executors/t1/runs/{launch.run_id}"
    assert agent.tasks()["t1"].state == ts.STAGING


def test_updates_are_sent_in_order_and_the_record_dropped_after_terminal_ack() -> None:
    agent = registered_agent()
    recv(agent, RunTask(FW, task()), 1.0)
    effects = feed(agent, TaskLaunched("t1", 4242), 2.0)
    [(_, st1)] = updates(effects)
    assert st1 == ts.STARTING and SetTimer(TIMER, 12.0) in effects  # Mesos: 10 s
    sts = agent.updates.pending("t1")
    assert [s.state for s in sts] == [ts.STARTING, ts.RUNNING]
    assert all(s.uuid and s.agent_id == "A1" and s.timestamp == 2.0 for s in sts)
    assert all(s.source == "SOURCE_EXECUTOR" for s in sts)
    # retried until acked
    assert updates(feed(agent, TimerFired(TIMER), 12.0)) == [("t1", ts.STARTING)]
    assert updates(ack_all(agent, "t1", 13.0)) == [("t1", ts.RUNNING)]
    effects = feed(agent, TaskExited("t1", 0, None), 14.0)
    assert updates(effects) == [("t1", ts.FINISHED)]
    assert head_of(agent, "t1").message == "Command exited with status 0"
    assert "t1" in agent.tasks()
    assert ack_all(agent, "t1", 15.0) == [CancelTimer(TIMER)]
    assert agent.tasks() == {} and agent.frameworks() == {}
    state = agent.state_json()
    assert state["frameworks"] == []
    [done] = state["completed_frameworks"]
    assert done["id"] == "F1" and done["completed_tasks"][0]["state"] == ts.FINISHED


def test_an_ack_that_lets_the_next_update_go_is_durable_first_one_that_ends_a_queue_is_lazy(
        ) -> None:
    """Mesos makes an acknowledgement durable before it forwards the next update: were the
    STARTING ack lost in a crash after RUNNING went out, STARTING would be resent behind
    RUNNING. An ack after which nothing is sent may ride along with a later commit."""
    agent = registered_agent(checkpoint=True)
    recv(agent, RunTask(FW, task()), 1.0)
    feed(agent, TaskLaunched("t1", 4242), 2.0)
    head = head_of(agent, "t1")
    out = recv(agent, ack(head), 3.0)
    kinds = [type(e).__name__ for e in out if isinstance(e, (Checkpoint, Send))]
    assert kinds == ["Checkpoint", "Send"] and updates(out) == [("t1", ts.RUNNING)]
    [ckpt] = [e for e in out if isinstance(e, Checkpoint)]
    assert isinstance(ckpt.record, TaskCheckpoint)
    assert not ckpt.lazy and [s.state for s in ckpt.record.updates] == [ts.RUNNING]
    head = head_of(agent, "t1")
    out = recv(agent, ack(head), 4.0)
    [ckpt] = [e for e in out if isinstance(e, Checkpoint)]
    assert isinstance(ckpt.record, TaskCheckpoint)
    assert ckpt.lazy and updates(out) == [] and ckpt.record.updates == ()


@pytest.mark.parametrize("code,sig,killed,state,message", [
    (3, None, False, ts.FAILED, "Command exited with status 3"),
    (None, signal.SIGKILL, False, ts.FAILED, "Command terminated by signal SIGKILL"),
    (None, signal.SIGTERM, True, ts.KILLED, "Command terminated by signal SIGTERM"),
    (0, None, True, ts.KILLED, "Command exited with status 0"),
    (None, None, False, ts.FAILED, "Abnormal executor termination"),
])
def test_exit_statuses(code: int | None, sig: int | None, killed: bool, state: str,
                       message: str) -> None:
    agent = registered_agent()
    running_task(agent)
    if killed:
        assert recv(agent, KillTask("F1", "t1"), 2.0) == [KillProcess("t1", 3.0)]
    feed(agent, TaskExited("t1", code, sig), 3.0)
    head = head_of(agent, "t1")
    assert (head.state, head.message) == (state, message)


def test_launch_failure_is_task_failed() -> None:
    agent = registered_agent()
    recv(agent, RunTask(FW, task()), 1.0)
    effects = feed(agent, TaskLaunchFailed("t1", "no such file"), 1.5)
    assert updates(effects) == [("t1", ts.FAILED)]
    head = head_of(agent, "t1")
    assert head.reason == "REASON_CONTAINER_LAUNCH_FAILED" and head.source == "SOURCE_AGENT"
    assert head.message == "Failed to launch container: no such file"


def test_fetch_failure_is_task_failed_with_its_reason_and_message() -> None:
    agent = registered_agent()
    recv(agent, RunTask(FW, task()), 1.0)
    why = "Failed to fetch all URIs for container 't1': Failed to fetch 'http://h/x': HTTP 404"
    effects = feed(agent, TaskLaunchFailed("t1", why, "REASON_FETCHER_FAILED"), 1.5)
    assert updates(effects) == [("t1", ts.FAILED)]
    head = head_of(agent, "t1")
    assert (head.reason, head.message) == ("REASON_FETCHER_FAILED", why)


def test_a_task_killed_while_it_is_prepared_is_no_longer_wanted() -> None:
    agent = registered_agent()
    recv(agent, RunTask(FW, task()), 1.0)
    assert agent.wants_launch("t1") and not agent.wants_launch("other")
    recv(agent, KillTask("F1", "t1"), 1.5)
    assert not agent.wants_launch("t1")
    assert feed(agent, TaskLaunchFailed("t1", "killed while its URIs were fetched"), 2.0) == []


def test_tasks_run_as_the_commands_user_else_the_frameworks_unless_switch_user_is_off() -> None:
    agent = registered_agent()
    fw = FrameworkInfo(name="fw", id="F1", user="alice")
    own = TaskInfo(name="t1", task_id="t1", agent_id="A1", resources=Resources.parse("cpus:1"),
                   command=CommandInfo("id", user="bob"))
    [launch] = recv(agent, RunTask(fw, own), 1.0)
    assert launch.user == "bob"
    [launch] = recv(agent, RunTask(fw, task("t2", resources=Resources.parse("cpus:0.5"))), 1.0)
    assert launch.user == "alice"
    [launch] = recv(agent, RunTask(FW, task("t3", resources=Resources.parse("cpus:0.5"))), 1.0)
    assert launch.user == "nobody"  # neither says: the agent's --default_user
    off = registered_agent(switch_user=False)
    [launch] = recv(off, RunTask(fw, own), 1.0)
    assert launch.user is None


@pytest.mark.parametrize("limitation,message", [
    ("memory", "Memory limit exceeded (Command terminated by signal SIGKILL)"),
    ("memory: Memory limit exceeded: Requested: 64MB Maximum Used: 64MB",
     "Memory limit exceeded: Requested: 64MB Maximum Used: 64MB "
     "(Command terminated by signal SIGKILL)")])
def test_a_memory_limitation_is_task_failed_with_its_reason_and_figures(
        limitation: str, message: str) -> None:
    agent = registered_agent()
    running_task(agent, "t1")
    effects = feed(agent, TaskExited("t1", None, signal.SIGKILL, limitation), 2.0)
    assert updates(effects) == [("t1", ts.FAILED)]
    head = head_of(agent, "t1")
    assert (head.reason, head.message) == ("REASON_CONTAINER_LIMITATION_MEMORY", message)


def test_kill_grace_period_from_message_then_task_then_default() -> None:
    agent = registered_agent()
    running_task(agent, "t1", kill_grace_period=7.0)
    running_task(agent, "t2")
    assert recv(agent, KillTask("F1", "t1", 1.5), 2.0) == [KillProcess("t1", 1.5)]
    assert recv(agent, KillTask("F1", "t1"), 2.0) == [KillProcess("t1", 7.0)]
    assert recv(agent, KillTask("F1", "t2"), 2.0) == [KillProcess("t2", 3.0)]


def test_kill_unknown_task_is_task_lost_or_dropped_for_partition_aware() -> None:
    agent = registered_agent()
    effects = recv(agent, KillTask("F1", "nope"), 2.0)
    assert updates(effects) == [("nope", ts.LOST)]
    assert head_of(agent, "nope").message == "Cannot find task"
    assert [type(e) for e in no_logs(recv(agent, KillTask("F1", "nope"), 2.1))] == []
    ack_all(agent, "nope", 2.2)
    aware = FrameworkInfo(name="fw", id="F1", capabilities=("PARTITION_AWARE",))
    running_task(agent, "t1", fw=aware)
    assert updates(recv(agent, KillTask("F1", "other"), 3.0)) == [("other", ts.DROPPED)]


def test_kill_while_launching_is_killed_without_a_process() -> None:
    agent = registered_agent()
    recv(agent, RunTask(FW, task()), 1.0)
    effects = recv(agent, KillTask("F1", "t1"), 1.1)
    assert updates(effects) == [("t1", ts.KILLED)]
    assert head_of(agent, "t1").reason == "REASON_TASK_KILLED_DURING_LAUNCH"
    assert not [e for e in effects if isinstance(e, KillProcess)]
    ack_all(agent, "t1", 1.2)  # acked before the launch finished: the process is still reaped
    assert agent.tasks() == {} and agent.draining() == {"t1"}
    assert feed(agent, TaskLaunched("t1", 5), 1.3) == [KillProcess("t1", 0.0)]
    assert feed(agent, TaskExited("t1", None, 9), 1.4) == [] and agent.draining() == set()


def test_kill_while_launching_then_launched_kills_the_new_process() -> None:
    agent = registered_agent()
    recv(agent, RunTask(FW, task()), 1.0)
    recv(agent, KillTask("F1", "t1"), 1.1)
    assert feed(agent, TaskLaunched("t1", 5), 1.2) == [KillProcess("t1", 0.0)]
    assert feed(agent, TaskExited("t1", None, 9), 1.3) == []
    assert [s.state for s in agent.updates.pending("t1")] == [ts.KILLED]


def test_task_killing_state_for_capable_frameworks() -> None:
    agent = registered_agent()
    fw = FrameworkInfo(name="fw", id="F1", capabilities=("TASK_KILLING_STATE",))
    running_task(agent, fw=fw)
    effects = recv(agent, KillTask("F1", "t1"), 2.0)
    assert updates(effects) == [("t1", ts.KILLING)] and effects[-1] == KillProcess("t1", 3.0)
    assert recv(agent, KillTask("F1", "t1"), 2.5) == [KillProcess("t1", 3.0)]  # no 2nd KILLING
    feed(agent, TaskExited("t1", None, signal.SIGTERM), 3.0)
    assert [s.state for s in agent.updates.pending("t1")] == [ts.KILLING, ts.KILLED]


def test_kill_of_terminal_task_does_nothing() -> None:
    agent = registered_agent()
    running_task(agent)
    feed(agent, TaskExited("t1", 0, None), 2.0)
    assert no_logs(recv(agent, KillTask("F1", "t1"), 2.5)) == []


def test_shutdown_framework_kills_its_tasks_and_drops_their_updates() -> None:
    agent = registered_agent()
    running_task(agent, "t1")
    running_task(agent, "t2", fw=FrameworkInfo(name="g", id="F2"))
    feed(agent, TaskExited("t2", 0, None), 2.0)
    recv(agent, RunTask(FW, task("t3")), 2.0)
    feed(agent, TaskLaunched("t3", 77), 2.0)  # STARTING in flight
    effects = no_logs(recv(agent, ShutdownFramework("F1"), 3.0))
    assert effects == [KillProcess("t1", 3.0), KillProcess("t3", 3.0)]  # t2's update flies
    assert set(agent.tasks()) == {"t2"} and set(agent.frameworks()) == {"F2"}
    assert feed(agent, TaskExited("t1", None, 15), 4.0) == []
    assert agent.updates.pending("t1") == () and agent.updates.pending("t3") == ()


def test_run_task_refusals() -> None:
    agent = make_agent()
    effects = recv(agent, RunTask(FW, task()), 1.0)
    assert [type(e) for e in effects] == [Log]  # not registered
    agent = registered_agent()
    recv(agent, RunTask(FW, task()), 1.0)
    assert [type(e) for e in recv(agent, RunTask(FW, task()), 1.0)] == [Log]
    other = FrameworkInfo(name="x", id="F2")
    assert [type(e) for e in recv(agent, RunTask(other, task()), 1.0)] == [Log]
    nameless = FrameworkInfo(name="x")
    assert [type(e) for e in recv(agent, RunTask(nameless, task("t9")), 1.0)] == [Log]


def test_updates_made_while_disconnected_wait_for_reregistration() -> None:
    agent = registered_agent()
    running_task(agent)
    recv(agent, ProtocolError("?", "StatusUpdate"), 2.0)
    assert updates(feed(agent, TaskExited("t1", 0, None), 3.0)) == []
    assert feed(agent, TimerFired(TIMER), 9.0) == []
    feed(agent, MasterConnected(), 10.0)
    assert updates(recv(agent, AgentReregistered("A1", "M1", HB), 11.0)) == [("t1", ts.FINISHED)]


def test_stale_ack_and_unknown_things_are_logged_not_fatal() -> None:
    agent = registered_agent()
    running_task(agent)
    ack = StatusUpdateAck("F1", "A1", "t1", b"x" * 16)
    assert [type(e) for e in recv(agent, ack, 2.0)] == [Log]
    assert [type(e) for e in feed(agent, "bogus", 2.0)] == [Log]
    assert [type(e) for e in recv(agent, RegisterAgent(INFO), 2.0)] == [Log]
    assert [type(e) for e in feed(agent, TaskExited("zzz", 0, None), 2.0)] == [Log]
    effects = feed(agent, TaskLaunched("zzz", 5), 2.0)
    assert effects[-1] == KillProcess("zzz", 0.0)


def test_state_json() -> None:
    agent = registered_agent()
    running_task(agent)
    s = agent.state_json()
    assert s["id"] == "A1" and s["hostname"] == "h1" and s["port"] == 5051
    assert s["pid"] == "slave(1)@127.0.0.1:5051"
    assert s["resources"] == {"cpus": 2.0, "gpus": 0.0, "mem": 1024.0, "disk": 0.0,
                              "ports": "[31000-31009]"}
    assert s["used_resources"]["cpus"] == 1.0
    assert s["attributes"] == {"rack": "r1", "n": 2.0}
    [fw] = s["frameworks"]
    [ex] = fw["executors"]
    [t] = fw["tasks"]
    assert fw["id"] == "F1" and t == ex["tasks"][0]
    assert t["state"] == ts.RUNNING and t["directory"] == ex["directory"]
    assert t["directory"].startswith("/w/slaves/A1/frameworks/F1/executors/t1/runs/")
    assert [x["state"] for x in t["statuses"]] == [ts.STAGING, ts.STARTING, ts.RUNNING]


def test_reregister_reports_frameworks_and_records() -> None:
    agent = registered_agent()
    running_task(agent)
    feed(agent, MasterConnected(), 5.0)
    [reg] = [e.msg for e in feed(agent, TimerFired("register"), 6.0) if isinstance(e, Send)]
    assert reg == ReregisterAgent("A1", INFO, tasks=(
        TaskRecord("F1", agent.tasks()["t1"].task, ts.RUNNING),), frameworks=(FW,),
        version="corral-0.1.0")


def test_stop_agent_kills_every_task_and_refuses_new_ones() -> None:
    agent = registered_agent()
    half = Resources.parse("cpus:0.5")
    running_task(agent, "t1", kill_grace_period=1.0, resources=half)
    recv(agent, RunTask(FW, task("t2", resources=half)), 2.0)  # launching
    recv(agent, RunTask(FW, task("t3", resources=half)), 2.0)
    feed(agent, TaskLaunched("t3", 5), 2.0)
    feed(agent, TaskExited("t3", 0, None), 2.0)  # finished, update unacked
    assert no_logs(feed(agent, StopAgent(), 3.0)) == [KillProcess("t1", 1.0)]
    assert [type(e) for e in recv(agent, RunTask(FW, task("t4")), 3.0)] == [Log]
    assert feed(agent, TaskLaunched("t2", 6), 3.1) == [KillProcess("t2", 0.0)]
    feed(agent, TaskExited("t1", None, signal.SIGTERM), 3.2)
    feed(agent, TaskExited("t2", None, signal.SIGKILL), 3.3)
    assert agent.tasks()["t1"].state == ts.KILLED and agent.tasks()["t2"].state == ts.KILLED
    assert agent.tasks()["t3"].state == ts.FINISHED


# ---------------------------------------------------------------- random event sequences

EVENTS = st.one_of(
    st.just(MasterConnected()),
    st.sampled_from([TimerFired("register"), TimerFired("heartbeat")]),
    st.just(TimerFired(TIMER)),
    st.sampled_from([AgentRegistered("A1", "M", HB), AgentReregistered("A1", "M", HB),
                     Heartbeat(), ProtocolError("x", "Heartbeat"), ShutdownAgent("bye"),
                     ShutdownFramework("F1"), AgentRegistered("A2", "M", HB)]).map(
        lambda m: Received(b"", m)),
    st.builds(lambda t: Received(b"", RunTask(FW, task(t))), st.sampled_from(["t1", "t2"])),
    st.builds(lambda t, g: Received(b"", KillTask("F1", t, g)), st.sampled_from(["t1", "t2", "t3"]),
              st.none() | st.just(1.0)),
    st.builds(TaskLaunched, st.sampled_from(["t1", "t2"]), st.just(10)),
    st.builds(TaskLaunchFailed, st.sampled_from(["t1", "t2"]), st.just("boom")),
    st.builds(TaskExited, st.sampled_from(["t1", "t2"]), st.none() | st.integers(0, 2),
              st.none() | st.just(15)),
    st.sampled_from(["t1", "t2", "t3"]).map(lambda t: ("ack", t)),
    st.just(StopAgent()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENTS, max_size=60))
def test_random_event_sequences_keep_invariants(events: list) -> None:
    agent = make_agent()
    now = 0.0
    for ev in events:
        now += 1.0
        if isinstance(ev, tuple):
            head = agent.updates.head(ev[1])
            if head is None:
                continue
            ev = Received(b"", ack(head))
        effects = feed(agent, ev, now)
        for e in effects:
            if isinstance(e, Send) and isinstance(e.msg, StatusUpdate):
                assert agent.state == RUNNING
                assert e.msg.status == agent.updates.head(e.msg.status.task_id)
        agent.state_json()


def test_stale_or_repeated_run_task_is_refused() -> None:
    """RunTask copies sent before the latest (re-)admission, or for a task that already ran
    here, must not start anything: the master may have reported the task lost."""
    agent = make_agent()
    feed(agent, MasterConnected(), 0.0)
    recv(agent, AgentRegistered("A1", "M1", HB, epoch=7.0), 0.5)
    launches = lambda out: [e for e in out if isinstance(e, LaunchTask)]  # noqa: E731
    assert not launches(recv(agent, RunTask(FW, task("t1"), epoch=6.0), 1.0))
    assert launches(recv(agent, RunTask(FW, task("t1"), epoch=7.0), 1.0))
    feed(agent, TaskLaunched("t1", 4242), 1.1)
    feed(agent, TaskExited("t1", 0, None), 1.2)
    ack_all(agent, "t1", 1.3)
    assert "t1" not in agent.tasks()
    assert not launches(recv(agent, RunTask(FW, task("t1"), epoch=7.0), 2.0))  # a late copy


def test_not_leader_reply_while_registering_redetects_at_once() -> None:
    agent = make_agent()
    feed(agent, MasterConnected(), 0.0)
    effects = recv(agent, ProtocolError("not leader, leader is M2 at tcp://h:1",
                                        "RegisterAgent"), 0.1)
    assert any(isinstance(e, Redetect) for e in effects)
    assert agent.state == DISCONNECTED
    # an unrelated rejection while registering is only logged
    feed(agent, MasterConnected(), 0.2)
    assert [type(e) for e in recv(agent, ProtocolError("bad field", "RegisterAgent"), 0.3)] \
        == [Log]


def test_default_user_for_a_task_and_framework_with_none() -> None:
    agent = registered_agent(default_user="daemon")
    [launch] = recv(agent, RunTask(FW, task("t1")), 1.0)
    assert launch.user == "daemon"
    fw = FrameworkInfo(name="fw", id="F1", user="alice")
    [launch] = recv(agent, RunTask(fw, task("t2", resources=Resources.parse("cpus:0.5"))), 1.0)
    assert launch.user == "alice"
