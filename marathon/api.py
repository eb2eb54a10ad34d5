"""`make_app(service)`: the Marathon v2 REST API as an aiohttp Application.

Paths are matched after collapsing repeated slashes (marathon-python sends
`/v2/apps//name`), app ids may contain `/`, so the router peels reserved suffixes
(`/restart`, `/tasks[/<id>]`, `/versions[/<v>]`) off the end. Handlers are thin: parse,
call the service, shape the answer. Bad input gets Marathon's status and JSON error body;
an unexpected exception is logged and answered 500, the server goes on.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Awaitable, Callable

from aiohttp import web

from marathon import model, views
from marathon.apps import ApiError
from marathon.model import ValidationFailed
from marathon.service import MarathonService

log = logging.getLogger("marathon.api")
SERVICE = web.AppKey("service", MarathonService)
Handler = Callable[[web.Request, MarathonService, dict[str, str]], Awaitable[web.StreamResponse]]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []
_LAST: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str, last: bool = False) -> Callable[[Handler], Handler]:
    """Register a handler; `last` ones are tried after all others (catch-all app ids)."""
    def deco(fn: Handler) -> Handler:
        (_LAST if last else ROUTES).append((method, re.compile(f"^{pattern}$"), fn))
        return fn
    return deco


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    return v.strip().lower() in ("true", "1", "yes")


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def dr(d: Any, status: int = 200) -> web.Response:
    if d is None:
        return ok({}, status)
    return ok({"deploymentId": d.id, "version": d.version}, status,
              {"Marathon-Deployment-Id": d.id})


async def body(request: web.Request) -> Any:
    text = await request.text()
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, absurd nesting
        raise ApiError(400, {"message": "Invalid JSON", "details": str(e) or type(e).__name__}) \
            from None


def app_id(raw: str) -> str:
    errs = model.id_errors(raw)
    if errs:
        raise ApiError(422, {"message": "Object is not valid",
                             "details": [{"path": "/id", "errors": errs}]})
    return model.normalize_id(raw)


# ---------------------------------------------------------------------- system


@route("GET", "/ping")
async def ping(request, svc, p):
    if "application/json" in request.headers.get("Accept", ""):
        return ok("pong")
    return web.Response(text="pong")


@route("GET", "/metrics")
async def metrics(request, svc, p):
    return ok({"version": "1.10.26", "counters": {"events.published": {
        "count": svc.events.published}}, "gauges": {
        "apps.active": {"value": len(svc.apps)}, "tasks.active": {"value": len(svc.tasks)},
        "deployments.active": {"value": len(svc.deployments)},
        "offers.processed": {"value": svc.offers_seen},
        "offers.declined": {"value": svc.offers_declined}},
        "histograms": {}, "meters": {}, "timers": {}})


@route("GET", "/v2/info")
async def info(request, svc, p):
    return ok(views.info(svc))


@route("GET", "/v2/leader")
async def leader(request, svc, p):
    return ok({"leader": svc.leader})


@route("DELETE", "/v2/leader")
async def abdicate(request, svc, p):
    return ok({"message": "Leadership abdicated"})


# ---------------------------------------------------------------------- apps


@route("GET", "/v2/apps")
async def list_apps(request, svc, p):
    q = request.query
    return ok({"apps": svc.list_apps(q.get("cmd"), q.get("id"), q.get("label"),
                                     q.getall("embed", []))})


@route("POST", "/v2/apps")
async def create_app(request, svc, p):
    app, d = svc.create_app(await body(request), flag(request, "force"))
    info = views.app_info(svc, app, set())
    info.pop("versionInfo", None)
    svc.events.publish("api_post_event", clientIp=request.remote or "", uri=request.path,
                       appDefinition=app)
    return ok(info, 201, {"Location": f"/v2/apps{app['id']}", "Marathon-Deployment-Id": d.id})


@route("PUT", "/v2/apps")
async def put_apps(request, svc, p):
    return dr(svc.update_apps(await body(request), flag(request, "force"),
                              flag(request, "partialUpdate", True)))


@route("PATCH", "/v2/apps")
async def patch_apps(request, svc, p):
    raws = await body(request)
    if isinstance(raws, list):
        for raw in raws:
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                svc.get_app(app_id(raw["id"]))
    return dr(svc.update_apps(raws, flag(request, "force"), True))


@route("GET", "/v2/apps/(?P<id>.+)/\\*")
async def group_apps(request, svc, p):
    prefix = app_id(p["id"]).rstrip("/") + "/"
    emb = views.embeds(["tasks"] + request.query.getall("embed", []))
    return ok({"*": [views.app_info(svc, a, emb) for k, a in sorted(svc.apps.items())
                     if k.startswith(prefix)]})


@route("GET", "/v2/apps/(?P<id>.+)", last=True)
async def get_app(request, svc, p):
    emb = views.embeds(["tasks", "lastTaskFailure"] + request.query.getall("embed", []))
    return ok({"app": views.app_info(svc, svc.get_app(app_id(p["id"])), emb)})


@route("PUT", "/v2/apps/(?P<id>.+)", last=True)
async def put_app(request, svc, p):
    aid = app_id(p["id"])
    created, d = svc.update_app(aid, await body(request), flag(request, "force"),
                                flag(request, "partialUpdate", True))
    svc.events.publish("api_post_event", clientIp=request.remote or "", uri=request.path,
                       appDefinition=svc.apps[aid])
    resp = dr(d, 201 if created else 200)
    if created:
        resp.headers["Location"] = f"/v2/apps{aid}"
    return resp


@route("PATCH", "/v2/apps/(?P<id>.+)", last=True)
async def patch_app(request, svc, p):
    aid = app_id(p["id"])
    svc.get_app(aid)
    return dr(svc.update_app(aid, await body(request), flag(request, "force"), True)[1])


@route("DELETE", "/v2/apps/(?P<id>.+)", last=True)
async def delete_app(request, svc, p):
    return dr(svc.delete_app(app_id(p["id"]), flag(request, "force", True)))


@route("POST", "/v2/apps/(?P<id>.+)/restart")
async def restart_app(request, svc, p):
    return dr(svc.restart_app(app_id(p["id"]), flag(request, "force")))


@route("GET", "/v2/apps/(?P<id>.+)/versions")
async def versions(request, svc, p):
    return ok({"versions": svc.app_versions(app_id(p["id"]))})


@route("GET", "/v2/apps/(?P<id>.+)/versions/(?P<v>[^/]+)")
async def version(request, svc, p):
    return ok(svc.app_version(app_id(p["id"]), p["v"]))


@route("GET", "/v2/apps/(?P<id>.+)/tasks")
async def app_tasks(request, svc, p):
    aid = app_id(p["id"])
    svc.get_app(aid)
    return ok({"tasks": [views.task_json(svc, t) for t in svc.tasks_of(aid)]})


def _kill_answer(request, svc, killed, d, single: bool):
    if flag(request, "scale"):
        return dr(d)
    if single:
        return ok({"task": views.task_json(svc, killed[0])})
    return ok({"tasks": [views.task_json(svc, t) for t in killed]})


def _scale_or_wipe(request) -> None:
    if flag(request, "scale") and flag(request, "wipe"):
        raise ApiError(400, {"message": "You cannot use scale and wipe at the same time."})


@route("DELETE", "/v2/apps/(?P<id>.+)/tasks")
async def kill_app_tasks(request, svc, p):
    aid = app_id(p["id"])
    svc.get_app(aid)
    _scale_or_wipe(request)
    host = request.query.get("host")
    ids = [t.id for t in svc.tasks_of(aid) if host in (None, "*", t.host)]
    killed, d = svc.kill_tasks(ids, flag(request, "scale"), flag(request, "force"))
    return _kill_answer(request, svc, killed, d, False)


@route("DELETE", "/v2/apps/(?P<id>.+)/tasks/(?P<task>[^/]+)")
async def kill_app_task(request, svc, p):
    aid = app_id(p["id"])
    svc.get_app(aid)
    _scale_or_wipe(request)
    t = svc.tasks.get(p["task"])
    if t is None or t.app_id != aid:
        raise ApiError(404, {"message": f"Task '{p['task']}' does not exist"})
    killed, d = svc.kill_tasks([t.id], flag(request, "scale"), flag(request, "force"))
    return _kill_answer(request, svc, killed, d, True)


# ---------------------------------------------------------------------- tasks


@route("GET", "/v2/tasks")
async def all_tasks(request, svc, p):
    wanted = {s.lower() for s in request.query.getall("status", [])
              + request.query.getall("status[]", [])}
    states = {"running": {"TASK_RUNNING"}, "staging": {"TASK_STAGING", "TASK_STARTING"}}
    keep = set().union(*(states.get(s, set()) for s in wanted)) if wanted else None
    return ok({"tasks": [views.task_json(svc, t) for t in svc.tasks.values()
                         if keep is None or t.state in keep]})


@route("POST", "/v2/tasks/delete")
async def delete_tasks(request, svc, p):
    raw = await body(request)
    ids = raw.get("ids") if isinstance(raw, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ApiError(400, {"message": "Invalid JSON", "details": [
            {"path": "/ids", "errors": ["error.expected.jsarray of task ids"]}]})
    for i in ids:
        if model.app_of_task(i) is None:
            raise ApiError(400, {"message": f"Invalid task id '{i}'. "
                                            f"[taskId {i} no valid identifier]"})
    killed, d = svc.kill_tasks(ids, flag(request, "scale"), flag(request, "force"))
    return _kill_answer(request, svc, killed, d, False)


# ---------------------------------------------------------------------- deployments, queue


@route("GET", "/v2/deployments")
async def deployments(request, svc, p):
    return ok([views.deployment_json(d) for d in svc.deployments.values()])


@route("DELETE", "/v2/deployments/(?P<id>[^/]+)")
async def cancel_deployment(request, svc, p):
    force = flag(request, "force")
    d = svc.cancel_deployment(p["id"], force)
    if force:
        return web.Response(status=202)
    return dr(d)


@route("GET", "/v2/queue")
async def queue(request, svc, p):
    return ok({"queue": svc.queue("lastUnusedOffers" in request.query.getall("embed", []))})


@route("DELETE", "/v2/queue/(?P<id>.+)/delay")
async def reset_delay(request, svc, p):
    svc.reset_delay(app_id(p["id"]))
    return web.Response(status=204)


# ---------------------------------------------------------------------- dispatch


async def dispatch(request: web.Request) -> web.StreamResponse:
    return await handle(request.app[SERVICE], request)


async def handle(svc: MarathonService, request: web.Request) -> web.StreamResponse:
    """Answer `request` from `svc` (the HA front calls this with its term's service)."""
    path = re.sub("/+", "/", request.path)
    if len(path) > 1:
        path = path.rstrip("/")
    allowed = False
    for method, rx, handler in ROUTES + _LAST:
        mt = rx.match(path)
        if not mt:
            continue
        if method != request.method:
            allowed = True
            continue
        try:
            resp = await handler(request, svc, mt.groupdict())
            if request.method != "GET":  # a change is durable before the client hears of it
                await svc.flush_async()
            return resp
        except ApiError as e:
            return ok(e.body, e.status) if e.body is not None else web.Response(status=e.status)
        except ValidationFailed as e:
            return ok({"message": e.message, "details": e.details}, 422)
        except (asyncio.CancelledError, web.HTTPException):
            raise
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return ok({"message": "internal server error"}, 500)
    if allowed:
        return ok({"message": "HTTP 405 Method Not Allowed"}, 405)
    return ok({"message": "URI not found"}, 404)


def make_app(service: MarathonService) -> web.Application:
    """The API around `service`; no IO happens until a runner binds it."""
    from marathon import api_extra  # noqa: F401  (groups, events, subscriptions routes)
    app = web.Application(client_max_size=16 * 2**20)
    app[SERVICE] = service
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
