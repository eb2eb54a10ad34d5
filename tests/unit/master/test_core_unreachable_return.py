"""An unreachable agent comes back: the tasks the master held unreachable there and the agent
does not report are gone (TASK_GONE), not unreachable forever; reported ones are adopted."""
from __future__ import annotations

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts

from .harness import Harness, agent_info, command_task, only, persisted, sent, updates
from .test_core_agents import _advance_with_framework_heartbeats


def _back_from_a_partition(report: bool):
    h = Harness(agent_ping_timeout=10.0, max_agent_ping_timeouts=1, heartbeat_interval=10.0,
                auto_persist=True)
    s1 = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", capabilities=("PARTITION_AWARE",))
    h.launch(b"fw1", fid, only(h.offers()), [command_task("t1", s1)])
    info = h.master.frameworks[fid].tasks["t1"].info
    fw_info = h.master.frameworks[fid].info
    _advance_with_framework_heartbeats(h, 25.0, peers=(b"fw1",))
    assert "t1" in h.master.frameworks[fid].unreachable_tasks
    tasks = (m.TaskRecord(fid, info, ts.RUNNING),) if report else ()
    out = h.recv(b"a1", m.ReregisterAgent(s1, agent_info(), tasks=tasks, frameworks=(fw_info,)))
    out += h.handle(fx.PersistDone(only(persisted(out))))
    assert only(sent(out, m.AgentReregistered, to=b"a1")).agent_id == s1
    return h, fid, s1, out


def test_an_unreported_unreachable_task_is_gone_when_its_agent_returns() -> None:
    h, fid, s1, out = _back_from_a_partition(report=False)
    gone = only(updates(out, to=b"fw1"))
    assert (gone.task_id, gone.state, gone.agent_id) == ("t1", ts.GONE, s1)
    fw = h.master.frameworks[fid]
    assert "t1" not in fw.unreachable_tasks and "t1" not in fw.tasks
    again = only(updates(h.recv(b"fw1", m.Reconcile(fid, (m.ReconcileTask("t1", s1),))),
                         to=b"fw1"))
    assert again.state == ts.GONE
    h.master.check_invariants()


def test_a_reported_unreachable_task_is_adopted_when_its_agent_returns() -> None:
    h, fid, s1, out = _back_from_a_partition(report=True)
    assert not updates(out, to=b"fw1")
    fw = h.master.frameworks[fid]
    assert fw.tasks["t1"].state == ts.RUNNING and "t1" not in fw.unreachable_tasks
    h.master.check_invariants()
