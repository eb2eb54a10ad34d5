"""HTTP callback event subscribers (`/v2/eventSubscriptions`, Marathon <= 1.4): the IO edge.

Every event on the bus is POSTed as JSON to each registered callback URL. A subscriber
that fails or is slow only loses its own events: posts have a short timeout and run
concurrently, and the bus queue is bounded.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from marathon.server import MarathonServer

log = logging.getLogger("marathon.subscribers")


async def _post(session: aiohttp.ClientSession, url: str, ev: dict[str, Any]) -> None:
    try:
        async with session.post(url, json=ev) as r:
            if r.status >= 400:
                log.warning("event callback %s answered %s", url, r.status)
    except (TimeoutError, OSError, aiohttp.ClientError) as e:
        log.warning("event callback %s failed: %s", url, e)


async def deliver(svc: MarathonServer, timeout: float = 5.0) -> None:
    q = svc.events.subscribe(active=lambda: bool(svc.state.subscriptions))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            while True:
                ev = await q.get()
                urls = list(svc.state.subscriptions)
                if urls:
                    async with asyncio.TaskGroup() as tg:
                        for url in urls:
                            tg.create_task(_post(s, url, ev))
    finally:
        svc.events.unsubscribe(q)
