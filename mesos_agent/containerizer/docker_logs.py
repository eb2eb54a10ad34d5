"""Containers' output copied into their sandboxes' `stdout` and `stderr` files by one task for
all of them, not a stream per container: every second it looks at each running container's
log file (a `stat` of the engine's json-file log; containers whose log it cannot see are asked
on a backoff from 1 s to 30 s while quiet) and fetches what is new through the logs API with
`since` the last line copied. A container's last output is copied when it ends (`flush`).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import aclosing
from datetime import UTC, datetime

from attrs import define

from mesos_agent.containerizer.docker_engine import STDERR, Engine, EngineError

log = logging.getLogger(__name__)

POLL = 1.0
QUIET_MAX = 30.0
IN_FLIGHT = 8  # log fetches at once


def timestamp_ns(stamp: bytes) -> int:
    """RFC3339Nano (`2026-12-07T03:09:51.1234Z`, as the engine prefixes lines) -> ns."""
    text = stamp.decode("ascii").rstrip("Z")
    whole, _, frac = text.partition(".")
    base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(base.timestamp()) * 10**9 + int((frac + "000000000")[:9])


def since_param(ns: int) -> str | None:
    return f"{ns // 10**9}.{ns % 10**9:09d}" if ns > 0 else None


@define
class Cursor:
    """Where one container's copy stands: the timestamp of the last line written."""

    sandbox: str
    since_ns: int = 0
    log_path: str = ""  # the engine's json-file log, to see cheaply whether anything is new
    seen_size: int = -1  # the log's size when it was last copied
    size: int = -1  # its size now
    quiet: float = POLL  # poll interval while nothing new comes (no log_path to stat)
    due: float = 0.0


def write_frames(cursor: Cursor, frames: list[tuple[int, bytes]]) -> None:
    """Append lines newer than the cursor to the sandbox files; advance the cursor."""
    out: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    last = cursor.since_ns
    for stream, payload in frames:
        stamp, _, line = payload.partition(b" ")
        try:
            ns = timestamp_ns(stamp)
        except ValueError:
            continue
        if ns <= cursor.since_ns:  # `since` is inclusive: already written
            continue
        out["stderr" if stream == STDERR else "stdout"].append(line)
        last = max(last, ns)
    for name, lines in out.items():
        if lines:
            with open(os.path.join(cursor.sandbox, name), "ab") as f:
                f.write(b"".join(lines))
    cursor.since_ns = last


def start_ns(sandbox: str) -> int:
    """For a container reattached after a restart: output up to the sandbox files' last
    write was copied by the previous agent process."""
    try:
        return max(os.stat(os.path.join(sandbox, f)).st_mtime_ns for f in ("stdout", "stderr"))
    except OSError:
        return time.time_ns()


class LogCopier:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cursors: dict[str, Cursor] = {}
        self._slots = asyncio.Semaphore(IN_FLIGHT)

    def add(self, cid: str, sandbox: str, since_ns: int = 0, log_path: str = "") -> None:
        """Copy this container's output from `since_ns` on; the sandbox files exist from now
        on, as a process task's do."""
        for name in ("stdout", "stderr"):
            with open(os.path.join(sandbox, name), "ab"):
                pass
        self.cursors[cid] = Cursor(sandbox, since_ns, log_path)

    async def flush(self, cid: str) -> None:
        """Copy what is left of an ended container's output, then forget it."""
        cursor = self.cursors.get(cid)
        if cursor is not None:
            await self._copy(cid, cursor)
            self.cursors.pop(cid, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL)
            now = time.monotonic()
            due = [(cid, c) for cid, c in list(self.cursors.items()) if self._changed(c, now)]
            if due:
                await asyncio.gather(*(self._copy(cid, c) for cid, c in due))

    def _changed(self, c: Cursor, now: float) -> bool:
        if c.log_path:
            try:
                size = os.stat(c.log_path).st_size
            except OSError:
                c.log_path = ""  # cannot see it (another driver, no permission): poll instead
            else:
                c.size = size
                return size != c.seen_size
        return now >= c.due

    async def _copy(self, cid: str, c: Cursor) -> None:
        before = c.since_ns
        async with self._slots:
            try:
                async with aclosing(self.engine.logs(cid, since_param(c.since_ns))) as batches:
                    async for frames in batches:
                        write_frames(c, frames)
            except EngineError as e:
                log.debug("container %s: logs: %s", cid[:12], e.message)
            except OSError as e:
                log.warning("container %s: cannot write its output to %s: %s", cid[:12],
                            c.sandbox, e)
            else:
                c.seen_size = c.size
        c.quiet = POLL if c.since_ns != before else min(QUIET_MAX, c.quiet * 2)
        c.due = time.monotonic() + c.quiet
