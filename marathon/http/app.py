"""`make_app(service)`: the v2 API's route modules composed into one aiohttp Application.

Every route module exports its `ROUTES`; `API_ROUTES` lists them in the order they are
tried (apps last: its routes by id match any longer path under `/v2/apps/`).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from marathon.http import apps, deployments, events, groups, info, queue, tasks
from marathon.http.base import Route, Router

API_ROUTES: tuple[Route, ...] = (*info.ROUTES, *tasks.ROUTES, *deployments.ROUTES,
                                 *queue.ROUTES, *groups.ROUTES, *events.ROUTES,
                                 *apps.ROUTES)
API = Router(API_ROUTES)
SERVICE = web.AppKey("service", object)
ROUTER = web.AppKey("router", Router)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    return await request.app[ROUTER].handle(request.app[SERVICE], request)


def make_app(service: Any, routes: Iterable[Route] = API_ROUTES,
             web_routes: Iterable[web.AbstractRouteDef] = ()) -> web.Application:
    """The API around `service`; no IO happens until a runner binds it. `web_routes`
    (aiohttp's own, e.g. static files) are tried before the API's."""
    app = web.Application(client_max_size=16 * 2**20)
    app[SERVICE] = service
    app[ROUTER] = Router(routes)
    app.router.add_routes(web_routes)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app
