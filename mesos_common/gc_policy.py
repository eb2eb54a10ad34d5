"""One garbage-collector policy for the long-lived daemons (master, Marathon).

Why: both daemons hold tens or hundreds of thousands of long-lived records (tasks, offers,
agents) that are almost never cyclic garbage. CPython's full collection walks every tracked
object, so with 100k tasks each one holds the event loop for a second or more; it shows as
missed heartbeats and API stalls.

The policy, the same in both daemons:
- `THRESHOLDS`: young collections every 10k net allocations (not 700), a middle one every
  10 young ones, a full one after every second middle one (CPython runs generation 2 when its
  count *exceeds* the threshold), i.e. every ~200k net allocations.
- Freeze after every full collection: what survives a full collection is live by
  construction, so `gc.freeze()` moves it to the permanent generation and the next full
  collection walks only what was allocated since. CPython itself only runs a full collection
  once the objects promoted since the last one exceed a quarter of what that one kept
  (`long_lived_pending > long_lived_total / 4`), so freezing after each full collection gives
  "re-freeze when the heap grew by a quarter" for free: Marathon used to count its tasks for
  that, and had to guess at start-up; now a start-up `collect_and_freeze()` is the same rule.
- Why full collections that often: with survivors frozen, a full collection walks only what
  is unfrozen, i.e. what arrived since the last one. Rare full collections (the master's
  former 10,10: every ~1M allocations) make each of them walk up to a million new objects at
  once (200-270 ms pauses while 1M records arrive, `benchmarks.gc_policy`); frequent ones
  walk ~200k (25-40 ms) for about the same total collector time. Every object is walked a
  bounded number of times (once per generation) and then never again.
- The freeze runs outside the collector (`maybe_freeze()`, called from the daemon's loop soon
  after), not inside the gc callback.
- Cost: a reference cycle among frozen objects that dies later is never freed (objects freed
  by reference counting are unaffected). The daemons' records hold no cycles; a few asyncio
  objects may, which is a small, bounded leak per full collection.
- Metrics: the longest pause in the last `window` seconds, the count of full collections and
  the frozen-object count, under the daemon's own prefix (the master's `master/gc_*` keys).
"""
from __future__ import annotations

import asyncio
import collections
import gc
import time
from collections.abc import Callable
from typing import Any

THRESHOLDS = (10_000, 10, 1)
PAUSE_WINDOW = 10.0  # seconds of pauses the `gc_pause_max_ms` metric looks back over
FROZEN_COUNT_AGE = 10.0  # seconds a reading of the frozen-object count is reused


class GcPolicy:
    """Times every collection and, with `freeze`, tunes thresholds and freezes survivors of
    full collections. `install()` / `uninstall()` bracket a daemon's life (gc is global)."""

    def __init__(self, freeze: bool = True, window: float = PAUSE_WINDOW,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.freeze = freeze
        self.window = window
        self._clock = clock
        self._started = 0.0
        self._pauses: collections.deque[tuple[float, float]] = collections.deque()  # (at, s)
        self.full_collections = 0
        self.freeze_due = False
        self._saved_thresholds: tuple[int, ...] | None = None
        # gc.get_freeze_count() walks every frozen object (millions in a big master: 5% of
        # its time while /metrics/snapshot was polled twice a second): read it at most once
        # per FROZEN_COUNT_AGE.
        self._frozen: tuple[float, int] | None = None  # (read at, count)

    def install(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        if self.freeze and self._saved_thresholds is None:
            self._saved_thresholds = gc.get_threshold()
            gc.set_threshold(*THRESHOLDS)

    def uninstall(self) -> None:
        """Stop timing and put the thresholds back (frozen objects stay frozen)."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._saved_thresholds is not None:
            gc.set_threshold(*self._saved_thresholds)
            self._saved_thresholds = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = self._clock()
        if phase == "start":
            self._started = now
            return
        self._pauses.append((now, now - self._started))
        while self._pauses and self._pauses[0][0] < now - self.window:
            self._pauses.popleft()
        if info.get("generation") == 2:
            self.full_collections += 1
            self.freeze_due = self.freeze

    def maybe_freeze(self) -> bool:
        """Freeze if a full collection ran since the last call; call it from the event loop
        often (the master's lag probe, Marathon's freezer task)."""
        if not self.freeze_due:
            return False
        self.freeze_due = False
        gc.freeze()
        return True

    def collect_and_freeze(self) -> None:
        """After loading a big state at start-up: one full collection, then freeze what it
        kept, so the loaded records never get walked again."""
        gc.collect()
        self.freeze_due = self.freeze
        self.maybe_freeze()

    async def freezer(self, interval: float = 0.05) -> None:
        """A loop task for daemons that have no periodic task of their own to call
        `maybe_freeze` from."""
        while True:
            await asyncio.sleep(interval)
            self.maybe_freeze()

    def pause_max(self) -> float:
        """Longest pause (seconds) among collections that ended in the last `window` s."""
        cutoff = self._clock() - self.window
        return max((p for at, p in self._pauses if at >= cutoff), default=0.0)

    def metrics(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}/gc_pause_max_ms": self.pause_max() * 1000,
                f"{prefix}/gc_full_collections": float(self.full_collections),
                f"{prefix}/gc_frozen_objects": float(self.frozen_objects())}

    def frozen_objects(self) -> int:
        """gc.get_freeze_count(), at most FROZEN_COUNT_AGE seconds old."""
        now = self._clock()
        if self._frozen is None or now - self._frozen[0] >= FROZEN_COUNT_AGE:
            self._frozen = (now, gc.get_freeze_count())
        return self._frozen[1]
