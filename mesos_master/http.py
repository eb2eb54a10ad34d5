"""Operator HTTP API (aiohttp): health, version, master info, state, metrics, redirect, flags.

`make_app(server)` only builds the application (no IO at import or build time); the runtime
binds it. Handlers are thin: they call the pure views over the server's core.
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Protocol

from aiohttp import web

from mesos_master import views
from mesos_master.core import Master


class MasterService(Protocol):
    master: Master | None
    flags: dict[str, str]
    hostname: str
    http_port: int

    @property
    def leading(self) -> bool: ...

    def info(self) -> dict[str, Any]: ...

    def leader_info(self) -> dict[str, Any] | None: ...


SERVICE = web.AppKey("service", MasterService)
_JSONP = re.compile(r"^[A-Za-z_$][\w$.]*$")


def _json(request: web.Request, body: Any) -> web.Response:
    text = json.dumps(body)
    callback = request.query.get("jsonp")
    if callback and _JSONP.match(callback):
        return web.Response(text=f"{callback}({text});", content_type="text/javascript")
    return web.Response(text=text, content_type="application/json")


def _leader_address(request: web.Request) -> str:
    """`host:port` of the leader's HTTP API; 503 when nobody leads (an election is on)."""
    other = request.app[SERVICE].leader_info()
    if not other:
        raise web.HTTPServiceUnavailable(text="no leading master elected")
    host = other.get("hostname") or other.get("ip")
    return f"{host}:{other.get('port')}"


def _master(request: web.Request) -> Master:
    """The acting core; a standby sends the client to the leader (307) with the same path."""
    service = request.app[SERVICE]
    if not service.leading:
        raise web.HTTPTemporaryRedirect(location=f"http://{_leader_address(request)}"
                                                 f"{request.rel_url}")
    master = service.master
    if master is None:
        raise web.HTTPServiceUnavailable(text="master is starting")
    return master


async def health(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def version(request: web.Request) -> web.Response:
    return _json(request, views.version_json(_master(request)))


async def info(request: web.Request) -> web.Response:
    """The leader's info (ours when leading), so a peer asking any master can follow."""
    other = request.app[SERVICE].leader_info()
    if not other:
        raise web.HTTPServiceUnavailable(text="no leading master elected")
    return _json(request, other)


async def state(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return _json(request, views.state_json(_master(request), time.time(), service.flags))


async def metrics(request: web.Request) -> web.Response:
    return _json(request, views.metrics(_master(request), time.time()))


async def redirect(request: web.Request) -> web.Response:
    """307 to the leader, protocol-relative and without a path (Mesos); 503 without one."""
    raise web.HTTPTemporaryRedirect(location=f"//{_leader_address(request)}")


async def flags(request: web.Request) -> web.Response:
    _master(request)
    return _json(request, {"flags": dict(request.app[SERVICE].flags)})


def make_app(service: MasterService) -> web.Application:
    app = web.Application()
    app[SERVICE] = service
    routes = [("/health", health), ("/master/health", health), ("/version", version),
              ("/master/info", info), ("/metrics/snapshot", metrics),
              ("/master/redirect", redirect), ("/redirect", redirect),
              ("/master/flags", flags), ("/flags", flags)]
    routes += [(path, state) for path in ("/master/state", "/state", "/state.json",
                                          "/master/state.json")]
    for path, handler in routes:
        app.router.add_get(path, handler)
    return app
