"""The deterministic simulation in CI: a bounded seed sweep, exact replay, and proof that the
sweep catches a planted bug (so a green sweep means something)."""
from __future__ import annotations

from typing import Any

import attrs
import pytest

from mesos_common import messages as m
from mesos_master.core import MESSAGES, Master
from tests.sim.cluster import SimOptions, SimViolation
from tests.sim.sweep import run_seed

CHUNKS, PER_CHUNK = 8, 6  # 48 seeds, spread over the xdist workers


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_seed_sweep(chunk: int) -> None:
    for seed in range(chunk * PER_CHUNK, (chunk + 1) * PER_CHUNK):
        result = run_seed(seed)  # raises SimViolation naming the seed
        assert result.steps > 0 and result.messages > 0


def test_a_seed_replays_exactly() -> None:
    first, second = run_seed(7), run_seed(7)
    assert first == second
    assert run_seed(8).digest != first.digest


def _decline_without_recovering(self: Master, msg: m.Decline, peer: bytes) -> None:
    """The planted bug: the offer is dropped, its resources never given back."""
    fw = self._framework_for(peer, msg, msg.framework_id)
    if fw is None:
        return
    for oid in msg.offer_ids:
        offer = self.offers.get(oid)
        if offer is not None and offer.framework_id == fw.id:
            self._drop_offer(offer)


def test_sweep_finds_a_planted_bug_and_names_a_replayable_seed() -> None:
    planted = {**MESSAGES, m.Decline: _decline_without_recovering}

    def options(seed: int) -> SimOptions:
        return SimOptions(seed=seed, agents=2, frameworks=2, tasks_per_framework=12,
                          safety_time=20.0, liveness_time=120.0, master_messages=planted)
    found: list[SimViolation] = []
    for seed in range(20):
        try:
            run_seed(seed, options(seed))
        except SimViolation as e:
            found.append(e)
            break
    assert found, "the sweep did not notice declined resources never coming back"
    violation = found[0]
    assert f"--seed {violation.seed}" in str(violation)
    with pytest.raises(SimViolation) as again:  # the seed replays the same failure
        run_seed(violation.seed, options(violation.seed))
    assert again.value.problem == violation.problem
    run_seed(violation.seed, attrs.evolve(options(violation.seed), master_messages=None))


MARATHON: dict[str, Any] = dict(agents=3, frameworks=1, tasks_per_framework=5,
                                safety_time=60.0, liveness_time=200.0, marathon=True,
                                marathon_ops_per_min=30.0)


def test_marathon_seeds_replay_exactly_and_do_something() -> None:
    seeds = [s for s in range(48) if SimOptions.swarm(s).marathon]
    assert len(seeds) >= 12  # about half the CI sweep runs Marathon
    first, second = run_seed(seeds[0]), run_seed(seeds[0])
    assert first == second and first.marathon_ops > 0


def _replace_all_at_once(instances: int, strategy: dict) -> tuple[int, int]:
    """The planted bug: the upgrade strategy ignored, every old task killed at once."""
    return 0, 2 * instances + 1


def _caught_and_replayed(monkeypatch: pytest.MonkeyPatch, what: str) -> SimViolation:
    """The first of 30 Marathon seeds that fails with the planted bug: it names a seed that
    replays the same failure, and passes once the bug is gone."""
    found = None
    for seed in range(30):
        try:
            run_seed(seed, SimOptions(seed=seed, **MARATHON))
        except SimViolation as e:
            found = e
            break
    assert found is not None, f"the sweep did not notice {what}"
    assert f"--seed {found.seed}" in str(found)
    with pytest.raises(SimViolation) as again:
        run_seed(found.seed, SimOptions(seed=found.seed, **MARATHON))
    assert again.value.problem == found.problem
    monkeypatch.undo()
    assert run_seed(found.seed, SimOptions(seed=found.seed, **MARATHON)).marathon_ops > 0
    return found


def test_sweep_finds_a_planted_upgrade_strategy_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    import marathon.deployment as dep
    monkeypatch.setattr(dep, "_bounds", _replace_all_at_once)
    found = _caught_and_replayed(monkeypatch, "upgrades below minimumHealthCapacity")
    assert "minimumHealthCapacity" in found.problem


def _fast_path_ignoring_config(self: Any, aid: str, app: dict[str, Any] | None
                               ) -> tuple[int, int] | None:
    """The planted bug: the core's counting shortcut forgets the config version, so tasks
    of an older config count as current and an upgrade or restart never replaces them."""
    if app is None or app.get("healthChecks"):
        return None
    tasks = [t for t in self.state.tasks_of(aid) if t.active]
    if any(t.killing or t.unreachable_inactive for t in tasks):
        return None
    return len(tasks), sum(t.state == "TASK_RUNNING" for t in tasks)


def test_sweep_finds_a_bug_planted_in_the_marathon_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the Marathon core, which the simulation drives through `handle` only."""
    from marathon.core_base import CoreBase
    monkeypatch.setattr(CoreBase, "_fast", _fast_path_ignoring_config)
    found = _caught_and_replayed(monkeypatch, "upgrades that replace nothing")
    assert "did not converge" in found.problem and "current running" in found.problem
