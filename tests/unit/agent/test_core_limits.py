"""A task ended by its memory limit: TASK_FAILED with REASON_CONTAINER_LIMITATION_MEMORY, and
the containerizer's account of the limit and the use in the message when it has one."""
from __future__ import annotations

import signal

import pytest

from mesos_agent.events import TaskExited
from mesos_common import task_states as ts
from tests.unit.agent.test_core import registered_agent, running_task, feed


@pytest.mark.parametrize("detail,message", [
    ("", "Memory limit exceeded (Command terminated by signal SIGKILL)"),
    ("Memory limit exceeded: the container's memory limit is 16 MB, used 16 MB",
     "Memory limit exceeded: the container's memory limit is 16 MB, used 16 MB "
     "(Command terminated by signal SIGKILL)"),
])
def test_memory_limitation(detail: str, message: str) -> None:
    agent = registered_agent()
    running_task(agent)
    feed(agent, TaskExited("t1", None, signal.SIGKILL, "memory", detail), 3.0)
    head = agent.updates.head("t1")
    assert (head.state, head.reason) == (ts.FAILED, "REASON_CONTAINER_LIMITATION_MEMORY")
    assert head.message == message
