"""The HTTP plumbing every route module shares: routes, query flags, bodies, errors.

Paths are matched after collapsing repeated slashes (marathon-python sends
`/v2/apps//name`); app ids may contain `/`, so route tables list the reserved suffixes
(`/restart`, `/tasks[/<id>]`, `/versions[/<v>]`) before the catch-all app routes. Bad input
gets Marathon's status and JSON error body; an unexpected exception is logged and answered
500, and the server goes on. A change is durable before the client hears of it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from attrs import frozen

from marathon import model
from marathon.errors import ApiError
from marathon.model import ValidationFailed

log = logging.getLogger("marathon.api")
# (request, the term's Marathon, the path's named groups) -> response
Handler = Callable[[web.Request, Any, dict[str, str]], Awaitable[web.StreamResponse]]


@frozen
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def route(method: str, pattern: str, handler: Handler) -> Route:
    return Route(method, re.compile(f"^{pattern}$"), handler)


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    return v.strip().lower() in ("true", "1", "yes")


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def deployment_answer(d: Any, status: int = 200) -> web.Response:
    """Marathon's answer to a change: the deployment it started (or `{}`)."""
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


def embed(request: web.Request) -> list[str]:
    return request.query.getall("embed", [])


class Router:
    """Answers a request from the first route whose pattern and method match."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)

    async def handle(self, svc: Any, request: web.Request) -> web.StreamResponse:
        path = re.sub("/+", "/", request.path)
        if len(path) > 1:
            path = path.rstrip("/")
        allowed = False
        for r in self.routes:
            mt = r.pattern.match(path)
            if not mt:
                continue
            if r.method != request.method:
                allowed = True
                continue
            try:
                resp = await r.handler(request, svc, mt.groupdict())
                if request.method != "GET":  # a change is durable before the client hears
                    await svc.flush_async()
                return resp
            except ApiError as e:
                return ok(e.body, e.status) if e.body is not None \
                    else web.Response(status=e.status)
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
