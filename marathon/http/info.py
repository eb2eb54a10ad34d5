"""`/ping`, `/metrics`, `/v2/info` and `/v2/leader` as the leader answers them (a standby's
answers are marathon/proxy.py's)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from marathon import views
from marathon.http.base import ok, route


async def ping(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    if "application/json" in request.headers.get("Accept", ""):
        return ok("pong")
    return web.Response(text="pong")


async def metrics(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    return ok({"version": "1.10.26", "counters": {"events.published": {
        "count": svc.events.published}}, "gauges": {
        "apps.active": {"value": len(svc.state.apps)}, "tasks.active": {"value": len(svc.state.tasks)},
        "deployments.active": {"value": len(svc.state.deployments)},
        "offers.processed": {"value": svc.state.offers_seen},
        "offers.declined": {"value": svc.state.offers_declined}},
        "histograms": {}, "meters": {}, "timers": {}})


async def info(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    return ok(views.info(svc.state, svc.options, svc.leader))


async def leader(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    return ok({"leader": svc.leader})


async def abdicate(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    return ok({"message": "Leadership abdicated"})


ROUTES = (
    route("GET", "/ping", ping),
    route("GET", "/metrics", metrics),
    route("GET", "/v2/info", info),
    route("GET", "/v2/leader", leader),
    route("DELETE", "/v2/leader", abdicate),
)
