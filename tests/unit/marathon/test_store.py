"""SQLiteStore buffers writes until commit; a failed write goes back under newer ones; the
service commits before the API answers and before a burst's acks go out."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

from marathon.server import MarathonServer
from marathon.store import SQLiteStore
from mesos_common import messages as m
from mesos_common.resources import Resources
from tests.unit.marathon.conftest import Api, FakeDriver


def committed(path, kind: str) -> set[str]:
    db = sqlite3.connect(str(path))
    try:
        return {k for (k,) in db.execute("SELECT key FROM docs WHERE kind = ?", (kind,))}
    finally:
        db.close()


def test_writes_are_buffered_until_commit_and_the_last_write_of_a_key_wins(tmp_path):
    path = tmp_path / "m.db"
    s = SQLiteStore(path)
    s.put("task", "t1", {"n": 1})
    s.put("task", "t1", {"n": 2})
    s.put("task", "t2", {"n": 1})
    s.delete("task", "t2")
    assert committed(path, "task") == set()
    assert s.load("task") == {"t1": {"n": 2}}  # its own writes, pending ones included
    s.commit()
    assert committed(path, "task") == {"t1"}
    s.close()
    assert SQLiteStore(path).load("task") == {"t1": {"n": 2}}


def test_a_failed_write_goes_back_under_newer_writes(tmp_path, monkeypatch):
    s = SQLiteStore(tmp_path / "m.db")
    s.put("task", "t1", {"n": 1})
    s.put("task", "t2", {"n": 1})
    batch = s.take()
    s.put("task", "t1", {"n": 2})  # newer than the batch

    def disk_error(batch: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(s, "_write", disk_error)
    with pytest.raises(sqlite3.OperationalError):
        s.write(batch)
    monkeypatch.undo()
    s.commit()
    assert s.load("task") == {"t1": {"n": 2}, "t2": {"n": 1}}
    s.close()


def test_the_api_answers_a_change_only_once_it_is_committed(tmp_path):
    path = tmp_path / "m.db"
    svc = MarathonServer(SQLiteStore(path))
    svc.driver = FakeDriver()
    svc.deferred = True  # as the daemon runs it: commits in a worker thread
    api = Api(svc)
    try:
        status, _, _ = api.post("/v2/apps", {"id": "/a", "cmd": "sleep 1", "instances": 2,
                                             "cpus": 0.1, "mem": 16})
        assert status == 201
        assert committed(path, "app") == {"/a"} and committed(path, "deployment")
    finally:
        api.close()


def test_a_burst_of_updates_is_committed_by_batch_done(tmp_path):
    path = tmp_path / "m.db"
    svc = MarathonServer(SQLiteStore(path))
    svc.driver = FakeDriver()
    svc.create_app({"id": "/a", "cmd": "sleep 1", "instances": 3, "cpus": 0.1, "mem": 16},
                   False)
    svc.resource_offers(svc.driver, [m.Offer("o1", "F", "A1", "h1", Resources.parse(
        "cpus:4;mem:1024;disk:100;ports:[31000-31100]"))])
    svc.deferred = True
    ids = sorted(svc.state.tasks)
    for tid in ids:
        svc.status_update(svc.driver, m.TaskStatus(tid, "TASK_RUNNING", agent_id="A1"))
    stored = SQLiteStore(path).load("task")
    assert {stored[t]["state"] for t in ids} == {"TASK_STAGING"}  # not yet durable
    asyncio.run(svc.batch_done(svc.driver))
    stored = SQLiteStore(path).load("task")
    assert {stored[t]["state"] for t in ids} == {"TASK_RUNNING"}


def test_task_records_store_every_field_but_their_soft_state():
    import attrs

    from marathon.tracker import Health, TaskRecord
    t = TaskRecord(id="t", app_id="/a", version="v", agent_id="A", host="h", ports=[1],
                   staged_at=1.0, state="TASK_RUNNING", started_at=2.0, killing=True,
                   health=[Health(alive=True)], unreachable_since=3.0, config_version="c",
                   unreachable_inactive=True, mesos_healthy=False,
                   mesos_health=Health(alive=False))
    d = t.to_store()
    assert set(d) == {f.name for f in attrs.fields(TaskRecord)} - {"tally"}
    back = TaskRecord.from_store(d)
    assert back == attrs.evolve(t, health=[]) and back.mesos_health is None
