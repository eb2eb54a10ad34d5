"""Custom executors in the agent core: launch, subscribe, updates and acknowledgements,
registration timeout, exit, shutdown, recovery. Pure: events in, exact effects out."""
from __future__ import annotations

import signal

from mesos_agent.core_executors import REGISTRATION_TIMER, executor_key
from mesos_agent.events import (
    EndExecutorStream,
    ExecutorDisconnected,
    ExecutorMessage,
    ExecutorSubscribe,
    ExecutorSubscribed,
    ExecutorUpdate,
    KillProcess,
    LaunchTask,
    ResizeContainer,
    TaskExited,
    TaskLaunched,
    ToExecutor,
)
from mesos_agent.recovery import (
    RUNNING_FOUND,
    Checkpoint,
    Found,
    Recovered,
    RecoveredTask,
    TaskCheckpoint,
)
from mesos_common import task_states as ts
from mesos_common.effects import Send, SetTimer, TimerFired
from mesos_common.messages import (
    CommandInfo,
    ExecutorExited,
    ExecutorInfo,
    FrameworkInfo,
    FrameworkMessage,
    KillTask,
    RunTask,
    ShutdownExecutor,
    StatusUpdate,
    StatusUpdateAck,
    TaskInfo,
    TaskStatus,
)
from mesos_common.resources import Resources
from tests.unit.agent.test_core import feed, make_agent, recv, registered_agent, updates

FW = FrameworkInfo(name="fw", id="F1", checkpoint=True)
EXEC = ExecutorInfo("E1", CommandInfo("run-executor"), Resources.parse("cpus:0.5;mem:32"))


def etask(tid: str) -> TaskInfo:
    return TaskInfo(name=tid, task_id=tid, agent_id="A1", resources=Resources.parse("cpus:0.5"),
                    executor=EXEC, data=b"payload")


def to_executor(effects: list) -> list:
    return [e.msg for e in effects if isinstance(e, ToExecutor)]


def launched_executor(agent, tasks=("t1",)):
    out = recv(agent, RunTask(FW, etask(tasks[0])), 1.0)
    [launch] = [e for e in out if isinstance(e, LaunchTask)]
    for tid in tasks[1:]:
        assert not [e for e in recv(agent, RunTask(FW, etask(tid)), 1.0)
                    if isinstance(e, LaunchTask)]  # one executor for all
    return launch


def test_the_first_task_starts_the_executor_with_the_mesos_environment() -> None:
    agent = registered_agent()
    launch = launched_executor(agent, ("t1", "t2"))
    key = launch.task.task_id
    assert key.startswith("executor.E1.")
    assert "/executors/E1/runs/" in launch.sandbox
    env = launch.task.command.environment
    assert env["MESOS_AGENT_ENDPOINT"] == "127.0.0.1:5051"
    assert (env["MESOS_FRAMEWORK_ID"], env["MESOS_EXECUTOR_ID"]) == ("F1", "E1")
    assert env["MESOS_SANDBOX"] == env["MESOS_DIRECTORY"] == launch.sandbox
    assert env["MESOS_CHECKPOINT"] == "1" and env["MESOS_HTTP_COMMAND_EXECUTOR"] == "0"
    # the container holds the executor's resources and its first task's
    assert launch.task.resources == Resources.parse("cpus:1;mem:32")
    out = feed(agent, TaskLaunched(key, 42), 1.5)
    assert SetTimer((REGISTRATION_TIMER, key), 61.5) in out
    # t2 joined while it started: the container is raised to the executor and both tasks
    assert ResizeContainer(key, Resources.parse("cpus:1.5;mem:32")) in out
    # the tasks wait for the subscription, then are launched in order
    out = feed(agent, ExecutorSubscribe("F1", "E1"), 2.0)
    msgs = to_executor(out)
    assert isinstance(msgs[0], ExecutorSubscribed) and msgs[0].executor.executor_id == "E1"
    assert [m.task.task_id for m in msgs[1:]] == ["t1", "t2"]
    # a third task goes straight to the subscribed executor, whose container grows for it
    out = recv(agent, RunTask(FW, etask("t3")), 2.5)
    assert [m.task.task_id for m in to_executor(out)] == ["t3"]
    assert not [e for e in out if isinstance(e, LaunchTask)]
    assert ResizeContainer(key, Resources.parse("cpus:2;mem:32")) in out


def test_updates_keep_the_executor_uuid_and_the_ack_goes_back_to_it() -> None:
    agent = registered_agent()
    key = launched_executor(agent).task.task_id
    feed(agent, TaskLaunched(key, 42), 1.5)
    feed(agent, ExecutorSubscribe("F1", "E1"), 2.0)
    uuid = b"u" * 16
    out = feed(agent, ExecutorUpdate("F1", "E1", TaskStatus("t1", ts.RUNNING, uuid=uuid,
                                                            data=b"d")), 3.0)
    [sent] = [e.msg for e in out if isinstance(e, Send) and isinstance(e.msg, StatusUpdate)]
    assert (sent.status.uuid, sent.status.data, sent.status.executor_id) == (uuid, b"d", "E1")
    assert sent.status.source == "SOURCE_EXECUTOR"
    out = recv(agent, StatusUpdateAck("F1", "A1", "t1", uuid), 3.1)
    assert to_executor(out) == [StatusUpdateAck("F1", "A1", "t1", uuid)]
    # an illegal transition or a task that is not its own is dropped
    assert not updates(feed(agent, ExecutorUpdate("F1", "E1", TaskStatus("t1", ts.STAGING)),
                            3.2))
    assert not updates(feed(agent, ExecutorUpdate("F1", "E1", TaskStatus("zz", ts.RUNNING)),
                            3.3))
    # kill goes to the executor, messages both ways
    assert to_executor(recv(agent, KillTask("F1", "t1"), 4.0)) == [KillTask("F1", "t1", 3.0)]
    out = recv(agent, FrameworkMessage("F1", "A1", "E1", b"hi"), 4.1)
    assert to_executor(out) == [FrameworkMessage("F1", "A1", "E1", b"hi")]
    out = feed(agent, ExecutorMessage("F1", "E1", b"yo"), 4.2)
    assert [e.msg for e in out if isinstance(e, Send)] == [FrameworkMessage("F1", "A1", "E1",
                                                                            b"yo")]


def test_an_executor_that_exits_fails_its_tasks_and_the_master_hears() -> None:
    agent = registered_agent()
    key = launched_executor(agent, ("t1", "t2")).task.task_id
    feed(agent, TaskLaunched(key, 42), 1.5)
    feed(agent, ExecutorSubscribe("F1", "E1"), 2.0)
    feed(agent, ExecutorUpdate("F1", "E1", TaskStatus("t1", ts.RUNNING, uuid=b"1" * 16)), 2.1)
    out = feed(agent, TaskExited(key, None, signal.SIGKILL), 3.0)
    assert EndExecutorStream("F1", "E1") in out
    assert Send(None, ExecutorExited("F1", "A1", "E1", signal.SIGKILL)) in out
    failed = [e.msg.status for e in out if isinstance(e, Send)
              and isinstance(e.msg, StatusUpdate)]
    # t1's RUNNING is still unacknowledged: its FAILED waits behind it
    assert [(s.task_id, s.state, s.reason) for s in failed] == [
        ("t2", ts.FAILED, "REASON_EXECUTOR_TERMINATED")]
    assert agent.executors() == []


def test_an_executor_that_never_subscribes_is_killed_and_its_tasks_fail() -> None:
    agent = registered_agent(executor_registration_timeout=5.0)
    key = launched_executor(agent).task.task_id
    feed(agent, TaskLaunched(key, 42), 1.5)
    out = feed(agent, TimerFired((REGISTRATION_TIMER, key)), 6.5)
    assert KillProcess(key, 0.0) in out
    assert [(t, s) for t, s in updates(out)] == [("t1", ts.FAILED)]
    [status] = [e.msg.status for e in out if isinstance(e, Send)]
    assert status.reason == "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
    assert "E1" in (agent.may_subscribe("F1", "E1") or "")
    out = feed(agent, TaskExited(key, None, signal.SIGKILL), 7.0)
    assert Send(None, ExecutorExited("F1", "A1", "E1", signal.SIGKILL)) in out


def test_a_non_checkpointing_executor_that_disconnects_is_shut_down() -> None:
    agent = registered_agent()
    fw = FrameworkInfo(name="fw", id="F1")
    out = recv(agent, RunTask(fw, etask("t1")), 1.0)
    [launch] = [e for e in out if isinstance(e, LaunchTask)]
    assert launch.task.command is not None
    assert "MESOS_CHECKPOINT" not in launch.task.command.environment
    key = launch.task.task_id
    feed(agent, TaskLaunched(key, 42), 1.5)
    feed(agent, ExecutorSubscribe("F1", "E1"), 2.0)
    out = feed(agent, ExecutorDisconnected("F1", "E1"), 3.0)
    assert KillProcess(key, 5.0) in out
    assert ShutdownExecutor("F1", "A1", "E1") in to_executor(out)
    out = feed(agent, TaskExited(key, 0, None), 4.0)
    assert updates(out) == [("t1", ts.KILLED)]


def test_a_checkpointed_executor_is_recovered_and_resubscribes() -> None:
    agent = registered_agent(checkpoint=True)
    out = recv(agent, RunTask(FW, etask("t1")), 1.0)
    key = [e for e in out if isinstance(e, LaunchTask)][0].task.task_id
    cps: dict[str, TaskCheckpoint] = {}
    for event in (TaskLaunched(key, 42, "42:1"), ExecutorSubscribe("F1", "E1"),
                  ExecutorUpdate("F1", "E1", TaskStatus("t1", ts.RUNNING, uuid=b"1" * 16))):
        out = feed(agent, event, 2.0)
        cps.update({c.record.task.task_id: c.record for c in out
                    if isinstance(c, Checkpoint) and isinstance(c.record, TaskCheckpoint)})
    ex_cp = cps[key]
    assert (ex_cp.pid, ex_cp.container) == (42, "42:1")
    again = make_agent(executor_registration_timeout=9.0)
    out = feed(again, Recovered("A1", (RecoveredTask(ex_cp, Found(RUNNING_FOUND, pid=42)),
                                       RecoveredTask(cps["t1"], Found("missing")))), 10.0)
    assert SetTimer((REGISTRATION_TIMER, key), 19.0) in out
    assert again.containers() == {key}
    assert again.may_subscribe("F1", "E1") is None
    assert again.tasks()["t1"].state == ts.RUNNING
    assert key == executor_key("E1", ex_cp.run_id)


def test_a_re_subscribing_executor_gets_the_tasks_it_does_not_hold_again() -> None:
    agent = registered_agent()
    key = launched_executor(agent, ("t1", "t2")).task.task_id
    feed(agent, TaskLaunched(key, 42), 1.5)
    assert [m.task.task_id for m in to_executor(feed(agent, ExecutorSubscribe("F1", "E1"), 2.0))
            if isinstance(m, RunTask)] == ["t1", "t2"]
    # the stream broke; the executor comes back holding t1 only (t2's LAUNCH was lost)
    feed(agent, ExecutorDisconnected("F1", "E1"), 3.0)
    out = feed(agent, ExecutorSubscribe("F1", "E1", ("t1",)), 3.5)
    assert [m.task.task_id for m in to_executor(out) if isinstance(m, RunTask)] == ["t2"]
