"""`/v2/events` (the SSE stream) and `/v2/eventSubscriptions` (HTTP callback URLs)."""
from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from marathon.errors import ApiError
from marathon.http.base import ok, route

if TYPE_CHECKING:
    from marathon.server import MarathonServer

SSE_HEARTBEAT = 15.0


def _frame(ev: dict[str, Any]) -> bytes:
    return f"event: {ev['eventType']}\ndata: {json.dumps(ev)}\n\n".encode()


async def events(request: web.Request, svc: MarathonServer,
                 p: dict[str, str]) -> web.StreamResponse:
    if "text/event-stream" not in request.headers.get("Accept", "text/event-stream"):
        raise ApiError(405, {"message": "Accept: text/event-stream required"})
    wanted = set(request.query.getall("event_type", []))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    q = svc.events.subscribe()
    try:
        attached = svc.events.event("event_stream_attached", remoteAddress=request.remote or "")
        if not wanted or "event_stream_attached" in wanted:
            await resp.write(_frame(attached))
        while True:
            try:
                ev = await asyncio.wait_for(q.get(), SSE_HEARTBEAT)
            except TimeoutError:
                await resp.write(b"\n")
                continue
            if not wanted or ev["eventType"] in wanted:
                await resp.write(_frame(ev))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        svc.events.unsubscribe(q)
    return resp


async def list_subscriptions(request: web.Request, svc: MarathonServer, p: dict[str, str]
                             ) -> web.Response:
    return ok({"callbackUrls": list(svc.state.subscriptions)})


def _answer(request: web.Request, svc: MarathonServer, kind: str, url: str) -> web.Response:
    ev = svc.events.event(kind, clientIp=request.remote or "", callbackUrl=url)
    svc.events.publish(kind, clientIp=request.remote or "", callbackUrl=url)
    return ok(ev)


async def subscribe(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    url = request.query.get("callbackUrl", "")
    if not url.startswith(("http://", "https://")):
        raise ApiError(422, {"message": "Object is not valid", "details": [
            {"path": "/callbackUrl", "errors": ["must be an http(s) URL"]}]})
    svc.add_subscription(url)
    return _answer(request, svc, "subscribe_event", url)


async def unsubscribe(request: web.Request, svc: MarathonServer,
                      p: dict[str, str]) -> web.Response:
    url = request.query.get("callbackUrl", "")
    svc.remove_subscription(url)
    return _answer(request, svc, "unsubscribe_event", url)


ROUTES = (
    route("GET", "/v2/events", events),
    route("GET", "/v2/eventSubscriptions", list_subscriptions),
    route("POST", "/v2/eventSubscriptions", subscribe),
    route("DELETE", "/v2/eventSubscriptions", unsubscribe),
)
