"""The shared effect runtime: performers raise on what they do not know, timers map core time
onto the loop, and the commit barrier holds effects until their commit is durable."""
from __future__ import annotations

import asyncio

import pytest

from mesos_common import effects as fx
from mesos_common.runtime import CommitBarrier, Performers, Timers, UnknownEffect
from tests.helpers import wait_for_async


def test_performers_dispatch_by_type_and_raise_on_an_unknown_effect() -> None:
    done: list[str] = []
    perform = Performers({fx.Log: lambda e: done.append(e.text)})
    perform.perform([fx.Log("info", "a"), fx.Log("info", "b")])
    assert done == ["a", "b"]
    with pytest.raises(UnknownEffect, match="no performer for CancelTimer"):
        perform.perform([fx.CancelTimer("k")])


def test_timers_on_a_foreign_clock_fire_after_the_difference() -> None:
    async def main() -> list[object]:
        fired: list[object] = []
        timers = Timers(fired.append, clock=lambda: 1000.0)  # the core's clock stands still
        timers.set("late", 1000.05)
        timers.set("early", 999.0)  # in the past: due at once
        timers.set("gone", 1000.01)
        timers.cancel("gone")
        await wait_for_async(lambda: fired)
        assert fired == ["early"] and "late" in timers
        await wait_for_async(lambda: len(fired) == 2)
        assert len(timers) == 0
        return fired
    assert asyncio.run(main()) == ["early", "late"]


def test_a_kept_firing_is_taken_once_and_not_after_a_re_arm() -> None:
    async def main() -> None:
        fired: list[object] = []
        timers = Timers(fired.append, keep_fired=True)  # the core runs on loop time
        loop = asyncio.get_running_loop()
        timers.set("k", loop.time())
        await wait_for_async(lambda: fired)
        handle = timers.current("k")
        assert fired == ["k"] and handle is not None
        timers.set("k", loop.time() + 10)  # re-armed before the firing was handled
        assert not timers.take("k", handle)
        timers.close()
        assert len(timers) == 0
    asyncio.run(main())


def test_commit_barrier_holds_what_follows_an_undurable_commit() -> None:
    done: list[str] = []
    barrier = CommitBarrier(done.append)
    barrier.add("a")
    barrier.hold(1)
    barrier.add("b")
    barrier.hold(2)
    barrier.add("c")
    assert barrier.drain() and done == ["a"]
    barrier.committed(2)  # one commit covering both records
    assert not barrier.drain() and done == ["a", "b", "c"]
