"""Mesos health checks and status-update retries in the simulation: seeds exercise both,
and the health invariants catch planted bugs with a replayable seed."""
from __future__ import annotations

from typing import Any

import pytest

from mesos_agent import core_health
from mesos_agent.events import HealthResult, KillProcess, StopHealthCheck
from tests.sim.cluster import SimOptions, SimViolation
from tests.sim.sweep import run_seed

CHECKED: dict[str, Any] = dict(agents=3, frameworks=1, tasks_per_framework=8,
                               safety_time=60.0, liveness_time=300.0, marathon=True,
                               marathon_ops_per_min=12.0, health_checks=1.0, unhealthy=0.7)


def test_the_seed_chooses_the_retry_policy_and_the_health_checks() -> None:
    options = [SimOptions.swarm(s) for s in range(48)]
    retry = [o.mesos_status_retry for o in options]
    assert 10 <= sum(retry) <= 38  # both policies in the CI sweep
    assert sum(o.health_checks > 0 and o.unhealthy > 0 for o in options) >= 8
    assert SimOptions.swarm(5) == SimOptions.swarm(5)


def test_unhealthy_tasks_are_killed_and_replaced_and_marathon_converges() -> None:
    kills = 0
    for seed in range(4):
        for retry in (False, True):
            r = run_seed(seed, SimOptions(seed=seed, mesos_status_retry=retry, **CHECKED))
            assert r.marathon_apps > 0 or r.marathon_ops > 0
            kills += r.health_kills
    assert kills >= 4, "no seed made a task fail its checks"
    again = SimOptions(seed=3, mesos_status_retry=True, **CHECKED)
    assert run_seed(3, again) == run_seed(3, again)  # probes and hangs replay exactly


def _kill_one_failure_late(self: Any, event: HealthResult, now: float) -> list[Any]:
    """The planted bug: `>` for `>=`; the agent kills after N + 1 failures, not N."""
    entry = self._tasks.get(event.task_id)
    effects = _ORIGINAL(self, event, now)
    if entry is not None and entry.health_killed and \
            entry.health_failures == entry.task.health_check.consecutive_failures:
        entry.kill_requested = entry.health_killed = False
        effects = [e for e in effects if not isinstance(e, (KillProcess, StopHealthCheck))]
    return effects


_ORIGINAL = core_health.HealthRules._on_health


def _first_failure(options: dict[str, Any], problem: str) -> SimViolation:
    for seed in range(30):
        try:
            run_seed(seed, SimOptions(seed=seed, **options))
        except SimViolation as e:
            assert problem in e.problem, e
            return e
    raise AssertionError(f"no seed noticed: {problem}")


def test_a_planted_off_by_one_in_health_kills_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_health.HealthRules, "_on_health", _kill_one_failure_late)
    found = _first_failure(CHECKED, "failing its health checks")
    assert f"--seed {found.seed}" in str(found)
    with pytest.raises(SimViolation) as again:  # the seed replays the same failure
        run_seed(found.seed, SimOptions(seed=found.seed, **CHECKED))
    assert again.value.problem == found.problem
    monkeypatch.undo()
    run_seed(found.seed, SimOptions(seed=found.seed, **CHECKED))


def test_marathon_keeping_a_stale_healthy_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted bug: Marathon keeps the first health result of a task (healthy) and
    ignores the later healthy=false."""
    from marathon import core
    from marathon import core_events as ev
    original = core.EVENTS[ev.StatusUpdate]

    def first_health_only(self: Any, e: ev.StatusUpdate) -> None:
        t = self.state.tasks.get(e.status.task_id)
        before = t.mesos_healthy if t is not None else None
        original(self, e)
        if t is not None and before is not None:
            t.mesos_healthy = before

    monkeypatch.setitem(core.EVENTS, ev.StatusUpdate, first_health_only)
    options: dict[str, Any] = dict(CHECKED, frameworks=0)
    found = _first_failure(options, "healthy")
    with pytest.raises(SimViolation) as again:
        run_seed(found.seed, SimOptions(seed=found.seed, **options))
    assert again.value.problem == found.problem
    monkeypatch.undo()
    run_seed(found.seed, SimOptions(seed=found.seed, **options))
