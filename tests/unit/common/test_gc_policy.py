"""The shared gc policy, exercised with the real collector (gc is global: every test puts the
thresholds, callbacks and frozen objects back)."""
from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mesos_common.gc_policy import THRESHOLDS, GcPolicy
from tests.helpers import wait_for_async


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Node:  # a cycle: only the collector frees it
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def clean_gc() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        gc.callbacks[:] = callbacks


@contextmanager
def _installed(freeze: bool) -> Iterator[GcPolicy]:
    policy = GcPolicy(freeze=freeze)
    policy.install()
    try:
        yield policy
    finally:
        policy.uninstall()


def test_install_sets_the_thresholds_and_uninstall_restores_them(clean_gc) -> None:
    gc.set_threshold(700, 10, 10)
    policy = GcPolicy(freeze=True)
    policy.install()
    policy.install()  # idempotent: one callback, the saved thresholds are not overwritten
    assert gc.get_threshold() == THRESHOLDS
    assert gc.callbacks.count(policy._on_gc) == 1
    policy.uninstall()
    assert gc.get_threshold() == (700, 10, 10)
    assert policy._on_gc not in gc.callbacks


def test_without_freeze_it_only_times(clean_gc) -> None:
    gc.set_threshold(700, 10, 10)
    with _installed(False) as policy:
        gc.collect()
        assert policy.full_collections == 1
        assert not policy.maybe_freeze()
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == (700, 10, 10)


def test_survivors_of_a_full_collection_are_frozen_outside_the_collector(clean_gc) -> None:
    with _installed(True) as policy:
        kept = [_Node() for _ in range(1000)]
        assert not policy.maybe_freeze()  # nothing due before a full collection
        gc.collect(1)  # not a full one: nothing due
        assert not policy.freeze_due and policy.full_collections == 0
        gc.collect()
        assert policy.freeze_due and gc.get_freeze_count() == 0  # deferred to the loop
        assert policy.maybe_freeze()
        assert gc.get_freeze_count() >= len(kept)
        assert not policy.maybe_freeze()  # once per full collection
        assert policy.full_collections == 1


def test_collect_and_freeze_leaves_loaded_records_out_of_later_collections(clean_gc) -> None:
    with _installed(True) as policy:
        loaded = [{"task": i} for i in range(5000)]
        policy.collect_and_freeze()
        frozen = gc.get_freeze_count()
        assert frozen >= len(loaded)
        assert not policy.freeze_due
        tracked_before = len(gc.get_objects())
        assert tracked_before < frozen  # the frozen records are no longer walked
        garbage = [_Node() for _ in range(100)]
        del garbage
        assert gc.collect() >= 100  # cycles made after the freeze are still freed


def test_pause_metrics_cover_the_window_only(clean_gc) -> None:
    clock = _Clock()
    policy = GcPolicy(freeze=False, window=10.0, clock=clock)
    policy._on_gc("start", {"generation": 0})
    clock.now += 0.25
    policy._on_gc("stop", {"generation": 2})
    policy._on_gc("start", {"generation": 0})
    clock.now += 0.01
    policy._on_gc("stop", {"generation": 0})
    out = policy.metrics("master")
    assert out["master/gc_pause_max_ms"] == pytest.approx(250.0)
    assert out["master/gc_full_collections"] == 1.0
    assert out["master/gc_frozen_objects"] == float(gc.get_freeze_count())
    clock.now += 9.995  # the 250 ms pause ended 10.005 s ago: out of the window
    assert policy.metrics("m")["m/gc_pause_max_ms"] == pytest.approx(10.0)
    clock.now += 60
    assert policy.pause_max() == 0.0


def test_freezer_task_freezes_soon_after_a_full_collection(clean_gc) -> None:
    policy = GcPolicy(freeze=True)

    async def main() -> int:
        task = asyncio.create_task(policy.freezer(interval=0.01))
        try:
            policy.install()
            gc.collect()
            return await wait_for_async(gc.get_freeze_count, what="a freeze")
        finally:
            task.cancel()
            policy.uninstall()

    assert asyncio.run(main()) > 0


def test_the_frozen_count_is_read_at_most_once_per_age(clean_gc) -> None:
    """`gc_frozen_objects` walks every frozen object: read again only when 10 s old."""
    from mesos_common import gc_policy
    clock = _Clock()
    policy = GcPolicy(freeze=True, clock=clock)
    first = policy.frozen_objects()
    kept = [[i] for i in range(1_000)]  # noqa: F841 - survivors to freeze
    gc.freeze()
    assert policy.frozen_objects() == first  # the cached reading
    clock.now += gc_policy.FROZEN_COUNT_AGE
    assert policy.frozen_objects() == gc.get_freeze_count() >= first + 1_000
