"""A kazoo client whose reports reach an asyncio loop.

kazoo calls its session listeners and watches on its own threads; both ZooKeeper elections
(the masters', mesos_master/election.py, and the Marathons', marathon/leadership.py) hand
every report to their loop with `call_soon_threadsafe`, so their daemons only ever see them
on the loop thread. Session states: "CONNECTED", "SUSPENDED" (connection lost, the session
may live on), "LOST" (expired).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mesos_common.zk_bridge")


class LoopBridge:
    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop,
                 on_session: Callable[[str], None]) -> None:
        self.client = client
        self._loop = loop
        self._on_session = on_session
        self._closed = False

    def listen(self) -> None:
        """Register the session listener once (a restarted client keeps it)."""
        if self._listener not in self.client.state_listeners:
            self.client.add_listener(self._listener)

    def _listener(self, state: str) -> None:
        """Session listener (kazoo thread): must not block, so just hand it over."""
        self._post(self._on_session, str(state))

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if self._closed:
            return
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed: shutting down
            pass

    def close(self) -> None:
        """Stop the client (deleting our ephemeral znodes hands leadership over quickly)."""
        self._closed = True
        try:
            self.client.stop()
            self.client.close()
        except Exception:
            log.debug("closing the ZooKeeper client failed", exc_info=True)
