"""Health checks run by the real agent: an HTTP check on a real server that starts failing,
and COMMAND/TCP checks."""
from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

from mesos_common import task_states as ts
from mesos_common.messages import CommandInfo, HealthCheck, RunTask, TaskInfo
from mesos_common.resources import Resources
from tests.integration.test_agent_process import (
    FW,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
    task_json,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(master: FakeMaster, task_id: str, command: str, check: HealthCheck) -> None:
    master.send(RunTask(FW, TaskInfo(name=task_id, task_id=task_id, agent_id="A1",
                                     resources=Resources.parse("cpus:0.2;mem:128"),
                                     command=CommandInfo(command), health_check=check,
                                     kill_grace_period=1.0)))


def test_http_check_turns_unhealthy_then_kills(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess]) -> None:
    agent = agent_factory()
    register(master, agent)
    port = free_port()
    check = HealthCheck("HTTP", port=port, path="/ok", delay_seconds=0, interval_seconds=0.3,
                        timeout_seconds=2, consecutive_failures=2, grace_period_seconds=30)
    _run(master, "web", f"echo fine > ok; exec {sys.executable} -m http.server {port} "
                        "--bind 127.0.0.1", check)
    starting, running = expect_states(master, "web", [ts.STARTING, ts.RUNNING])
    assert running.healthy is None
    # failures while the server starts are in the grace period; then the first success
    healthy = master.update("web")
    master.ack(healthy)
    assert (healthy.state, healthy.healthy) == (ts.RUNNING, True)
    assert healthy.reason == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
    assert task_json(agent, "web")["healthy"] is True

    Path(task_json(agent, "web")["directory"], "ok").unlink()  # now it answers 404
    unhealthy = master.update("web")
    master.ack(unhealthy)
    assert (unhealthy.state, unhealthy.healthy) == (ts.RUNNING, False)
    assert "returned 404" in unhealthy.message
    [killed] = expect_states(master, "web", [ts.KILLED])
    assert killed.healthy is False
    assert "2 consecutive failed health checks" in killed.message
    assert agent.stop() == 0


def test_command_and_tcp_checks(master: FakeMaster,
                                agent_factory: Callable[..., AgentProcess]) -> None:
    agent = agent_factory()
    register(master, agent)
    cmd = HealthCheck("COMMAND", command=CommandInfo("test -f $MESOS_SANDBOX/alive"),
                      delay_seconds=0, interval_seconds=0.2, timeout_seconds=2,
                      consecutive_failures=3, grace_period_seconds=30)  # until `touch` ran
    _run(master, "cmd", "touch alive; sleep 300", cmd)
    expect_states(master, "cmd", [ts.STARTING, ts.RUNNING])
    st = master.update("cmd")
    master.ack(st)
    assert (st.state, st.healthy) == (ts.RUNNING, True)

    tcp = HealthCheck("TCP", port=free_port(), delay_seconds=0, interval_seconds=0.2,
                      timeout_seconds=1, consecutive_failures=2, grace_period_seconds=0)
    _run(master, "tcp", "sleep 300", tcp)  # nothing listens: unhealthy, then killed
    expect_states(master, "tcp", [ts.STARTING, ts.RUNNING])
    st = master.update("tcp")
    master.ack(st)
    assert (st.state, st.healthy) == (ts.RUNNING, False)
    [killed] = expect_states(master, "tcp", [ts.KILLED])
    assert killed.healthy is False
    assert agent.stop() == 0
