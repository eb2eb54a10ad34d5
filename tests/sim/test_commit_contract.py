"""Marathon's commit contract in the simulation: a buffered store that loses uncommitted
writes in a crash, and proof that the sweep notices a service that breaks the contract."""
from __future__ import annotations

from typing import Any

import pytest

from marathon import core
from marathon import core_events as ev
from marathon.core import MarathonCore
from tests.sim.cluster import SimCluster, SimOptions, SimViolation
from tests.sim.cluster_marathon import BURST
from tests.sim.sim_marathon import BufferedMemoryStore
from tests.sim.sweep import run_seed

CRASHY: dict[str, Any] = dict(agents=3, frameworks=1, tasks_per_framework=5,
                              safety_time=60.0, liveness_time=200.0, marathon=True,
                              marathon_ops_per_min=30.0, marathon_crashes_per_min=3.0)


def test_buffered_store_sees_its_pending_writes_and_loses_them_in_a_crash() -> None:
    s = BufferedMemoryStore()
    s.put("app", "/a", {"v": 1})
    s.commit()
    s.put("app", "/a", {"v": 2})
    s.put("app", "/b", {"v": 1})
    s.delete("app", "/b")
    s.put("task", "t1", {"id": "t1"})
    assert s.load("app") == {"/a": {"v": 2}} and s.load("task") == {"t1": {"id": "t1"}}
    assert s.pending == 3
    s.drop_pending()  # the process died before its commit
    assert s.load("app") == {"/a": {"v": 1}} and s.load("task") == {}
    s.delete("app", "/a")
    s.commit()
    s.drop_pending()
    assert s.load("app") == {} and s.pending == 0


def test_documents_are_copies() -> None:
    s = BufferedMemoryStore()
    doc = {"ids": [1]}
    s.put("meta", "k", doc)
    doc["ids"].append(2)
    s.commit()
    s.load("meta")["k"]["ids"].append(3)
    assert s.load("meta") == {"k": {"ids": [1]}}


def _first_violation() -> SimViolation | None:
    for seed in range(12):
        try:
            run_seed(seed, SimOptions(seed=seed, **CRASHY))
        except SimViolation as e:
            return e
    return None


def test_sweep_catches_a_service_that_answers_before_committing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted bug: the core's Flush drives the dirty apps but never asks for the
    commit, so API answers, acks and launches go out with nothing durable; a crash then
    loses apps."""
    def flush_without_commit(self: MarathonCore, e: ev.Flush) -> None:
        real_flush(self, e)
        assert isinstance(self._fx.pop(), ev.Commit)
    real_flush = core.EVENTS[ev.Flush]
    monkeypatch.setitem(core.EVENTS, ev.Flush, flush_without_commit)
    found = _first_violation()
    assert found is not None, "the sweep did not notice answers before the commit"
    assert "lost app" in found.problem and f"--seed {found.seed}" in str(found)
    monkeypatch.undo()
    assert run_seed(found.seed, SimOptions(seed=found.seed, **CRASHY)).marathon_ops > 0


def _send_before_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver without bursts: sends go out at once, batch_done commits after them."""
    monkeypatch.setattr(SimCluster, "_open_burst", lambda self, node: self.push(
        self.now + BURST, "mbatch", node.name, None))


def test_tasks_marathon_has_no_record_of_are_killed_and_the_sweep_checks_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the driver's hold, a crash between a launch and its commit leaves a task
    Marathon has no record of. With the planted bug (updates of unknown tasks dropped
    instead of killing the task) the sweep finds it running on, unknown; with the real
    service the same seed passes: the restarted Marathon kills it."""
    _send_before_commit(monkeypatch)
    real = core.EVENTS[ev.StatusUpdate]

    def ignore_unknown(self: MarathonCore, e: ev.StatusUpdate) -> None:
        if e.status.task_id in self.state.tasks:
            real(self, e)
    monkeypatch.setitem(core.EVENTS, ev.StatusUpdate, ignore_unknown)
    found = _first_violation()
    assert found is not None, "the sweep did not notice tasks unknown to Marathon"
    assert "unknown to Marathon" in found.problem, found.problem
    monkeypatch.setitem(core.EVENTS, ev.StatusUpdate, real)
    assert run_seed(found.seed, SimOptions(seed=found.seed, **CRASHY)).marathon_ops > 0
