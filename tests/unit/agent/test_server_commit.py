"""The agent runtime's group commit: effects after a checkpoint wait until it is durable, a
task's later snapshot replaces an earlier one still waiting, and acknowledgements' (lazy)
records ride along with a running commit or get one of their own at once."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

from mesos_agent.recovery import AgentIdRecord, Checkpoint, TaskCheckpoint, TaskRemoved
from mesos_agent.server import AgentServer, ServerOptions
from mesos_common import task_states as ts
from mesos_common.effects import Log
from mesos_common.resources import Resources
from tests.helpers import wait_for_async
from tests.unit.agent.test_core import FW, task


class _Core:
    """Stands in for the agent core: returns the effects it is given."""

    state, agent_id = "DISCONNECTED", None

    def __init__(self) -> None:
        self.next: list[Any] = []

    def handle(self, event: Any, now: float) -> list[Any]:
        effects, self.next = self.next, []
        return effects


class _Store:
    """Records each batch; a batch waits for `release` so a test can queue behind it."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.release = threading.Event()
        self.release.set()

    def write_batch(self, records: list[Any]) -> None:
        self.release.wait(5)
        self.batches.append(list(records))


def _cp(tid: str, state: str = ts.STAGING) -> TaskCheckpoint:
    return TaskCheckpoint(FW, task(tid), f"/s/{tid}", "r", state)


async def _server(tmp_path) -> tuple[AgentServer, _Core, _Store, list[str]]:
    opts = ServerOptions(master="127.0.0.1:5050", work_dir=str(tmp_path),
                         resources=Resources.parse("cpus:1"), attributes={})
    s = AgentServer(opts, containerizer=None)  # type: ignore[arg-type]
    core, store, done = _Core(), _Store(), []
    s.core, s._store = core, store  # type: ignore[assignment]
    s._perform[Log] = lambda e: done.append(e.text)
    return s, core, store, done


def _feed(s: AgentServer, core: _Core, *effects: Any) -> None:
    core.next = list(effects)
    s.feed(object())


def test_effects_wait_for_their_checkpoint_and_snapshots_of_one_task_coalesce(tmp_path) -> None:
    async def main() -> None:
        s, core, store, done = await _server(tmp_path)
        async with asyncio.TaskGroup() as tg:
            s._tg = tg
            store.release.clear()  # the first commit hangs until released
            _feed(s, core, Checkpoint(AgentIdRecord("A1")), Log("info", "a"))
            await asyncio.sleep(0.02)
            assert done == [] and s._committing
            # queued behind it: t1 twice (the later wins), t2, then t2 removed
            _feed(s, core, Checkpoint(_cp("t1")), Log("info", "b"))
            _feed(s, core, Checkpoint(_cp("t1", ts.RUNNING), lazy=True),
                  Checkpoint(_cp("t2")), Log("info", "c"))
            _feed(s, core, Checkpoint(TaskRemoved("t2")), Log("info", "d"))
            store.release.set()
            await wait_for_async(lambda: done == ["a", "b", "c", "d"])
            assert store.batches == [[AgentIdRecord("A1")],
                                     [_cp("t1", ts.RUNNING), TaskRemoved("t2")]]
    asyncio.run(main())


def test_lazy_records_ride_along_with_a_running_commit_or_go_at_once(tmp_path) -> None:
    async def main() -> None:
        s, core, store, done = await _server(tmp_path)
        async with asyncio.TaskGroup() as tg:
            s._tg = tg
            store.release.clear()
            _feed(s, core, Checkpoint(_cp("t1")), Log("info", "a"))
            _feed(s, core, Checkpoint(_cp("t1", ts.RUNNING), lazy=True), Log("info", "b"))
            assert done == []  # behind the barrier of t1's first record
            _feed(s, core, Checkpoint(TaskRemoved("t2"), lazy=True))
            store.release.set()
            await wait_for_async(lambda: len(store.batches) == 2)
            assert done == ["a", "b"]
            assert store.batches == [[_cp("t1")], [_cp("t1", ts.RUNNING), TaskRemoved("t2")]]
            _feed(s, core, Checkpoint(TaskRemoved("t1"), lazy=True), Log("info", "c"))
            assert done == ["a", "b", "c"] and s._committing  # nothing waits; it goes at once
            await wait_for_async(lambda: len(store.batches) == 3)
            assert store.batches[2] == [TaskRemoved("t1")]
    asyncio.run(main())
