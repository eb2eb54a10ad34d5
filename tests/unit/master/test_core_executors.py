"""Master core: custom executors' resources, framework messages, executor loss."""
from __future__ import annotations

import json

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.resources import Resources
from mesos_master import views, views_stream
from mesos_master.api_v1 import operator_views

from .harness import Harness, only, sent, updates

R = Resources.parse
EXEC = m.ExecutorInfo("E1", m.CommandInfo("run-executor"), R("cpus:1;mem:128"))


def etask(task_id: str, agent_id: str, res: str = "cpus:1;mem:128") -> m.TaskInfo:
    return m.TaskInfo(name=task_id, task_id=task_id, agent_id=agent_id, resources=R(res),
                      executor=EXEC)


def test_an_executor_s_resources_count_once_per_agent_until_it_exits() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    out = h.launch(b"fw1", fid, only(h.offers()), [etask("t1", aid), etask("t2", aid)],
                   refuse_seconds=0)
    runs = sent(out, m.RunTask, to=b"a1")
    assert [r.task.executor.framework_id for r in runs] == [fid, fid]  # filled in
    agent = h.master.agents[aid]
    assert agent.used == R("cpus:3;mem:384")  # two tasks and one executor
    [listed] = operator_views.get_executors(h.master)["executors"]
    assert listed["executor_info"]["executor_id"] == {"value": "E1"}
    assert listed["agent_id"] == {"value": aid}
    # a later task on the running executor needs only its own resources
    h.launch(b"fw1", fid, only(h.offers()), [etask("t3", aid, "cpus:1;mem:128")],
             refuse_seconds=0)
    assert agent.used == R("cpus:4;mem:512")
    for t, u in (("t1", b"1"), ("t2", b"2"), ("t3", b"3")):
        h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus(t, ts.FAILED, uuid=u * 16)))
    assert agent.used == R("cpus:1;mem:128")  # the executor still runs
    out = h.recv(b"a1", m.ExecutorExited(fid, aid, "E1", 9))
    assert only(sent(out, m.ExecutorLost, to=b"fw1")) == m.ExecutorLost(aid, "E1", 9)
    assert agent.used == R("") and agent.executors == {}


def test_a_task_and_its_new_executor_must_fit_the_offer_together() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    out = h.launch(b"fw1", fid, only(h.offers()), [etask("big", aid, "cpus:3.5;mem:128")])
    [status] = updates(out, to=b"fw1")
    assert status.state == ts.ERROR and status.message.startswith("Total resources")
    assert not sent(out, m.RunTask)


def test_framework_messages_are_relayed_both_ways() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    msg = m.FrameworkMessage(fid, aid, "E1", b"ping")
    assert only(sent(h.recv(b"fw1", msg), m.FrameworkMessage, to=b"a1")) == msg
    back = m.FrameworkMessage(fid, aid, "E1", b"pong")
    assert only(sent(h.recv(b"a1", back), m.FrameworkMessage, to=b"fw1")) == back
    # an agent may not speak for another agent
    assert not sent(h.recv(b"a1", m.FrameworkMessage(fid, "other", "E1", b"x")),
                    m.FrameworkMessage)
    stop = m.ShutdownExecutor(fid, aid, "E1")
    assert only(sent(h.recv(b"fw1", stop), m.ShutdownExecutor, to=b"a1")) == stop


def test_a_removed_framework_s_executors_leave_the_books() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    h.launch(b"fw1", fid, only(h.offers()), [etask("t1", aid)])
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.FINISHED, uuid=b"1" * 16)))
    h.recv(b"fw1", m.Acknowledge(fid, aid, "t1", b"1" * 16))  # only the executor is left
    out = h.recv(b"fw1", m.Teardown(fid))
    assert only(sent(out, m.ShutdownFramework, to=b"a1")) == m.ShutdownFramework(fid)
    assert h.master.agents[aid].executors == {} and h.master.agents[aid].used == R("")


def test_state_lists_a_framework_s_executors_with_their_agent() -> None:
    """/master/state (both renderings) lists custom executors under their framework."""
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    other = h.subscribe(b"fw2", name="other")
    h.launch(b"fw1", fid, only(h.offers()), [etask("t1", aid)], refuse_seconds=0)
    state = views.state_json(h.master, h.now, {})
    streamed = json.loads("".join(views_stream.state_pieces(h.master, h.now, {})))
    assert streamed == json.loads(json.dumps(state))
    by_id = {f["id"]: f for f in state["frameworks"]}
    assert by_id[fid]["executors"] == [{
        "executor_id": "E1", "name": "", "framework_id": fid,
        "command": {"value": "run-executor"},
        "resources": {"cpus": 1.0, "gpus": 0.0, "mem": 128.0, "disk": 0.0},
        "slave_id": aid}]
    assert by_id[other]["executors"] == []
