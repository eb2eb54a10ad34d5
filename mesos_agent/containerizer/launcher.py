"""The agent's end of its launch helper (`launch_helper.py`): batches of launches out, their
results and the tasks' exits back, all on the event loop (a reader on the socket; writes
never block the loop: what the socket cannot take waits in a buffer).

The helper is started with the containerizer and restarted by the next launch if it dies.
When it dies, tasks it started are left to init: they are watched from then on as
strangers (their pidfd; exit status unknown, as for tasks a previous agent process
started), and batches it had not answered fail. (A task that ended, and was reaped by init,
between the helper's death and our pidfd_open could in principle have its pid reused by
then; the window is the time the loop takes to see the hang-up.)
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import msgpack

from mesos_agent.containerizer.batch import LaunchSpec
from mesos_agent.containerizer.isolation import Isolator
from mesos_agent.containerizer.launch_helper import EXITED, LAUNCH, OOM, READ_SIZE, REOPEN, STARTED

log = logging.getLogger(__name__)

CLOSE_WAIT = 5.0  # seconds for the helper to exit once the agent hangs up

Result = list["tuple[int, float] | str"]  # per spec: (pid, start time) or why it failed
Answer = Callable[["Result | HelperLost"], None]  # gets a batch's result, on the loop


class HelperLost(Exception):
    """The launch helper died before it answered a batch."""


class Launcher:
    def __init__(self, isolator: Isolator, launch_log: str,
                 on_oom: Callable[[int], None] = lambda pid: None) -> None:
        self._args = [json.dumps(isolator.spec()), launch_log]
        self._on_oom = on_oom  # the helper killed this task: its memory group ran out
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out = bytearray()  # bytes the socket has not taken yet
        self._unpacker = msgpack.Unpacker(raw=False)
        self._batches: dict[int, tuple[Answer, int]] = {}  # batch -> (its answer, size)
        self._next = 0
        self._children: set[int] = set()  # started by the live helper, not yet exited
        self._waiting: dict[int, asyncio.Future[int | None]] = {}  # pid -> its exit
        self._codes: dict[int, int | None] = {}  # exits nobody asked for yet
        self._start()

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "mesos_agent.containerizer.launch_helper",
                 str(theirs.fileno()), *self._args],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                start_new_session=True)  # a ^C meant for the agent is the agent's to handle
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._unpacker = msgpack.Unpacker(raw=False)
        self._loop = None
        log.info("launch helper started (pid %d)", self._proc.pid)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def busy(self) -> bool:
        """Has a batch not been answered yet (its launches may still be logged)?"""
        return bool(self._batches)

    def watch(self) -> None:
        """Listen to the helper on the running loop (to learn of its death while idle)."""
        if self._sock is not None:
            self._bind(asyncio.get_running_loop())

    def submit(self, specs: list[LaunchSpec], answer: Answer) -> None:
        """Send a batch; `answer` is called with a result per spec, or with HelperLost -
        straight from the socket's reader (a future's callback would cost the loop a turn
        per batch, and a burst's first launches wait for turns)."""
        if self._sock is None:
            self._start()
        self._bind(asyncio.get_running_loop())
        batch, self._next = self._next, self._next + 1
        self._batches[batch] = (answer, len(specs))
        self._write(msgpack.packb([LAUNCH, batch, [s.as_list() for s in specs]]))

    def exit_future(self, pid: int) -> asyncio.Future[int | None]:
        """A future resolved with the task's return code (negative: the signal; None:
        unknown). Once per pid started by `submit`."""
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        if pid in self._codes:
            fut.set_result(self._codes.pop(pid))
        else:
            self._waiting[pid] = fut
        return fut

    def reopen_log(self) -> None:
        """The launch log was rewritten (compacted): the helper must append to the new one.
        Only while no batch is in flight, or its launches could land in the old file."""
        assert not self._batches, "the launch log was rewritten while launches were in flight"
        if self._sock is not None:
            self._write(msgpack.packb([REOPEN]))

    # ------------------------------------------------------------ the socket

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop:
            return
        assert self._sock is not None
        self._unwatch()
        loop.add_reader(self._sock, self._readable)
        if self._out:
            loop.add_writer(self._sock, self._writable)
        self._loop = loop

    def _unwatch(self) -> None:
        old = self._loop
        if old is not None and not old.is_closed() and self._sock is not None:
            old.remove_reader(self._sock)
            old.remove_writer(self._sock)
        self._loop = None

    def _write(self, data: bytes) -> None:
        if self._out:
            self._out += data
            return
        assert self._sock is not None and self._loop is not None
        try:
            n = self._sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            self._lost(f"cannot write to it: {e}")
            return
        if n < len(data):
            self._out += data[n:]
            self._loop.add_writer(self._sock, self._writable)

    def _writable(self) -> None:
        assert self._sock is not None and self._loop is not None
        try:
            n = self._sock.send(self._out)
        except BlockingIOError:
            return
        except OSError as e:
            self._lost(f"cannot write to it: {e}")
            return
        del self._out[:n]
        if not self._out:
            self._loop.remove_writer(self._sock)

    def _readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:
            self._lost(f"cannot read from it: {e}")
            return
        if not data:
            self._lost("it hung up")
            return
        self._unpacker.feed(data)
        for msg in self._unpacker:
            try:
                answered = self._dispatch(msg)
            except (TypeError, ValueError, IndexError, KeyError) as e:
                log.error("malformed message from the launch helper (%s): %.200r", e, msg)
                continue
            if answered is not None:  # outside the try: the answer's own errors are its own
                answered[0](answered[1])

    def _dispatch(self, msg: Any) -> tuple[Answer, Result] | None:
        """Take one message in; a batch's answer and result, to be called."""
        if msg[0] == STARTED:
            results: Result = []
            for r in msg[2]:
                results.append(r if isinstance(r, str) else (int(r[0]), float(r[1])))
            answer, _ = self._batches.pop(msg[1])
            self._children.update(r[0] for r in results if not isinstance(r, str))
            return answer, results
        if msg[0] == EXITED:
            for pid, code in msg[1]:
                self._children.discard(pid)
                self._exited(pid, code)
        elif msg[0] == OOM:
            for pid in msg[1]:
                self._on_oom(int(pid))
        else:
            log.error("unknown message %r from the launch helper", msg[0])
        return None

    def _exited(self, pid: int, code: int | None) -> None:
        fut = self._waiting.pop(pid, None)
        if fut is None:
            self._codes[pid] = code
        elif not fut.done():
            fut.set_result(code)

    def _lost(self, why: str) -> None:
        """The helper is gone: fail its open batches, watch its tasks as strangers."""
        rc = self._proc.poll() if self._proc is not None else None
        log.error("launch helper (pid %s) lost: %s%s", self.pid, why,
                  f" (exit status {rc})" if rc is not None else "")
        self._hang_up()
        self._proc = None  # reaped by now, or by subprocess once it dies
        batches, self._batches = self._batches, {}
        for answer, size in batches.values():
            answer(HelperLost(f"the launch helper died while starting {size} task(s)"))
        children, self._children = self._children, set()
        for pid in children:
            try:
                fd = os.pidfd_open(pid)
            except OSError:  # already gone (and reaped by init)
                self._exited(pid, None)
                continue

            def exited(_: asyncio.Future[int | None], pid: int = pid) -> None:
                self._exited(pid, None)

            watch_stranger(pid, fd).add_done_callback(exited)

    def _hang_up(self) -> None:
        self._unwatch()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._out.clear()

    def close(self) -> None:
        """The agent stops: hang up (the helper exits) and wait for it."""
        self._hang_up()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.wait(CLOSE_WAIT)
        except subprocess.TimeoutExpired:
            log.warning("launch helper (pid %d) did not exit; SIGKILL", proc.pid)
            proc.kill()
            proc.wait()


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
