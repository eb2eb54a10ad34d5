"""`/v2/groups`: the group tree, its versions, create/update/rollback/scale/delete."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from marathon import model, queries, views
from marathon.errors import ApiError, group_missing
from marathon.http.base import body, deployment_answer, embed, flag, ok, route


def group_id(raw: str | None) -> str:
    if not raw:
        return "/"
    errs = [e for e in model.id_errors(raw) if "root" not in e and "at least one" not in e]
    if errs:
        raise ApiError(422, {"message": "Object is not valid",
                             "details": [{"path": "/id", "errors": errs}]})
    return model.normalize_id(raw)


async def group_versions(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    return ok(queries.group_versions(svc.state, group_id(p["id"])))


async def group_apps(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    gid = group_id(p["id"])
    if not svc.state.group_exists(gid):
        raise group_missing(gid)
    return ok({"apps": [views.app_info(svc.state, svc.state.apps[a], set())
                        for a in sorted(svc.state.apps_under(gid))]})


async def get_group(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    gid = group_id(p["id"])
    if not svc.state.group_exists(gid):
        raise group_missing(gid)
    return ok(views.group_tree(svc.state, gid, views.embeds(embed(request))))


async def create_group(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    d = svc.create_group(group_id(p["id"]), await body(request), flag(request, "force"))
    return deployment_answer(d, 201)


async def rollback_group(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    return deployment_answer(svc.update_group(group_id(p["id"]), {"version": p["v"]},
                                              flag(request, "force")))


async def put_group(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    raw = await body(request)
    if flag(request, "dryRun"):
        return ok({"steps": svc.dry_run(group_id(p["id"]), raw)})
    return deployment_answer(svc.update_group(group_id(p["id"]), raw, flag(request, "force")))


async def delete_group(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    return deployment_answer(svc.delete_group(group_id(p["id"]),
                                              flag(request, "force", True)))


ID = "/v2/groups(?P<id>/.*)?"
ROUTES = (
    route("GET", f"{ID}/versions", group_versions),
    route("GET", f"{ID}/apps", group_apps),
    route("GET", ID, get_group),
    route("POST", ID, create_group),
    route("PUT", f"{ID}/versions/(?P<v>[^/]+)", rollback_group),
    route("PUT", ID, put_group),
    route("DELETE", ID, delete_group),
)
