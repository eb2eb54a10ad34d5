"""`/v2/deployments`: list the running deployments, cancel one (rolling back unless forced)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from marathon import views
from marathon.http.base import deployment_answer, flag, ok, route

if TYPE_CHECKING:
    from marathon.server import MarathonServer


async def deployments(request: web.Request, svc: MarathonServer,
                      p: dict[str, str]) -> web.Response:
    return ok([views.deployment_json(svc.state, d) for d in svc.state.deployments.values()])


async def cancel_deployment(request: web.Request, svc: MarathonServer, p: dict[str, str]
                            ) -> web.Response:
    force = flag(request, "force")
    d = svc.cancel_deployment(p["id"], force)
    if force:
        return web.Response(status=202)
    return deployment_answer(d)


ROUTES = (
    route("GET", "/v2/deployments", deployments),
    route("DELETE", "/v2/deployments/(?P<id>[^/]+)", cancel_deployment),
)
