"""The streamed /master/state (views_stream) is the same document as views.state_json, and
/master/tasks pages through every task."""
from __future__ import annotations

import json

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_master import views, views_stream

from .harness import Harness, agent_info, command_task


def _busy_cluster() -> tuple[Harness, str]:
    """Tasks in many shapes: labels, a Docker container, health, an unreachable agent's task,
    a completed one, a torn-down framework; several chunks' worth of tasks."""
    h = Harness()
    a1 = h.register_agent(b"a1", agent_info("h1", "cpus:64;mem:65536;ports:[31000-31099]"))
    h.register_agent(b"a2", agent_info("h\"2", "cpus:2;mem:1024;cpus(web):1"))
    fid = h.subscribe(b"fw1", user="alice", capabilities=("PARTITION_AWARE",))
    offer = {o.agent_id: o for o in h.offers()}[a1]
    docker = m.ContainerInfo("DOCKER", m.DockerInfo("busybox", "BRIDGE"))
    tasks = [command_task(f"t{i:04d}", a1, "cpus:0.01;mem:1", labels={"k": f"v\u00e9{i}"} if i % 3
                          else {}) for i in range(1200)]
    tasks.append(command_task("dock", a1, "cpus:1;mem:64;ports:[31005-31005]", container=docker))
    h.launch(b"fw1", fid, offer, tasks, refuse_seconds=60)
    for i, (state, healthy) in enumerate([(ts.RUNNING, True), (ts.RUNNING, None),
                                          (ts.FINISHED, None), (ts.STARTING, False)]):
        h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus(f"t{i:04d}", state, healthy=healthy,
                                                       uuid=bytes([i]) * 16)))
    h.recv(b"fw1", m.Acknowledge(fid, a1, "t0002", bytes([2]) * 16))  # completed
    other = h.subscribe(b"fw2", name="gone")
    h.recv(b"fw2", m.Teardown(other))
    return h, fid


def _streamed(pieces) -> dict:
    return json.loads("".join(pieces))


def test_streamed_state_equals_state_json() -> None:
    h, fid = _busy_cluster()
    flags = {"port": "5050", "quote\"d": "x"}
    want = json.loads(json.dumps(views.state_json(h.master, h.now, flags)))
    got = _streamed(views_stream.state_pieces(h.master, h.now, flags))
    assert got == want
    (fw,) = got["frameworks"]
    assert len(fw["tasks"]) == 1200 and len(fw["completed_tasks"]) == 1
    assert got["completed_frameworks"][0]["name"] == "gone"
    dock = next(t for t in fw["tasks"] if t["id"] == "dock")
    assert dock["container"] == {"type": "DOCKER", "docker": {"image": "busybox",
                                                              "network": "BRIDGE"}}
    healthy = {t["id"]: t["statuses"][-1].get("healthy") for t in fw["tasks"]}
    assert healthy["t0000"] is True and healthy["t0003"] is False and healthy["t0001"] is None


def test_streamed_state_survives_changes_between_pieces() -> None:
    """The core keeps running while a request is served: a framework's task list is the
    snapshot taken when the stream reaches it, each task rendered as it is when reached."""
    h, fid = _busy_cluster()
    pieces = views_stream.state_pieces(h.master, h.now, {})
    out: list[str] = []
    while not out or not out[-1].endswith('"tasks":'):
        out.append(next(pieces))
    out += [next(pieces), next(pieces)]  # "[" and the first chunk of tasks
    task = h.master.frameworks[fid].tasks["t1100"]
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1100", ts.FAILED, uuid=b"x" * 16)))
    h.recv(b"fw1", m.Acknowledge(fid, task.agent_id, "t1100", b"x" * 16))
    assert "t1100" not in h.master.frameworks[fid].tasks
    doc = json.loads("".join(out + list(pieces)))
    (fw,) = doc["frameworks"]
    assert len(fw["tasks"]) == 1200
    assert next(t for t in fw["tasks"] if t["id"] == "t1100")["state"] == ts.FAILED


def test_tasks_endpoint_pages_in_order() -> None:
    h, _ = _busy_cluster()
    first = _streamed(views_stream.tasks_pieces(h.master, 100, 0, False))["tasks"]
    assert [t["id"] for t in first[:3]] == ["dock", "t0000", "t0001"] and len(first) == 100
    last = _streamed(views_stream.tasks_pieces(h.master, 5, 1199, False))["tasks"]
    assert [t["id"] for t in last] == ["t1198", "t1199"]
    desc = _streamed(views_stream.tasks_pieces(h.master, 2, 0, True))["tasks"]
    assert [t["id"] for t in desc] == ["t1199", "t1198"]
    assert _streamed(views_stream.tasks_pieces(h.master, 0, 0, False)) == {"tasks": []}
