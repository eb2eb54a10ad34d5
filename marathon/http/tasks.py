"""`/v2/tasks` and an app's `/v2/apps/<id>/tasks`: list and kill (optionally scaling down)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from marathon import model, queries, views
from marathon.errors import ApiError
from marathon.http.base import app_id, body, deployment_answer, flag, ok, route


def _kill_answer(request: web.Request, svc: Any, killed: list[Any], d: Any,
                 single: bool) -> web.Response:
    if flag(request, "scale"):
        return deployment_answer(d)
    if single:
        return ok({"task": views.task_json(svc.state, killed[0])})
    return ok({"tasks": [views.task_json(svc.state, t) for t in killed]})


def _scale_or_wipe(request: web.Request) -> None:
    if flag(request, "scale") and flag(request, "wipe"):
        raise ApiError(400, {"message": "You cannot use scale and wipe at the same time."})


async def app_tasks(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    aid = app_id(p["id"])
    queries.get_app(svc.state, aid)
    return ok({"tasks": [views.task_json(svc.state, t) for t in svc.state.tasks_of(aid)]})


async def kill_app_tasks(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    aid = app_id(p["id"])
    queries.get_app(svc.state, aid)
    _scale_or_wipe(request)
    host = request.query.get("host")
    ids = [t.id for t in svc.state.tasks_of(aid) if host in (None, "*", t.host)]
    killed, d = svc.kill_tasks(ids, flag(request, "scale"), flag(request, "force"))
    return _kill_answer(request, svc, killed, d, False)


async def kill_app_task(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    aid = app_id(p["id"])
    queries.get_app(svc.state, aid)
    _scale_or_wipe(request)
    t = svc.state.tasks.get(p["task"])
    if t is None or t.app_id != aid:
        raise ApiError(404, {"message": f"Task '{p['task']}' does not exist"})
    killed, d = svc.kill_tasks([t.id], flag(request, "scale"), flag(request, "force"))
    return _kill_answer(request, svc, killed, d, True)


async def all_tasks(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
    wanted = {s.lower() for s in request.query.getall("status", [])
              + request.query.getall("status[]", [])}
    states = {"running": {"TASK_RUNNING"}, "staging": {"TASK_STAGING", "TASK_STARTING"}}
    keep = set().union(*(states.get(s, set()) for s in wanted)) if wanted else None
    return ok({"tasks": [views.task_json(svc.state, t) for t in svc.state.tasks.values()
                         if keep is None or t.state in keep]})


async def delete_tasks(request: web.Request, svc: Any, p: dict[str, str]) -> web.Response:
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


ROUTES = (
    route("GET", "/v2/apps/(?P<id>.+)/tasks", app_tasks),
    route("DELETE", "/v2/apps/(?P<id>.+)/tasks", kill_app_tasks),
    route("DELETE", "/v2/apps/(?P<id>.+)/tasks/(?P<task>[^/]+)", kill_app_task),
    route("GET", "/v2/tasks", all_tasks),
    route("POST", "/v2/tasks/delete", delete_tasks),
)
