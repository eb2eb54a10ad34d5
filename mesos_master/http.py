"""Operator HTTP API (aiohttp): health, version, master info, state, metrics, redirect, flags,
roles, weights and quota (the last two also writable: validated here, applied by the core),
teardown of a framework, and dynamic reservations by the operator (/master/reserve, /unreserve).

`make_app(server)` only builds the application (no IO at import or build time); the runtime
binds it. Handlers are thin: they call the pure views over the server's core.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any, Protocol

import attrs
from aiohttp import web

from mesos_common import prom
from mesos_common.auth import http as http_auth
from mesos_master import core_maintenance as maint
from mesos_master import views, views_stream, views_summary, webui
from mesos_master.core import Master
from mesos_master.core_drain import (
    DeactivateAgentRequest,
    DrainAgentRequest,
    ReactivateAgentRequest,
)
from mesos_master.core_operator import MarkGoneRequest, TeardownRequest, parse_quota, parse_weights
from mesos_master.core_reservations import ReserveRequest, UnreserveRequest, parse_request
from mesos_master.reservations import NO_RESERVATIONS


class MasterService(Protocol):
    master: Master | None
    flags: dict[str, str]
    hostname: str
    http_port: int

    @property
    def leading(self) -> bool: ...

    def info(self) -> dict[str, Any]: ...

    def leader_info(self) -> dict[str, Any] | None: ...
    def feed(self, event: Any) -> None: ...
    async def written(self) -> None: ...


class Feeds(Protocol):
    """What a handler that changes the registry needs of the server: `feed` hands the core
    a request, `written` returns once the registry writes it caused are done (a remote
    registry writes off the event loop), so the answer says what is durable."""

    def feed(self, event: Any) -> None: ...
    async def written(self) -> None: ...


SERVICE = web.AppKey("service", MasterService)
_JSONP = re.compile(r"^[A-Za-z_$][\w$.]*$")
STREAM_WRITE = 256 * 1024
STREAM_SLICE = 0.02  # seconds of rendering between two turns of the event loop


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


async def _stream(request: web.Request, pieces: Iterator[str]) -> web.StreamResponse:
    """Write a document piece by piece, giving the event loop a turn every STREAM_SLICE
    seconds of rendering (the master's heartbeats and messages go on while 100k tasks are
    rendered; under a message flood the two take turns). Pieces are gathered into writes of
    about STREAM_WRITE bytes."""
    callback = request.query.get("jsonp")
    jsonp = bool(callback and _JSONP.match(callback))
    resp = web.StreamResponse()
    resp.content_type = "text/javascript" if jsonp else "application/json"
    await resp.prepare(request)
    buf: list[str] = [f"{callback}(" if jsonp else ""]
    size = 0
    turn_ends = time.perf_counter() + STREAM_SLICE
    for piece in pieces:
        buf.append(piece)
        size += len(piece)
        if size >= STREAM_WRITE:
            await resp.write("".join(buf).encode())
            buf, size = [], 0
        if time.perf_counter() >= turn_ends:  # let messages and timers run, then go on
            await asyncio.sleep(0)
            turn_ends = time.perf_counter() + STREAM_SLICE
    buf.append(");" if jsonp else "")
    await resp.write("".join(buf).encode())
    await resp.write_eof()
    return resp


def _viewer(request: web.Request, master: Master) -> views_stream.Viewer | None:
    return views_stream.Viewer.of(request.get(http_auth.PRINCIPAL), master.config.auth.acls)


def _denied(request: web.Request, master: Master, action: str, obj: str | None
            ) -> web.Response | None:
    """403 when the ACLs refuse the request's principal `action` on `obj`."""
    principal = request.get(http_auth.PRINCIPAL)
    if master.authorized(principal, action, obj):
        return None
    return http_auth.forbidden(principal, f"{action} {obj}")


#: The ACL action each operator request on machines or agents needs; Mesos gives these
#: actions no object of the request's own (it is always ANY).
OPERATOR_ACTIONS: dict[type, str] = {
    maint.UpdateScheduleRequest: "update_maintenance_schedules",
    maint.StartMaintenanceRequest: "start_maintenances",
    maint.StopMaintenanceRequest: "stop_maintenances",
    DrainAgentRequest: "drain_agents",
    DeactivateAgentRequest: "deactivate_agents",
    ReactivateAgentRequest: "reactivate_agents",
    MarkGoneRequest: "mark_agents_gone",
}


def refusal(master: Master, principal: str | None, req: Any) -> web.Response | None:
    """403 when the ACLs refuse `principal` the operator request `req` (None: allowed); a
    drain that marks the agent gone needs `mark_agents_gone` too, as in Mesos."""
    actions = [OPERATOR_ACTIONS[type(req)]]
    if isinstance(req, DrainAgentRequest) and req.mark_gone:
        actions.append("mark_agents_gone")
    for action in actions:
        if not master.authorized(principal, action, None):
            return http_auth.forbidden(principal, action)
    return None


def visible_schedule(master: Master, principal: str | None) -> dict[str, Any]:
    """The maintenance schedule as `principal` may see it (`get_maintenance_schedules`;
    Mesos leaves out what the ACLs hide rather than refusing)."""
    return views.schedule_json(
        master, master.authorized(principal, "get_maintenance_schedules", None))


def visible_status(master: Master, principal: str | None) -> dict[str, Any]:
    """The maintenance status as `principal` may see it (`get_maintenance_statuses`)."""
    return views.maintenance_status_json(
        master, master.authorized(principal, "get_maintenance_statuses", None))


async def state(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    master = _master(request)
    return await _stream(request, views_stream.state_pieces(
        master, time.time(), dict(service.flags), _viewer(request, master)))


async def tasks(request: web.Request) -> web.StreamResponse:
    """Mesos' /master/tasks: ?limit (default 100), ?offset, ?order=asc|des."""
    master = _master(request)
    try:
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        return _bad_request("limit and offset must be integers")
    order = request.query.get("order", "asc")
    if limit < 0 or offset < 0 or order not in ("asc", "des"):
        return _bad_request("limit and offset must be >= 0 and order 'asc' or 'des'")
    return await _stream(request, views_stream.tasks_pieces(master, limit, offset,
                                                            order == "des",
                                                            _viewer(request, master)))


async def metrics(request: web.Request) -> web.Response:
    out = views.metrics(_master(request), time.time())
    runtime = getattr(request.app[SERVICE], "runtime_metrics", None)
    if runtime is not None:
        out.update(runtime())  # event-loop lag and other runtime-only figures
    return _json(request, out)


async def state_summary(request: web.Request) -> web.Response:
    return _json(request, views_summary.state_summary(_master(request), time.time()))


async def prometheus(request: web.Request) -> web.Response:
    """Prometheus text format; a standby answers too (its own histograms, elected 0)."""
    return prom.exposition(request.app[SERVICE].prom.registry)  # type: ignore[attr-defined]


async def redirect(request: web.Request) -> web.Response:
    """307 to the leader, protocol-relative and without a path (Mesos); 503 without one."""
    raise web.HTTPTemporaryRedirect(location=f"//{_leader_address(request)}")


async def flags(request: web.Request) -> web.Response:
    _master(request)
    return _json(request, {"flags": dict(request.app[SERVICE].flags)})


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.text())
    except ValueError as e:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"invalid JSON: {e}"}),
                                 content_type="application/json") from e


async def roles(request: web.Request) -> web.Response:
    return _json(request, views.roles_json(_master(request)))


async def weights(request: web.Request) -> web.Response:
    return _json(request, views.weights_json(_master(request)))


async def update_weights(request: web.Request) -> web.Response:
    master = _master(request)
    req = parse_weights(await _body(request))
    if isinstance(req, str):
        return _bad_request(req)
    for role, _ in req.weights:
        if (denied := _denied(request, master, "update_weights", role)) is not None:
            return denied
    request.app[SERVICE].feed(req)
    await request.app[SERVICE].written()
    if any(master.registry.weights.get(r) != w for r, w in req.weights):
        return web.json_response({"error": "registry write failed"}, status=503)
    return _json(request, views.weights_json(master))


async def quota(request: web.Request) -> web.Response:
    return _json(request, views.quota_json(_master(request)))


async def set_quota(request: web.Request) -> web.Response:
    master = _master(request)
    req = parse_quota(await _body(request))
    if isinstance(req, str):
        return _bad_request(req)
    return await _apply_quota(request, master, req)


async def remove_quota(request: web.Request) -> web.Response:
    master = _master(request)
    req = parse_quota({"role": request.match_info["role"], "guarantee": []})
    if isinstance(req, str):
        return _bad_request(req)
    if req.role not in master.registry.quotas:
        return web.json_response({"error": f"role {req.role!r} has no quota"}, status=400)
    return await _apply_quota(request, master, req)


async def _apply_quota(request: web.Request, master: Master, req: Any) -> web.Response:
    if (denied := _denied(request, master, "update_quotas", req.role)) is not None:
        return denied
    request.app[SERVICE].feed(req)
    await request.app[SERVICE].written()
    if master.registry.quotas.get(req.role, {}) != dict(req.guarantee):
        return web.json_response({"error": "registry write failed"}, status=503)
    return _json(request, views.quota_json(master))


async def maintenance_schedule(request: web.Request) -> web.Response:
    return _json(request, visible_schedule(_master(request), request.get(http_auth.PRINCIPAL)))


async def maintenance_status(request: web.Request) -> web.Response:
    return _json(request, visible_status(_master(request), request.get(http_auth.PRINCIPAL)))


async def update_maintenance(request: web.Request) -> web.Response:
    """POST /maintenance/schedule, /machine/down, /machine/up: durable before the answer."""
    master = _master(request)
    body = await _body(request)
    kind = request.match_info["what"]
    req: Any = (maint.parse_schedule(body) if kind == "schedule"
                else maint.parse_machines(body))
    if isinstance(req, str):
        return _bad_request(req)
    if kind != "schedule":
        req = (maint.StartMaintenanceRequest if kind == "down"
               else maint.StopMaintenanceRequest)(req)
    if (denied := refusal(master, request.get(http_auth.PRINCIPAL), req)) is not None:
        return denied
    error = maint.request_error(master.registry, req)
    if error is not None:
        return _bad_request(error)
    request.app[SERVICE].feed(req)
    await request.app[SERVICE].written()
    if not maint.applied(master.registry, req):
        return web.json_response({"error": "registry write failed"}, status=503)
    return web.Response(text="")


async def teardown(request: web.Request) -> web.Response:
    """Mesos' POST /master/teardown with `frameworkId=<id>` (form or query)."""
    master = _master(request)
    form = await request.post()
    fw_id = str(form.get("frameworkId") or request.query.get("frameworkId") or "")
    if not fw_id:
        return _bad_request("Missing 'frameworkId' query parameter")
    fw = master.frameworks.get(fw_id)
    if fw is None:
        return _bad_request(f"No framework found with specified ID {fw_id!r}")
    if (denied := _denied(request, master, "teardown_frameworks", fw.info.principal)) \
            is not None:
        return denied
    request.app[SERVICE].feed(TeardownRequest(fw_id))
    return web.Response(text="")


async def reserve(request: web.Request) -> web.Response:
    """Mesos' POST /master/reserve and /master/unreserve: form fields `slaveId` and
    `resources` (a JSON list of resources with their role)."""
    master = _master(request)
    form = await request.post()
    req = parse_request(not request.path.endswith("unreserve"), form.get("slaveId"),
                        form.get("resources"))
    return await apply_reservation(request.app[SERVICE], master, req,
                                   request.get(http_auth.PRINCIPAL))


async def apply_reservation(server: Feeds, master: Master,
                            req: ReserveRequest | UnreserveRequest | str,
                            principal: str | None) -> web.Response:
    """The answer Mesos gives: 202 once applied and durable, 409 when the agent does not have
    the resources (free, or reserved) now, 400 for bad input, 403 when the ACLs refuse,
    503 when the registry write failed."""
    if isinstance(req, str):
        return _bad_request(req)
    req = attrs.evolve(req, principal=principal)  # the reserver, or whose to undo first
    if isinstance(req, ReserveRequest):
        for role in sorted(req.resources.roles()):
            if not master.authorized(principal, "reserve_resources", role):
                return http_auth.forbidden(principal, f"reserve_resources {role}")
    elif (refused := master.unreserve_refusal(principal, req.agent_id, req.resources)) \
            is not None:
        return http_auth.forbidden(principal, refused)
    error = master.reservation_error(req)
    if error is not None:
        return web.json_response({"error": error}, status=409)
    server.feed(req)
    await server.written()
    agent = master.agents.get(req.agent_id)
    if agent is None or master.registry.reserved.get(agent.id, NO_RESERVATIONS) != \
            agent.reservations:
        return web.json_response({"error": "registry write failed"}, status=503)
    return web.Response(status=202)


def make_app(service: MasterService) -> web.Application:
    def acls() -> http_auth.Authorize | None:
        master = service.master
        return None if master is None or master.config.auth.acls.empty else master.authorized

    auth = getattr(service, "http_auth", None) or http_auth.HttpAuth()
    registry = getattr(service, "prom", None)  # MasterMetrics (absent in some test doubles)
    timing = [prom.timing_middleware(registry.requests)] if registry is not None else []
    app = web.Application(middlewares=[*timing, http_auth.middleware(auth, acls)])
    app[SERVICE] = service
    if registry is not None:
        app.router.add_get("/metrics", prometheus)
    routes = [("/health", health), ("/master/health", health), ("/version", version),
              ("/master/info", info), ("/metrics/snapshot", metrics),
              ("/master/redirect", redirect), ("/redirect", redirect),
              ("/master/flags", flags), ("/flags", flags),
              ("/master/tasks", tasks), ("/tasks", tasks), ("/master/tasks.json", tasks),
              ("/tasks.json", tasks), ("/master/state-summary", state_summary),
              ("/state-summary", state_summary)]
    routes += [(path, state) for path in ("/master/state", "/state", "/state.json",
                                          "/master/state.json")]
    for prefix in ("", "/master"):
        routes += [(f"{prefix}/roles", roles), (f"{prefix}/roles.json", roles),
                   (f"{prefix}/weights", weights), (f"{prefix}/quota", quota)]
        app.router.add_post(f"{prefix}/weights", update_weights)
        app.router.add_put(f"{prefix}/weights", update_weights)
        app.router.add_post(f"{prefix}/quota", set_quota)
        app.router.add_delete(f"{prefix}/quota/{{role}}", remove_quota)
    for path in ("/master/teardown", "/teardown"):
        app.router.add_post(path, teardown)
    for path in ("/master/reserve", "/reserve", "/master/unreserve", "/unreserve"):
        app.router.add_post(path, reserve)
    for prefix in ("", "/master"):
        app.router.add_get(f"{prefix}/maintenance/schedule", maintenance_schedule)
        app.router.add_get(f"{prefix}/maintenance/status", maintenance_status)
        app.router.add_post(f"{prefix}/maintenance/{{what:schedule}}", update_maintenance)
        app.router.add_post(f"{prefix}/machine/{{what:down|up}}", update_maintenance)
    for path, handler in routes:
        app.router.add_get(path, handler)
    v1 = getattr(service, "v1", None)
    if v1 is not None:
        for prefix in ("", "/master"):
            app.router.add_post(f"{prefix}/api/v1/scheduler", v1.handle)
    operator = getattr(service, "operator", None)
    if operator is not None:
        for path in ("/api/v1", "/api/v1/operator", "/master/api/v1"):
            app.router.add_post(path, operator.handle)
    webui.install(app)  # the web UI at / (static files; every master, standby too)
    return app
