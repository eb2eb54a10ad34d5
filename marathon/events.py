"""The event bus behind `/v2/events`: bounded per-subscriber queues, nothing blocks.

A slow SSE client loses events (its queue is bounded) rather than slowing Marathon down.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from marathon.model import timestamp

log = logging.getLogger("marathon.events")
QUEUE_LIMIT = 1000


class EventBus:
    def __init__(self, clock: Callable[[], float],
                 on_streams: Callable[[int], None] | None = None) -> None:
        self._clock = clock
        self._on_streams = on_streams  # told how many unconditional subscribers there are
        self._subscribers: dict[asyncio.Queue[dict[str, Any]],
                                Callable[[], bool] | None] = {}
        self.published = 0

    def subscribe(self, active: Callable[[], bool] | None = None
                  ) -> asyncio.Queue[dict[str, Any]]:
        """A queue of events; `active()` False: skip it for now (the callback poster with
        no callback URLs), so that with nobody listening no event is even built."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers[q] = active
        self._streams_changed()
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.pop(q, None)
        self._streams_changed()

    def _streams_changed(self) -> None:
        if self._on_streams is not None:
            self._on_streams(sum(a is None for a in self._subscribers.values()))

    def event(self, event_type: str, **payload: Any) -> dict[str, Any]:
        return dict(payload, eventType=event_type, timestamp=timestamp(self._clock()))

    def publish(self, event_type: str, **payload: Any) -> None:
        self.published += 1
        targets = [q for q, active in self._subscribers.items() if active is None or active()]
        if not targets:
            return
        ev = self.event(event_type, **payload)
        for q in targets:
            try:
                q.put_nowait(ev)
            except asyncio.QueueFull:
                log.warning("event subscriber too slow; dropping %s", event_type)
