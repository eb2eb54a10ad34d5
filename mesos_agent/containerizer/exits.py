"""Task processes' exits, watched by the event loop without a thread per process.

Each child gets a pidfd (readable once the process has exited) in one epoll set that the
loop watches through a single fd. The launcher thread that spawned the child adds its pidfd
there, so the loop does no per-launch registration: at a thousand launches a second the
`add_reader` per child, with the GIL hand-over after its epoll_ctl, was a sixth of the
agent's event-loop time. Where pidfds are missing (kernels before 5.3) a thread waits.
"""
from __future__ import annotations

import asyncio
import logging
import os
import select

from mesos_agent.containerizer.spawn import reap

log = logging.getLogger(__name__)


class ExitWatch:
    """`add` from any thread right after the spawn; `future` on the loop, once per child."""

    def __init__(self) -> None:
        self._ep = select.epoll()
        self._children: dict[int, int] = {}  # pidfd -> child's pid
        self._waiting: dict[int, asyncio.Future[int | None]] = {}  # pid -> its future
        self._codes: dict[int, int | None] = {}  # pid -> exit code nobody asked for yet
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, pid: int) -> bool:
        """Watch the child `pid` (False: no pidfd here; `future` falls back to a thread)."""
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return False
        self._children[fd] = pid  # before the fd can fire
        self._ep.register(fd, select.EPOLLIN)
        return True

    def future(self, pid: int, watched: bool) -> asyncio.Future[int | None]:
        """A future resolved with the child's return code (negative: the signal)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int | None] = loop.create_future()
        if not watched:
            wait = loop.run_in_executor(None, reap, pid)
            wait.add_done_callback(lambda w: fut.done() or fut.set_result(w.result()))
            return fut
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._ep.fileno(), self._ready)
        if pid in self._codes:
            fut.set_result(self._codes.pop(pid))
        else:
            self._waiting[pid] = fut
        return fut

    def _ready(self) -> None:
        for fd, _ in self._ep.poll(0):
            pid = self._children.pop(fd, None)
            self._ep.unregister(fd)
            os.close(fd)
            if pid is None:
                continue
            code = reap(pid)  # it has exited: reaps at once
            fut = self._waiting.pop(pid, None)
            if fut is None:
                self._codes[pid] = code
            elif not fut.done():
                fut.set_result(code)

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._ep.fileno())
        for fd in list(self._children):
            os.close(fd)
        self._children.clear()
        self._ep.close()


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
