"""The core's health-check rules (pure): start/stop effects, grace period, flips, kill."""
from __future__ import annotations

from mesos_agent.events import (
    HealthResult,
    KillProcess,
    StartHealthCheck,
    StopHealthCheck,
    TaskExited,
    TaskLaunched,
)
from mesos_common import task_states as ts
from mesos_common.effects import Send
from mesos_common.messages import HealthCheck, RunTask, StatusUpdate
from tests.unit.agent.test_core import FW, ack_all, feed, recv, registered_agent, task

CHECK = HealthCheck("TCP", port=1, consecutive_failures=2, grace_period_seconds=10)


def sent(effects: list) -> list[tuple[str, bool | None]]:
    return [(e.msg.status.state, e.msg.status.healthy) for e in effects
            if isinstance(e, Send) and isinstance(e.msg, StatusUpdate)]


def test_grace_period_flip_and_kill_after_consecutive_failures() -> None:
    agent = registered_agent()
    recv(agent, RunTask(FW, task("t1", health_check=CHECK)), 1.0)
    effects = feed(agent, TaskLaunched("t1", 42), 2.0)
    assert StartHealthCheck("t1", CHECK, agent.tasks()["t1"].sandbox, "nobody") in effects
    ack_all(agent, "t1", 2.0)
    assert sent(feed(agent, HealthResult("t1", False, "refused"), 5.0)) == []  # grace
    effects = feed(agent, HealthResult("t1", True), 6.0)
    assert sent(effects) == [(ts.RUNNING, True)]
    ack_all(agent, "t1", 6.0)
    assert feed(agent, HealthResult("t1", True), 7.0) == []  # no change, no update
    effects = feed(agent, HealthResult("t1", False, "refused"), 8.0)
    assert sent(effects) == [(ts.RUNNING, False)]
    ack_all(agent, "t1", 8.0)
    effects = feed(agent, HealthResult("t1", False, "refused"), 9.0)
    assert StopHealthCheck("t1") in effects and KillProcess("t1", 3.0) in effects
    assert feed(agent, HealthResult("t1", False, "late"), 9.5) == []  # being killed
    effects = feed(agent, TaskExited("t1", None, 15), 10.0)
    assert sent(effects) == [(ts.KILLED, False)]


def test_failures_after_the_grace_period_count_without_a_success() -> None:
    agent = registered_agent()
    recv(agent, RunTask(FW, task("t1", health_check=CHECK)), 1.0)
    feed(agent, TaskLaunched("t1", 42), 2.0)
    ack_all(agent, "t1", 2.0)
    assert sent(feed(agent, HealthResult("t1", False, "x"), 13.0)) == [(ts.RUNNING, False)]


def test_no_check_no_probe() -> None:
    agent = registered_agent()
    recv(agent, RunTask(FW, task("t1")), 1.0)
    effects = feed(agent, TaskLaunched("t1", 42), 2.0)
    assert not any(isinstance(e, StartHealthCheck) for e in effects)
    assert feed(agent, HealthResult("t1", False, "x"), 3.0) == []
