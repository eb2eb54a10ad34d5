"""`/ping`, `/metrics`, `/v2/info`, `/v2/leader` and `/v2/openapi.json` as the leader
answers them (a standby's answers are marathon/proxy.py's)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from marathon import openapi, views
from marathon.http.base import ok, route

if TYPE_CHECKING:
    from marathon.server import MarathonServer


async def ping(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    if "application/json" in request.headers.get("Accept", ""):
        return ok("pong")
    return web.Response(text="pong")


async def metrics(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    st = svc.state
    return ok({"version": "1.10.26", "counters": {"events.published": {
        "count": svc.events.published}}, "gauges": {
        "apps.active": {"value": len(st.apps)}, "tasks.active": {"value": len(st.tasks)},
        "deployments.active": {"value": len(st.deployments)},
        "offers.processed": {"value": st.offers_seen},
        "offers.declined": {"value": st.offers_declined}},
        "histograms": {}, "meters": {}, "timers": {}})


async def info(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    return ok(views.info(svc.state, svc.options, svc.leader))


async def leader(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    return ok({"leader": svc.leader})


async def abdicate(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    return ok({"message": "Leadership abdicated"})


async def openapi_document(request: web.Request, svc: MarathonServer,
                           p: dict[str, str]) -> web.Response:
    return ok(openapi.document())


ROUTES = (
    route("GET", "/ping", ping),
    route("GET", "/metrics", metrics),
    route("GET", "/v2/info", info),
    route("GET", "/v2/leader", leader),
    route("DELETE", "/v2/leader", abdicate),
    route("GET", "/v2/openapi.json", openapi_document),
)
