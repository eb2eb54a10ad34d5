"""`/v2/apps`: list, create, update (one or many), delete, restart, versions.

The routes by app id come last: an id may contain `/`, so they would match every
longer path under `/v2/apps/`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from marathon import queries, views
from marathon.http.base import app_id, body, deployment_answer, embed, flag, ok, route

if TYPE_CHECKING:
    from marathon.server import MarathonServer


async def list_apps(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    q = request.query
    return ok({"apps": queries.list_apps(svc.state, q.get("cmd"), q.get("id"), q.get("label"),
                                     embed(request))})


async def create_app(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    app, d = svc.create_app(await body(request), flag(request, "force"))
    info = views.app_info(svc.state, app, set())
    info.pop("versionInfo", None)
    svc.events.publish("api_post_event", clientIp=request.remote or "", uri=request.path,
                       appDefinition=app)
    return ok(info, 201, {"Location": f"/v2/apps{app['id']}", "Marathon-Deployment-Id": d.id})


async def put_apps(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    return deployment_answer(svc.update_apps(await body(request), flag(request, "force"),
                                             flag(request, "partialUpdate", True)))


async def patch_apps(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    raws = await body(request)
    if isinstance(raws, list):
        for raw in raws:
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                queries.get_app(svc.state, app_id(raw["id"]))
    return deployment_answer(svc.update_apps(raws, flag(request, "force"), True))


async def apps_under(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    prefix = app_id(p["id"]).rstrip("/") + "/"
    emb = views.embeds(["tasks"] + embed(request))
    return ok({"*": [views.app_info(svc.state, a, emb) for k, a in sorted(svc.state.apps.items())
                     if k.startswith(prefix)]})


async def restart_app(request: web.Request, svc: MarathonServer,
                      p: dict[str, str]) -> web.Response:
    return deployment_answer(svc.restart_app(app_id(p["id"]), flag(request, "force")))


async def versions(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    return ok({"versions": queries.app_versions(svc.state, app_id(p["id"]))})


async def version(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    return ok(queries.app_version(svc.state, app_id(p["id"]), p["v"]))


async def get_app(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    emb = views.embeds(["tasks", "lastTaskFailure"] + embed(request))
    return ok({"app": views.app_info(svc.state, queries.get_app(svc.state, app_id(p["id"])), emb)})


async def put_app(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    aid = app_id(p["id"])
    created, d = svc.update_app(aid, await body(request), flag(request, "force"),
                                flag(request, "partialUpdate", True))
    svc.events.publish("api_post_event", clientIp=request.remote or "", uri=request.path,
                       appDefinition=svc.state.apps[aid])
    resp = deployment_answer(d, 201 if created else 200)
    if created:
        resp.headers["Location"] = f"/v2/apps{aid}"
    return resp


async def patch_app(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    aid = app_id(p["id"])
    queries.get_app(svc.state, aid)
    return deployment_answer(
        svc.update_app(aid, await body(request), flag(request, "force"), True)[1])


async def delete_app(request: web.Request, svc: MarathonServer, p: dict[str, str]) -> web.Response:
    return deployment_answer(svc.delete_app(app_id(p["id"]), flag(request, "force", True)))


ID = "/v2/apps/(?P<id>.+)"
ROUTES = (
    route("GET", "/v2/apps", list_apps),
    route("POST", "/v2/apps", create_app),
    route("PUT", "/v2/apps", put_apps),
    route("PATCH", "/v2/apps", patch_apps),
    route("GET", f"{ID}/\\*", apps_under),
    route("POST", f"{ID}/restart", restart_app),
    route("GET", f"{ID}/versions", versions),
    route("GET", f"{ID}/versions/(?P<v>[^/]+)", version),
    route("GET", ID, get_app),
    route("PUT", ID, put_app),
    route("PATCH", ID, patch_app),
    route("DELETE", ID, delete_app),
)
