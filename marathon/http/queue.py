"""`/v2/queue`: the apps waiting for launches, and resetting an app's launch delay."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from marathon.http.base import app_id, embed, ok, route


async def queue(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    return ok({"queue": svc.queue("lastUnusedOffers" in embed(request))})


async def reset_delay(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    svc.reset_delay(app_id(p["id"]))
    return web.Response(status=204)


ROUTES = (
    route("GET", "/v2/queue", queue),
    route("DELETE", "/v2/queue/(?P<id>.+)/delay", reset_delay),
)
