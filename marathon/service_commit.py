"""When Marathon's state becomes durable (mixed into MarathonService).

Every change is persisted before it is answered or acknowledged. Without `deferred` (tests,
the simulation) each callback flushes itself; with it (the daemon, whose driver calls
`batch_done` after each burst of callbacks) status updates only mark their app dirty and one
flush per burst drives the dirty apps and commits, its disk write in a worker thread.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from marathon.store import Store
from marathon.tracker import TaskRecord

log = logging.getLogger("marathon.service")  # as before the split: same logger, same filters

DIRTY_TICK_INTERVAL = 0.1


class CommitMixin:
    """Needs from MarathonService: `store`, `tasks`, `now`, `tick`, `work_clock`."""

    store: Store
    tasks: dict[str, TaskRecord]
    work_clock: Callable[[], float]

    def _init_commit(self) -> None:
        # With `deferred` (the daemon: its driver calls batch_done after each burst), status
        # updates only mark their app dirty and `flush` drives the dirty apps and commits
        # once per burst; without it (tests, the simulation) every callback flushes itself.
        self.deferred = False
        self._dirty: set[str] = set()
        self._dirty_tick_at = 0.0
        self._commit_lock = asyncio.Lock()
        self._writing: asyncio.Future[None] | None = None
        self._dirty_tasks: set[str] = set()  # records to write at the next commit

    def commit(self) -> None:
        """Make every change so far durable (before answering, before acks go out)."""
        self._stage_tasks()
        self.store.commit()

    def _save_task(self, t: TaskRecord) -> None:
        self._dirty_tasks.add(t.id)

    def _stage_tasks(self) -> None:
        dirty, self._dirty_tasks = self._dirty_tasks, set()
        for tid in dirty:  # serialised once per commit, however often they changed
            t = self.tasks.get(tid)
            if t is not None:
                self.store.put("task", tid, t.to_store())

    async def flush_async(self) -> None:
        """`flush` for the daemon: the disk write runs in a worker thread (the loop serves
        the API meanwhile); commits are serialised, and one that returns covers every
        change made before it was called."""
        if not self.deferred or not getattr(self.store, "write_in_thread", False):
            self.flush()
            return
        self._tick_dirty()
        self._stage_tasks()
        async with self._commit_lock:
            batch = self.store.take()  # type: ignore[attr-defined]
            if batch:  # shielded: a cancelled caller must not leave a write half-known
                self._writing = asyncio.ensure_future(
                    asyncio.to_thread(self.store.write, batch))  # type: ignore[attr-defined]
                await asyncio.shield(self._writing)

    async def close_async(self) -> None:
        """Wait for a write in flight (its caller may have been cancelled), commit the rest."""
        if self._writing is not None:
            try:
                await self._writing
            except Exception:
                log.exception("state write failed")
        self.commit()

    def flush(self) -> None:
        """Drive the apps whose tasks changed since the last flush, then commit. Deferred,
        apps are driven at most every DIRTY_TICK_INTERVAL (their tick scans their tasks;
        flushes come every few milliseconds under load), and no more often than ten
        times the last such tick took; the periodic full tick covers every app anyway."""
        self._tick_dirty()
        self.commit()

    def _tick_dirty(self) -> None:
        now = self.now()  # type: ignore[attr-defined]
        if self._dirty and (not self.deferred or now >= self._dirty_tick_at):
            dirty, self._dirty = self._dirty, set()
            spent = self.work_clock()
            self.tick(dirty)  # type: ignore[attr-defined]
            spent = self.work_clock() - spent
            # at most ~10% of the loop on these scans, however many tasks the apps have
            self._dirty_tick_at = now + max(DIRTY_TICK_INTERVAL, 10 * spent)

    async def batch_done(self, driver: Any) -> None:
        """SDK hook after a burst of callbacks, before its acks and launches are sent."""
        await self.flush_async()

    def _settle(self) -> None:
        if not self.deferred:
            self.flush()
