"""Task processes' exits, without an fd or a thread per process.

One reaper thread per agent process blocks in `waitid(P_ALL, WNOWAIT)`: it learns which
child exited without reaping it, reaps only the children it was asked to watch (never a
health check's, which their own waiter reaps), and hands each batch of exit codes to the
event loop in one call. No pidfd per task: every spawn copies the agent's fd table into
the child, which then closes it, so 1,000 running tasks' pidfds made each launch cost
~0.13 ms more (child and parent CPU), growing with the number of tasks running. The
launcher threads register a child right after its spawn; the loop does no per-launch
work.

Nothing else in the agent may reap a child it did not start (waitpid(-1)): the reaper
would not see that child end (when no child is left at all, it reports the ones it watched
as ended, code unknown). A zombie that is not ours and stays unreaped cannot hide ours:
after `SCAN_AFTER` the reaper checks each of its own children directly.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Callable

from mesos_agent.containerizer.spawn import reap

log = logging.getLogger(__name__)

PAUSE_MIN, PAUSE_MAX = 0.001, 0.05  # between looks while another's zombie is in front
SCAN_AFTER = 0.02  # ... and after this long, each of our children is checked directly

Exited = list[tuple[int, "int | None"]]
_Owner = Callable[[Exited], None]
_Reaped = list[tuple[int, _Owner, "int | None"]]
_PEEK = os.WEXITED | os.WNOWAIT  # which child has exited, without reaping it


class _Reaper:
    """The process's one reaper thread and the children it watches, by pid."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owners: dict[int, _Owner] = {}
        self._thread: threading.Thread | None = None

    def watch(self, pid: int, owner: _Owner) -> None:
        with self._cond:
            self._owners[pid] = owner
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="exits", daemon=True)
                self._thread.start()
            self._cond.notify()

    def drop(self, pids: list[int]) -> None:
        """Reap these children when they end, and tell no one."""
        with self._cond:
            for pid in pids:
                if pid in self._owners:
                    self._owners[pid] = _ignore

    def _run(self) -> None:
        state = (0, 0.0, PAUSE_MIN)
        while True:
            with self._cond:
                while not self._owners:
                    self._cond.wait()
            try:
                state = self._turn(*state)
            except Exception:  # the thread must not die: every exit would go unseen
                log.exception("exit watch")
                time.sleep(PAUSE_MAX)

    def _turn(self, front: int, since: float, pause: float) -> tuple[int, float, float]:
        """Wait for an exit and reap what is ours; the state of a foreign zombie in front
        (its pid, since when, the next pause)."""
        try:
            seen = os.waitid(os.P_ALL, 0, _PEEK)  # blocks until some child exits
        except ChildProcessError:  # no child at all: what we watch was reaped elsewhere
            with self._cond:
                gone, self._owners = self._owners, {}
            _deliver([(pid, owner, None) for pid, owner in gone.items()])
            return 0, 0.0, PAUSE_MIN
        if seen is None:
            return front, since, pause
        reaped = self._reap_from(seen.si_pid)
        if reaped:
            _deliver(reaped)
            return 0, 0.0, PAUSE_MIN
        now = time.monotonic()  # not ours (yet): its own waiter will reap it
        if seen.si_pid != front:
            front, since = seen.si_pid, now
        elif now - since >= SCAN_AFTER:
            _deliver(self._scan())
            since = now
        time.sleep(pause)
        return front, since, min(PAUSE_MAX, pause * 2)

    def _owner(self, pid: int) -> _Owner | None:
        with self._cond:
            return self._owners.pop(pid, None)

    def _reap_from(self, pid: int) -> _Reaped:
        """Reap `pid` if it is ours, then each next exited child while it is ours too."""
        out: _Reaped = []
        while (owner := self._owner(pid)) is not None:
            out.append((pid, owner, reap(pid)))
            try:
                seen = os.waitid(os.P_ALL, 0, _PEEK | os.WNOHANG)
            except ChildProcessError:
                break
            if seen is None:
                break
            pid = seen.si_pid
        return out

    def _scan(self) -> _Reaped:
        """Each watched child checked directly: a zombie not ours is in front of them."""
        with self._cond:
            pids = list(self._owners)
        out: _Reaped = []
        for pid in pids:
            try:
                exited = os.waitid(os.P_PID, pid, _PEEK | os.WNOHANG) is not None
            except ChildProcessError:  # reaped elsewhere: reap() says None
                exited = True
            if exited and (owner := self._owner(pid)) is not None:
                out.append((pid, owner, reap(pid)))
        return out


def _ignore(batch: Exited) -> None:
    pass


def _deliver(reaped: _Reaped) -> None:
    """Hand each owner its exits in one call."""
    by_owner: dict[_Owner, Exited] = {}
    for pid, owner, code in reaped:
        by_owner.setdefault(owner, []).append((pid, code))
    for owner, batch in by_owner.items():
        try:
            owner(batch)
        except Exception:  # the reaper thread must go on
            log.exception("cannot hand over the exits of pids %s", [p for p, _ in batch])


_reaper = _Reaper()


def _after_fork() -> None:  # a forked child has no reaper thread and no children of ours
    global _reaper
    _reaper = _Reaper()


os.register_at_fork(after_in_child=_after_fork)


class ExitWatch:
    """`add` from any thread right after the spawn; `future` on the loop, once per child."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: set[int] = set()
        self._waiting: dict[int, asyncio.Future[int | None]] = {}  # pid -> its future
        self._codes: dict[int, int | None] = {}  # pid -> exit code nobody asked for yet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: Exited = []  # exits for the loop, handed over in one call

    def add(self, pid: int) -> None:
        """Watch the child `pid` (spawned by this process)."""
        with self._lock:
            self._watched.add(pid)
        _reaper.watch(pid, self._exited)

    def future(self, pid: int) -> asyncio.Future[int | None]:
        """A future resolved with the child's return code (negative: the signal)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int | None] = loop.create_future()
        with self._lock:
            self._loop = loop
            if pid in self._codes:
                fut.set_result(self._codes.pop(pid))
            else:
                self._waiting[pid] = fut
        return fut

    def _exited(self, batch: Exited) -> None:
        """In the reaper thread: keep the codes, wake the loop once for those awaited."""
        with self._lock:
            wake = False
            for pid, code in batch:
                self._watched.discard(pid)
                if pid in self._waiting:
                    self._ready.append((pid, code))
                    wake = True
                else:
                    self._codes[pid] = code
            loop = self._loop
        if wake and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
            futs = [(self._waiting.pop(pid, None), code) for pid, code in ready]
        for fut, code in futs:
            if fut is not None and not fut.done():
                fut.set_result(code)

    def close(self) -> None:
        """The agent stops: its children (gone by now) are reaped without a word."""
        with self._lock:
            pids = list(self._watched)
            self._watched.clear()
        _reaper.drop(pids)


def watch_stranger(pid: int, fd: int) -> asyncio.Future[int | None]:
    """The end of a process that is not our child (reattached after a restart): its pidfd
    turns readable when it exits; its exit status is not ours to read (None)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int | None] = loop.create_future()

    def gone() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, gone)
    return fut
