"""The event bus behind `/v2/events`: bounded per-subscriber queues, nothing blocks.

A slow SSE client loses events (its queue is bounded) rather than slowing Marathon down.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from marathon.model import timestamp

log = logging.getLogger("marathon.events")
QUEUE_LIMIT = 1000


class EventBus:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.published = 0

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(q)

    def event(self, event_type: str, **payload: Any) -> dict[str, Any]:
        return dict(payload, eventType=event_type, timestamp=timestamp(self._clock()))

    def publish(self, event_type: str, **payload: Any) -> None:
        ev = self.event(event_type, **payload)
        self.published += 1
        for q in list(self._subscribers):
            try:
                q.put_nowait(ev)
            except asyncio.QueueFull:
                log.warning("event subscriber too slow; dropping %s", event_type)
