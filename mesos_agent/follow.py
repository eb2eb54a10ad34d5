"""`/files/read?follow=true`: a sandbox file streamed as it grows, as `tail -f` shows it.

One `FollowHub` per agent serves every follower from one ticker: each tick it wakes all
followers, each checks its file's size with one `stat` and writes what was added; the set of
live sandboxes (tasks not yet terminal, read from the agent's `/state` document) is rebuilt
at most once per `LIVENESS_EVERY`, however many follow. So hundreds of followers cost a stat
each per tick and no thread. A stream ends when its task has ended and the file is drained,
when the client goes away, or when the agent stops.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

TICK = 0.25  # seconds between size checks
LIVENESS_EVERY = 1.0  # seconds between rebuilds of the live-sandbox set
CHUNK = 64 * 1024  # bytes read and written at a time


def live_sandboxes(state: dict[str, Any]) -> set[str]:
    """Real paths of the sandboxes whose task is not terminal (executors of live frameworks
    that still list a task: completed ones move to `completed_executors`)."""
    out = set()
    for fw in state.get("frameworks", []):
        for ex in fw.get("executors", []):
            if ex.get("tasks") and ex.get("directory"):
                out.add(os.path.realpath(ex["directory"]))
    return out


class FollowHub:
    def __init__(self, get_state: Callable[[], dict[str, Any]], tick: float = TICK) -> None:
        self._get_state = get_state
        self._tick = tick
        self._wake = asyncio.Condition()
        self._followers = 0
        self._ticker: asyncio.Task[None] | None = None
        self._live: set[str] = set()
        self._live_at = -float("inf")

    @property
    def followers(self) -> int:
        return self._followers

    def alive(self, real: str) -> bool:
        now = time.monotonic()
        if now - self._live_at >= LIVENESS_EVERY:
            try:
                self._live = live_sandboxes(self._get_state())
            except Exception:  # no core yet (starting): keep following
                return True
            self._live_at = now
        return any(real == d or real.startswith(d + "/") for d in self._live)

    async def close(self) -> None:
        """The app's cleanup: stop the ticker (streams end with their connections)."""
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None

    async def _run(self) -> None:
        while self._followers:
            await asyncio.sleep(self._tick)
            async with self._wake:
                self._wake.notify_all()
        self._ticker = None

    async def stream(self, request: web.Request, real: str, offset: int) -> web.StreamResponse:
        """Write the file from `offset` (clamped to its size; -1: its end) and follow it."""
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8",
                                           "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        size = os.stat(real).st_size
        pos = size if offset == -1 else min(offset, size)
        resp.headers["X-Offset"] = str(pos)
        await resp.prepare(request)
        self._followers += 1
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._run())
        try:
            with open(real, "rb") as f:
                while True:
                    ended = not self.alive(real)  # before the read: a last line is not lost
                    pos = await _drain(f, pos, resp)
                    transport = request.transport
                    if ended or transport is None or transport.is_closing():
                        break
                    async with self._wake:
                        await self._wake.wait()
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away
        finally:
            self._followers -= 1
        return resp


async def _drain(f: Any, pos: int, resp: web.StreamResponse) -> int:
    """Write everything from `pos` to the current end of the file; the new position."""
    size = os.fstat(f.fileno()).st_size
    if size < pos:  # truncated (log rotation by copy-truncate): start over
        pos = 0
    while pos < size:
        f.seek(pos)
        data = f.read(min(CHUNK, size - pos))
        if not data:
            break
        await resp.write(data)
        pos += len(data)
    return pos
