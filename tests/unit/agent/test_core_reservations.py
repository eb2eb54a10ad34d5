"""The agent core keeps the master's dynamic reservations: checkpointed with its id, in its
total (so a task of the role may use them), reported when it re-registers."""
from __future__ import annotations

from mesos_agent.events import LaunchTask, MasterConnected, Redetect
from mesos_agent.recovery import AgentIdRecord, Checkpoint, Recovered
from mesos_common.effects import Send
from mesos_common.messages import CheckpointResources, ReregisterAgent, RunTask, ShutdownAgent
from mesos_common.resources import Resources

from .test_core import FW, feed, make_agent, recv, registered_agent, task

WEB = Resources.parse("cpus(web):1;mem(web):256")


def test_checkpointed_reservations_count_in_the_total_and_are_reported() -> None:
    agent = registered_agent(checkpoint=True)
    out = recv(agent, CheckpointResources(WEB), 1.0)
    assert Checkpoint(AgentIdRecord("A1", WEB)) in out
    assert agent.total() == Resources.parse("cpus:1;mem:768;ports:[31000-31009]") + WEB
    out = recv(agent, RunTask(FW, task("t1", resources=WEB)), 1.1)
    assert [e.task.task_id for e in out if isinstance(e, LaunchTask)] == ["t1"]
    feed(agent, Redetect("master lost"), 2.0)
    out = feed(agent, MasterConnected(), 2.1)
    (msg,) = [e.msg for e in out if isinstance(e, Send)]
    assert isinstance(msg, ReregisterAgent) and msg.reserved == WEB
    assert msg.agent_info.resources == agent.total()
    assert agent.state_json()["reserved_resources"]["web"]["cpus"] == 1.0


def test_reservations_beyond_the_agent_are_ignored_and_a_fresh_agent_has_none() -> None:
    agent = registered_agent()
    out = recv(agent, CheckpointResources(Resources.parse("cpus(web):9")), 1.0)
    assert not [e for e in out if isinstance(e, Checkpoint)] and not agent.reserved
    recv(agent, CheckpointResources(WEB), 1.1)
    recv(agent, ShutdownAgent("marked gone"), 1.2)
    assert not agent.reserved


def test_recovery_restores_the_reservations() -> None:
    agent = make_agent()
    feed(agent, Recovered("A1", (), reserved=WEB), 0.1)
    out = feed(agent, MasterConnected(), 0.2)
    (msg,) = [e.msg for e in out if isinstance(e, Send)]
    assert msg.reserved == WEB and msg.agent_id == "A1"
