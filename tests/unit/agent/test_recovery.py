"""Checkpoint effects of the pure core, recovery from them, the atomic store, and the process
containerizer's refusal to adopt a reused pid."""
from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import attrs
import pytest

from mesos_agent.checkpoint import CheckpointStore, write_atomically
from mesos_agent.containerizer.process import ProcessContainerizer
from mesos_agent.events import KillProcess, MasterConnected, TaskExited, TaskLaunched
from mesos_agent.recovery import (
    CLEANUP,
    EXITED_FOUND,
    MISSING,
    RUNNING_FOUND,
    AgentIdRecord,
    Checkpoint,
    Found,
    Recovered,
    RecoveredTask,
    TaskCheckpoint,
    TaskRemoved,
)
from mesos_common import launch_log
from mesos_common import task_states as ts
from mesos_common.effects import Send
from mesos_common.launch_log import Launch, LaunchLog, start_time
from mesos_common.messages import (
    AgentRegistered,
    AgentReregistered,
    ReregisterAgent,
    RunTask,
    StatusUpdate,
)
from tests.unit.agent.test_core import (
    FW,
    HB,
    ack_all,
    feed,
    make_agent,
    recv,
    registered_agent,
    task,
    updates,
)


def checkpoints(effects: list) -> list:
    return [e.record for e in effects if isinstance(e, Checkpoint)]


def test_checkpoints_come_before_the_updates_they_record() -> None:
    agent = make_agent(checkpoint=True)
    feed(agent, MasterConnected(), 0.0)
    effects = recv(agent, AgentRegistered("A1", "M1", HB), 0.5)
    assert checkpoints(effects) == [AgentIdRecord("A1")]
    recv(agent, RunTask(FW, task("t1")), 1.0)
    effects = feed(agent, TaskLaunched("t1", 42, "42:1.5"), 2.0)
    first_send = next(i for i, e in enumerate(effects) if isinstance(e, Send))
    assert isinstance(effects[0], Checkpoint) and first_send >= 1
    [cp] = checkpoints(effects)
    assert (cp.state, cp.pid, cp.container) == (ts.RUNNING, 42, "42:1.5")
    assert [u.state for u in cp.updates] == [ts.STARTING, ts.RUNNING]
    feed(agent, TaskExited("t1", 0, None), 3.0)
    effects = ack_all(agent, "t1", 4.0)
    assert checkpoints(effects)[-1] == TaskRemoved("t1")


def _checkpoint_of_running_task() -> TaskCheckpoint:
    agent = registered_agent(checkpoint=True)
    recv(agent, RunTask(FW, task("t1")), 1.0)
    [cp] = checkpoints(feed(agent, TaskLaunched("t1", 42, "42:1.5"), 2.0))
    return cp


def test_recovered_running_task_is_reregistered_and_its_updates_resent() -> None:
    cp = _checkpoint_of_running_task()
    agent = make_agent(checkpoint=True)
    feed(agent, Recovered("A1", (RecoveredTask(cp, Found(RUNNING_FOUND, pid=42)),)), 1.0)
    effects = feed(agent, MasterConnected(), 1.0)
    [rereg] = [e.msg for e in effects if isinstance(e, Send)]
    assert isinstance(rereg, ReregisterAgent) and rereg.agent_id == "A1"
    assert [(r.task.task_id, r.state) for r in rereg.tasks] == [("t1", ts.RUNNING)]
    effects = recv(agent, AgentReregistered("A1", "M2", HB), 2.0)
    assert updates(effects) == [("t1", ts.STARTING)]  # the unacked head, same uuid
    sent = [e.msg.status for e in effects if isinstance(e, Send)
            and isinstance(e.msg, StatusUpdate)]
    assert sent[0].uuid == cp.updates[0].uuid
    assert agent.tasks()["t1"].pid == 42


@pytest.mark.parametrize("found,state", [(Found(EXITED_FOUND), ts.FAILED),
                                         (Found(EXITED_FOUND, exit_code=0), ts.FINISHED),
                                         (Found(MISSING), ts.FAILED)])
def test_task_gone_while_down_is_reported(found: Found, state: str) -> None:
    cp = _checkpoint_of_running_task()
    agent = make_agent(checkpoint=True)
    effects = feed(agent, Recovered("A1", (RecoveredTask(cp, found),)), 1.0)
    assert checkpoints(effects)[0].state == state
    assert agent.updates.pending("t1")[-1].state == state


def test_cleanup_kills_reattached_tasks() -> None:
    cp = _checkpoint_of_running_task()
    agent = make_agent(checkpoint=True)
    effects = feed(agent, Recovered("A1", (RecoveredTask(cp, Found(RUNNING_FOUND, 42)),),
                                    CLEANUP), 1.0)
    assert KillProcess("t1", 3.0) in effects
    feed(agent, TaskExited("t1", None, 15), 2.0)
    assert agent.updates.pending("t1")[-1].state == ts.KILLED


def test_store_round_trip_and_torn_writes(tmp_path: Path) -> None:
    cp = _checkpoint_of_running_task()
    store = CheckpointStore(str(tmp_path))
    store.write(AgentIdRecord("A1"))
    store.write(cp)
    Path(store.tasks_dir).mkdir(parents=True, exist_ok=True)
    Path(store.tasks_dir, "x.tmp").write_bytes(b"\x93torn")  # a crash mid-compaction
    Path(store.tasks_dir, "garbage").write_bytes(b"\x93nope")
    assert store.load() == (AgentIdRecord("A1"), [cp])
    assert not Path(store.tasks_dir, "x.tmp").exists()
    store.write(TaskRemoved("t1"))
    assert store.load() == (AgentIdRecord("A1"), [])
    write_atomically(str(tmp_path / "f"), b"new")
    assert (tmp_path / "f").read_bytes() == b"new"


def test_process_recover_refuses_a_reused_pid(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        started = start_time(proc.pid)
        assert started is not None
        c = ProcessContainerizer(str(tmp_path))
        cp = _checkpoint_of_running_task()
        run = asyncio.run
        wrong = run(c.recover("t1", "F1", cp.task, str(tmp_path / "box"),
                              f"{proc.pid}:{started - 100.0!r}"))
        assert wrong.what == EXITED_FOUND
        assert run(c.recover("t2", "F1", cp.task, str(tmp_path / "box2"), "")).what == MISSING

        async def adopt() -> tuple:
            found = await c.recover("t1", "F1", cp.task, str(tmp_path / "box"),
                                    f"{proc.pid}:{started!r}")
            await c.kill("t1", 0.0)
            return found, await c.wait("t1")
        found, result = run(adopt())
        assert found == Found(RUNNING_FOUND, pid=proc.pid) and result == (None, None)
    finally:
        proc.kill()
        proc.wait()


def test_group_commit_applies_records_in_order(tmp_path: Path) -> None:
    cp = _checkpoint_of_running_task()
    store = CheckpointStore(str(tmp_path))
    later = TaskCheckpoint(cp.framework, cp.task, cp.sandbox, cp.run_id, ts.FINISHED)
    store.write_batch([AgentIdRecord("A1"), cp, later])
    assert store.load() == (AgentIdRecord("A1"), [later])
    store.write_batch([TaskRemoved("t1"), cp])  # removed, then written again: present
    assert store.load() == (AgentIdRecord("A1"), [cp])
    store.write_batch([cp, TaskRemoved("t1")])
    assert store.load() == (AgentIdRecord("A1"), [])
    store.compact()
    assert store.load() == (AgentIdRecord("A1"), []) and Path(store.log_path).stat().st_size == 0
    assert list(Path(store.tasks_dir).iterdir()) == []


def test_log_torn_tail_is_dropped_and_cut_off(tmp_path: Path) -> None:
    """A crash mid-append leaves part of a frame: it was never reported durable, so it is
    dropped, and later frames go after the last whole one."""
    cp = _checkpoint_of_running_task()
    later = TaskCheckpoint(cp.framework, cp.task, cp.sandbox, cp.run_id, ts.FINISHED)
    CheckpointStore(str(tmp_path)).write_batch([AgentIdRecord("A1"), cp])
    log_path = Path(CheckpointStore(str(tmp_path)).log_path)
    whole = log_path.read_bytes()
    CheckpointStore(str(tmp_path)).write_batch([later])
    log_path.write_bytes(log_path.read_bytes()[:-5])  # the second frame is torn
    assert CheckpointStore(str(tmp_path)).load() == (AgentIdRecord("A1"), [cp])
    store = CheckpointStore(str(tmp_path))
    store.write_batch([TaskRemoved("t1")])
    assert log_path.read_bytes().startswith(whole)
    assert CheckpointStore(str(tmp_path)).load() == (AgentIdRecord("A1"), [])
    log_path.write_bytes(whole[:3] + b"X" + whole[4:])  # a corrupt first frame: nothing
    assert CheckpointStore(str(tmp_path)).load() == (None, [])


def test_log_compacts_into_files_past_its_limit(tmp_path: Path) -> None:
    """Past `compact_bytes` the log's content moves into the per-task files; the state read
    back is the same before and after, and from a fresh store."""
    cp = _checkpoint_of_running_task()
    store = CheckpointStore(str(tmp_path), compact_bytes=2 * len(_pack_len(cp)))
    others = [TaskCheckpoint(cp.framework, attrs.evolve(cp.task, task_id=f"t{i}"), cp.sandbox,
                             cp.run_id, ts.RUNNING) for i in range(2, 5)]
    store.write_batch([AgentIdRecord("A1"), cp])
    assert not Path(store.tasks_dir).exists()  # still only in the log
    store.write_batch(others)  # past the limit: compacted
    assert Path(store.log_path).stat().st_size == 0
    assert sorted(p.name for p in Path(store.tasks_dir).iterdir()) == ["t1", "t2", "t3", "t4"]
    store.write_batch([TaskRemoved("t3")])
    expected = (AgentIdRecord("A1"),
                sorted([cp, others[0], others[2]], key=lambda c: c.task.task_id))
    assert CheckpointStore(str(tmp_path)).load() == expected  # files + the log's removal
    store.compact()
    assert sorted(p.name for p in Path(store.tasks_dir).iterdir()) == ["t1", "t2", "t4"]
    assert CheckpointStore(str(tmp_path)).load() == expected


def test_task_snapshots_pack_byte_for_byte_as_the_plain_packing(tmp_path: Path) -> None:
    """The store packs a task's shared part once; every snapshot must still be exactly
    what packing it whole gives, whatever changed since the last one (or was forgotten)."""
    from mesos_agent.checkpoint import _pack, _TaskPacker
    packer = _TaskPacker()
    base = _checkpoint_of_running_task()
    same_fw = attrs.evolve(base.framework)  # equal, another object (a later RunTask's)
    status = base.updates[0] if base.updates else None
    variants = [
        attrs.evolve(base, state=ts.STAGING, statuses=(), pid=None, container="", updates=()),
        base,
        attrs.evolve(base, framework=same_fw, kill_requested=True),
        attrs.evolve(base, framework=attrs.evolve(base.framework, name="renamed")),
        attrs.evolve(base, sandbox=base.sandbox + "-2", run_id="r2"),
        attrs.evolve(base, task=attrs.evolve(base.task, labels={"k": "v"})),
        attrs.evolve(base, updates=(status,) * 3 if status else ()),
    ]
    for cp in variants + variants[::-1]:
        assert packer.pack(cp) == _pack(cp)
    packer.forget(base.task.task_id)
    assert packer.pack(base) == _pack(base)
    store = CheckpointStore(str(tmp_path))  # and through the store, a removal in between
    store.write_batch([base, TaskRemoved(base.task.task_id), variants[0]])
    assert CheckpointStore(str(tmp_path)).load() == (None, [variants[0]])


def _pack_len(record: object) -> bytes:
    from mesos_agent.checkpoint import _pack
    return _pack(record)


def test_process_recover_finds_a_launch_the_checkpoint_missed_in_the_launch_log(
        tmp_path: Path) -> None:
    """kill -9 between the spawn and the group commit: no handle was checkpointed, but the
    launch log names the process (with its start time), so it is reattached, not leaked."""
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    box = str(tmp_path / "box")
    try:
        old = LaunchLog(str(tmp_path))
        old.launched([Launch("t1", box, proc.pid, start_time(proc.pid) or 0.0)])
        old.close()
        with open(launch_log.log_path(str(tmp_path)), "ab") as f:
            f.write(b'["L",12')  # torn by the kill
        c = ProcessContainerizer(str(tmp_path))
        cp = _checkpoint_of_running_task()

        async def adopt() -> tuple:
            found = await c.recover("t1", "F1", cp.task, box, "")
            await c.kill("t1", 0.0)
            return found, await c.wait("t1")
        found, result = asyncio.run(adopt())
        assert found == Found(RUNNING_FOUND, pid=proc.pid) and result == (None, None)
        assert launch_log.read(str(tmp_path)) == {}
    finally:
        proc.kill()
        proc.wait()
