"""The rest of the v2 API: groups, the SSE event stream, event subscriptions."""
from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from marathon import model, views
from marathon.api import ApiError, body, dr, flag, ok, route
from marathon.groups import group_missing

SSE_HEARTBEAT = 15.0


def group_id(raw: str | None) -> str:
    if not raw:
        return "/"
    errs = [e for e in model.id_errors(raw) if "root" not in e and "at least one" not in e]
    if errs:
        raise ApiError(422, {"message": "Object is not valid",
                             "details": [{"path": "/id", "errors": errs}]})
    return model.normalize_id(raw)


# ---------------------------------------------------------------------- groups


@route("GET", "/v2/groups(?P<id>/.*)?/versions")
async def group_versions(request, svc, p):
    return ok(svc.group_versions(group_id(p["id"])))


@route("GET", "/v2/groups(?P<id>/.*)?/apps")
async def group_apps(request, svc, p):
    gid = group_id(p["id"])
    if not svc.group_exists(gid):
        raise group_missing(gid)
    return ok({"apps": [views.app_info(svc, svc.apps[a], set())
                        for a in sorted(svc._apps_under(gid))]})


@route("GET", "/v2/groups(?P<id>/.*)?")
async def get_group(request, svc, p):
    gid = group_id(p["id"])
    if not svc.group_exists(gid):
        raise group_missing(gid)
    return ok(views.group_tree(svc, gid, views.embeds(request.query.getall("embed", []))))


@route("POST", "/v2/groups(?P<id>/.*)?")
async def create_group(request, svc, p):
    d = svc.create_group(group_id(p["id"]), await body(request), flag(request, "force"))
    resp = dr(d, 201)
    return resp


@route("PUT", "/v2/groups(?P<id>/.*)?/versions/(?P<v>[^/]+)")
async def rollback_group(request, svc, p):
    return dr(svc.update_group(group_id(p["id"]), {"version": p["v"]}, flag(request, "force")))


@route("PUT", "/v2/groups(?P<id>/.*)?")
async def put_group(request, svc, p):
    raw = await body(request)
    if flag(request, "dryRun"):
        return ok({"steps": svc.dry_run(group_id(p["id"]), raw)})
    return dr(svc.update_group(group_id(p["id"]), raw, flag(request, "force")))


@route("DELETE", "/v2/groups(?P<id>/.*)?")
async def delete_group(request, svc, p):
    return dr(svc.delete_group(group_id(p["id"]), flag(request, "force", True)))


# ---------------------------------------------------------------------- events


def _frame(ev: dict[str, Any]) -> bytes:
    return f"event: {ev['eventType']}\ndata: {json.dumps(ev)}\n\n".encode()


@route("GET", "/v2/events")
async def events(request, svc, p):
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
            except asyncio.TimeoutError:
                await resp.write(b"\n")
                continue
            if not wanted or ev["eventType"] in wanted:
                await resp.write(_frame(ev))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        svc.events.unsubscribe(q)
    return resp


@route("GET", "/v2/eventSubscriptions")
async def list_subscriptions(request, svc, p):
    return ok({"callbackUrls": list(svc.subscriptions)})


@route("POST", "/v2/eventSubscriptions")
async def subscribe(request, svc, p):
    url = request.query.get("callbackUrl", "")
    if not url.startswith(("http://", "https://")):
        raise ApiError(422, {"message": "Object is not valid", "details": [
            {"path": "/callbackUrl", "errors": ["must be an http(s) URL"]}]})
    if url not in svc.subscriptions:
        svc.subscriptions.append(url)
        svc._save_meta()
    ev = svc.events.event("subscribe_event", clientIp=request.remote or "", callbackUrl=url)
    svc.events.publish("subscribe_event", clientIp=request.remote or "", callbackUrl=url)
    return ok(ev)


@route("DELETE", "/v2/eventSubscriptions")
async def unsubscribe(request, svc, p):
    url = request.query.get("callbackUrl", "")
    if url in svc.subscriptions:
        svc.subscriptions.remove(url)
        svc._save_meta()
    ev = svc.events.event("unsubscribe_event", clientIp=request.remote or "", callbackUrl=url)
    svc.events.publish("unsubscribe_event", clientIp=request.remote or "", callbackUrl=url)
    return ok(ev)
