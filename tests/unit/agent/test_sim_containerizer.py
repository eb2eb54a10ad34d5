"""SimContainerizer: tasks run for a set time, until finished by a test, or until killed."""
from __future__ import annotations

import asyncio
import signal

import pytest

from mesos_agent.containerizer.base import LaunchError
from mesos_agent.containerizer.sim import SimContainerizer
from mesos_common.messages import TaskInfo
from mesos_common.resources import Resources


def task(tid: str, **labels: str) -> TaskInfo:
    """Labels given as sim_duration=... become `sim.duration`."""
    return TaskInfo(name=tid, task_id=tid, agent_id="A1", resources=Resources.parse("cpus:1"),
                    labels={k.replace("sim_", "sim.", 1): v for k, v in labels.items()})


def test_sim_lifecycle() -> None:
    async def go() -> None:
        c = SimContainerizer()
        assert await c.launch("a", "F", task("a", sim_duration="0.01", sim_exit_code="3"), "/x")
        assert await c.wait("a") == (3, None)
        await c.launch("b", "F", task("b"), "/x")
        waiter = asyncio.ensure_future(c.wait("b"))
        await asyncio.sleep(0)
        c.finish("b", exit_code=0)
        assert await waiter == (0, None)
        await c.launch("k", "F", task("k"), "/x")
        await c.kill("k", 1.0)
        assert await c.wait("k") == (None, signal.SIGTERM)
        await c.launch("i", "F", task("i", sim_ignore_term="1"), "/x")
        await c.kill("i", 0.01)
        assert await c.wait("i") == (None, signal.SIGKILL)
        with pytest.raises(LaunchError, match="nope"):
            await c.launch("f", "F", task("f", sim_fail_launch="nope"), "/x")
        assert c.containers() == set() and c.launched == ["a", "b", "k", "i"]
    asyncio.run(go())
