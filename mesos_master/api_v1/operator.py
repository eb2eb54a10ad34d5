"""`POST /api/v1` (and `/api/v1/operator`): the Mesos v1 operator API on the master.

GET_* calls answer from the core's records (`operator_views`); UPDATE_WEIGHTS and the quota
calls go through the same validated, persisted requests as `/weights` and `/quota`. SUBSCRIBE
opens a RecordIO stream: SUBSCRIBED with the whole state, then TASK_ADDED / TASK_UPDATED from
what the master sends (a launch to an agent, an update to a framework), FRAMEWORK_ADDED /
UPDATED from subscriptions, AGENT_ADDED from registrations, and, from a once-a-second look at
who is there, FRAMEWORK_REMOVED / AGENT_REMOVED; HEARTBEAT every 15 s. Nothing is observed
while nobody subscribes. Streams are bounded as the scheduler API's are.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from mesos_common import messages as m
from mesos_common import v1_json
from mesos_common.auth import http as http_auth
from mesos_common.recordio import Stream, record
from mesos_common.v1_calls import V1Error
from mesos_common.v1_http import bad as _bad
from mesos_common.v1_http import open_response, pump, read_call, to_leader
from mesos_master import core_maintenance as maint
from mesos_master import views
from mesos_master.api_v1 import operator_views as ov
from mesos_master.core import Master
from mesos_master.core_drain import (
    DeactivateAgentRequest,
    DrainAgentRequest,
    ReactivateAgentRequest,
)
from mesos_master.core_drain import applied as drain_applied
from mesos_master.core_operator import MarkGoneRequest, TeardownRequest, parse_quota, parse_weights
from mesos_master.core_reservations import parse_request
from mesos_master.http import apply_reservation, refusal, visible_schedule, visible_status

log = logging.getLogger("mesos_master.api_v1.operator")

HEARTBEAT_SECONDS = 15.0
MEMBERSHIP_SECONDS = 1.0


class Host(Protocol):
    master: Master | None
    flags: dict[str, str]

    @property
    def leading(self) -> bool: ...

    def info(self) -> dict[str, Any]: ...
    def leader_info(self) -> dict[str, Any] | None: ...
    def feed(self, event: Any) -> None: ...
    async def written(self) -> None: ...


class OperatorApi:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.streams: list[Stream] = []
        self._frameworks: set[str] = set()  # known to the subscribers
        self._agents: set[str] = set()
        self._infos: dict[str, dict[str, Any]] = {}  # framework id -> its v1 FrameworkInfo

    # ------------------------------------------------------------------ events

    def observe(self, msg: Any) -> None:
        """A message the master sends (called only while someone subscribes)."""
        master = self.host.master
        kind = type(msg)
        if kind is m.RunTask:
            self._publish({"type": "TASK_ADDED", "task_added": {
                "task": ov.launched_task(msg.framework.id or "", msg.task)}})
        elif kind is m.Update:
            st = msg.status
            fid = msg.framework_id or self._framework_of(master, st.task_id, st.agent_id)
            self._publish({"type": "TASK_UPDATED", "task_updated": {
                "framework_id": {"value": fid}, "status": v1_json.task_status(st),
                "state": st.state}})
        elif kind is m.Subscribed and master is not None:
            fw = master.frameworks.get(msg.framework_id)
            if fw is None:
                return
            new = fw.id not in self._frameworks
            self._frameworks.add(fw.id)
            self._infos[fw.id] = v1_json.framework_info(fw.info)
            kind_name = "FRAMEWORK_ADDED" if new else "FRAMEWORK_UPDATED"
            self._publish({"type": kind_name, kind_name.lower(): {"framework": ov.framework(fw)}})
        elif kind in (m.AgentRegistered, m.AgentReregistered) and master is not None:
            a = master.agents.get(msg.agent_id)
            if a is not None and a.id not in self._agents:
                self._agents.add(a.id)
                self._publish({"type": "AGENT_ADDED", "agent_added": {"agent": ov.agent(a)}})

    @staticmethod
    def _framework_of(master: Master | None, task_id: str, agent_id: str | None) -> str:
        if master is None or agent_id is None or agent_id not in master.agents:
            return ""
        for (fid, tid) in master.agents[agent_id].tasks:
            if tid == task_id:
                return fid
        return ""

    def _membership(self) -> None:
        master = self.host.master
        if master is None:
            return
        for fid in sorted(self._frameworks - master.frameworks.keys()):
            self._frameworks.discard(fid)
            info = self._infos.pop(fid, {"id": {"value": fid}})
            self._publish({"type": "FRAMEWORK_REMOVED",
                           "framework_removed": {"framework_info": info}})
        for aid in sorted(self._agents - master.agents.keys()):
            self._agents.discard(aid)
            self._publish({"type": "AGENT_REMOVED",
                           "agent_removed": {"agent_id": {"value": aid}}})

    def _publish(self, event: dict[str, Any]) -> None:
        data = record(event)
        for s in self.streams:
            s.push(data)

    async def run(self) -> None:
        """Heartbeats and the membership look (started with the server; idle when unused)."""
        beat = time.monotonic() + HEARTBEAT_SECONDS
        while True:
            await asyncio.sleep(MEMBERSHIP_SECONDS)
            if not self.streams:
                continue
            self._membership()
            if time.monotonic() >= beat:
                beat = time.monotonic() + HEARTBEAT_SECONDS
                self._publish({"type": "HEARTBEAT"})

    def close(self) -> None:
        for s in self.streams:
            s.close()

    # ------------------------------------------------------------------ HTTP

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.host.leading:
            to_leader(self.host.leader_info(), request.path)
        master = self.host.master
        if master is None:
            raise web.HTTPServiceUnavailable(text="master is starting")
        try:
            body = await read_call(request)
        except V1Error as e:
            return _bad(str(e))
        kind = body["type"]
        principal = request.get(http_auth.PRINCIPAL)
        if kind == "SUBSCRIBE":
            return await self._subscribe(request, master)
        getter = _GETTERS.get(kind)
        if getter is not None:
            return _answer(kind, getter(self, master))
        if kind == "GET_MAINTENANCE_SCHEDULE":  # what the ACLs let the principal see
            return _answer(kind, {"schedule": visible_schedule(master, principal)})
        if kind == "GET_MAINTENANCE_STATUS":
            return _answer(kind, {"status": visible_status(master, principal)})
        changer = _CHANGERS.get(kind)
        if changer is not None:  # each checks the principal against the ACLs, as in Mesos
            return await changer(self, master, body, principal)
        if kind == "TEARDOWN":
            return self._teardown(master, body, principal)
        if kind in ("RESERVE_RESOURCES", "UNRESERVE_RESOURCES"):
            d = body.get(kind.lower())
            d = d if isinstance(d, dict) else {}
            req = parse_request(kind == "RESERVE_RESOURCES",
                                _value(body, kind.lower(), "agent_id"), d.get("resources"))
            return await apply_reservation(self.host, master, req, principal)
        if kind in _NOT_BUILT:
            return web.Response(status=501, text=f"{kind} is not supported by this master yet")
        return _bad(f"unknown call type {kind[:80]!r}")

    async def _subscribe(self, request: web.Request, master: Master) -> web.StreamResponse:
        stream = Stream(str(uuid.uuid4()))
        resp = await open_response(request)
        if not self.streams:  # first subscriber: start from what is there now
            self._frameworks = set(master.frameworks)
            self._agents = set(master.agents)
            self._infos = {f.id: v1_json.framework_info(f.info) for f in master.frameworks.values()}
        self.streams.append(stream)
        stream.push(record({"type": "SUBSCRIBED", "subscribed": {
            "get_state": ov.get_state(master),
            "heartbeat_interval_seconds": HEARTBEAT_SECONDS}}))
        try:
            await pump(stream, resp)
        except asyncio.CancelledError:
            pass  # the master stops
        finally:
            stream.close()
            self.streams.remove(stream)
        return resp

    # ------------------------------------------------------------------ calls

    def _metrics(self, master: Master) -> dict[str, Any]:
        snap = views.metrics(master, time.time())
        return {"metrics": [{"name": k, "value": float(v)} for k, v in sorted(snap.items())]}

    async def _changed(self, req: Any) -> None:
        """Hand the core a change; return once its registry writes are done (the caller
        then answers from the registry: what is durable)."""
        self.host.feed(req)
        await self.host.written()

    async def _update_weights(self, master: Master, body: Mapping[str, Any],
                              principal: str | None) -> web.Response:
        raw = (body.get("update_weights") or {}).get("weight_infos", [])
        req = parse_weights(raw if isinstance(raw, list) else None)
        if isinstance(req, str):
            return _bad(req)
        for role, _ in req.weights:
            if not master.authorized(principal, "update_weights", role):
                return http_auth.forbidden(principal, f"update_weights {role}")
        await self._changed(req)
        if any(master.registry.weights.get(r) != w for r, w in req.weights):
            return web.Response(status=503, text="registry write failed")
        return web.Response(status=200)

    async def _set_quota(self, master: Master, body: Mapping[str, Any],
                         principal: str | None) -> web.Response:
        raw = body.get("set_quota") or {}
        qr = raw.get("quota_request") if isinstance(raw, dict) else None
        req = parse_quota({"role": qr.get("role"), "guarantee": qr.get("guarantee", [])}
                          if isinstance(qr, dict) else None)
        return await self._apply_quota(master, req, principal)

    async def _update_quota(self, master: Master, body: Mapping[str, Any],
                            principal: str | None) -> web.Response:
        """Quota v2 (`quota_configs` with `guarantees` maps): the guarantees become quota."""
        raw = body.get("update_quota") or {}
        configs = raw.get("quota_configs") if isinstance(raw, dict) else None
        if not isinstance(configs, list) or not configs:
            return _bad("UPDATE_QUOTA needs update_quota.quota_configs")
        for c in configs:
            g = c.get("guarantees", {}) if isinstance(c, dict) else None
            if not isinstance(g, dict):
                return _bad("each quota config needs a 'guarantees' map")
            res = [{"name": k, "type": "SCALAR", "scalar": {"value": v.get("value")}}
                   for k, v in g.items() if isinstance(v, dict)]
            out = await self._apply_quota(master, parse_quota({"role": c.get("role"),
                                                               "guarantee": res}), principal)
            if out.status != 200:
                return out
        return web.Response(status=200)

    async def _remove_quota(self, master: Master, body: Mapping[str, Any],
                            principal: str | None) -> web.Response:
        role = (body.get("remove_quota") or {}).get("role")
        if role not in master.registry.quotas:
            return _bad(f"role {role!r} has no quota")
        return await self._apply_quota(master, parse_quota({"role": role, "guarantee": []}),
                                       principal)

    def _teardown(self, master: Master, body: Mapping[str, Any],
                  principal: str | None) -> web.Response:
        fid = _value(body, "teardown", "framework_id")
        fw = master.frameworks.get(fid) if fid else None
        if fw is None:
            return _bad(f"no framework with id {fid!r}")
        if not master.authorized(principal, "teardown_frameworks", fw.info.principal):
            return http_auth.forbidden(principal, f"teardown_frameworks {fw.info.principal}")
        self.host.feed(TeardownRequest(fid))
        return web.Response(status=200)

    async def _mark_gone(self, master: Master, body: Mapping[str, Any],
                         principal: str | None) -> web.Response:
        aid = _value(body, "mark_agent_gone", "agent_id")
        if (denied := refusal(master, principal, MarkGoneRequest(aid))) is not None:
            return denied
        if aid in master.registry.gone:
            return web.Response(status=200)  # Mesos answers a repeated mark with success
        if aid not in master.registry.admitted and aid not in master.registry.unreachable:
            return _bad(f"no agent with id {aid!r}")
        await self._changed(MarkGoneRequest(aid))
        if aid not in master.registry.gone:
            return web.Response(status=503, text="registry write failed")
        return web.Response(status=200)

    async def _apply_quota(self, master: Master, req: Any,
                           principal: str | None) -> web.Response:
        if isinstance(req, str):
            return _bad(req)
        if not master.authorized(principal, "update_quotas", req.role):
            return http_auth.forbidden(principal, f"update_quotas {req.role}")
        await self._changed(req)
        if master.registry.quotas.get(req.role, {}) != dict(req.guarantee):
            return web.Response(status=503, text="registry write failed")
        return web.Response(status=200)

    async def _maintenance(self, master: Master, body: Mapping[str, Any],
                           principal: str | None) -> web.Response:
        """UPDATE_MAINTENANCE_SCHEDULE / START_MAINTENANCE / STOP_MAINTENANCE."""
        kind = body["type"]
        raw = body.get(kind.lower())
        raw = raw if isinstance(raw, dict) else {}
        req: Any
        if kind == "UPDATE_MAINTENANCE_SCHEDULE":
            req = maint.parse_schedule(raw.get("schedule"))
        else:
            machines = maint.parse_machines(raw.get("machines"))
            req = machines if isinstance(machines, str) else (
                maint.StartMaintenanceRequest if kind == "START_MAINTENANCE"
                else maint.StopMaintenanceRequest)(machines)
        if isinstance(req, str):
            return _bad(req)
        if (denied := refusal(master, principal, req)) is not None:
            return denied
        error = maint.request_error(master.registry, req)
        if error is not None:
            return _bad(error)
        await self._changed(req)
        if not maint.applied(master.registry, req):
            return web.Response(status=503, text="registry write failed")
        return web.Response(status=200)

    async def _agent_call(self, master: Master, body: Mapping[str, Any],
                          principal: str | None) -> web.Response:
        """DRAIN_AGENT / DEACTIVATE_AGENT / REACTIVATE_AGENT: answered once the registry
        holds the call (an error if the write failed), as Mesos does."""
        kind = body["type"]
        raw = body.get(kind.lower())
        agent_id = raw.get("agent_id") if isinstance(raw, dict) else None
        agent_id = agent_id.get("value") if isinstance(agent_id, dict) else None
        known = (master.agents, master.registry.admitted, master.registry.unreachable)
        if not isinstance(agent_id, str) or not any(agent_id in ids for ids in known):
            return _bad(f"{kind} needs {kind.lower()}.agent_id.value of a known agent "
                        "(registered, unreachable or recovered from the registry)")
        assert isinstance(raw, dict)
        req: Any
        if kind == "DRAIN_AGENT":
            grace = raw.get("max_grace_period")
            nanos = grace.get("nanoseconds") if isinstance(grace, dict) else None
            if grace is not None and (isinstance(nanos, bool) or not isinstance(nanos, int)
                                      or nanos < 0):
                return _bad("max_grace_period must be {\"nanoseconds\": <non-negative int>}")
            if not isinstance(raw.get("mark_gone", False), bool):
                return _bad("mark_gone must be a boolean")
            req = DrainAgentRequest(agent_id, None if nanos is None else nanos / 1e9,
                                    raw.get("mark_gone", False))
        elif kind == "DEACTIVATE_AGENT":
            req = DeactivateAgentRequest(agent_id)
        else:
            req = ReactivateAgentRequest(agent_id)
        if (denied := refusal(master, principal, req)) is not None:
            return denied
        await self._changed(req)
        if not drain_applied(master.registry, req):
            return web.Response(status=503, text="registry write failed")
        return web.Response(status=200)


def _answer(kind: str, payload: dict[str, Any] | None) -> web.Response:
    body: dict[str, Any] = {"type": kind}
    if payload is not None:
        body[kind.lower()] = payload
    return web.Response(text=json.dumps(body), content_type="application/json")


def _value(body: Mapping[str, Any], call: str, field: str) -> str:
    """`body[call][field]["value"]` (a v1 id), or "" when any level is missing."""
    raw = body.get(call)
    inner = raw.get(field) if isinstance(raw, dict) else None
    value = inner.get("value") if isinstance(inner, dict) else None
    return value if isinstance(value, str) else ""


def _quota(master: Master) -> dict[str, Any]:
    infos = [{"role": i["role"], "guarantee": i["guarantee"]}
             for i in views.quota_json(master)["infos"]]
    return {"status": {"infos": infos}}


_GETTERS: dict[str, Callable[[OperatorApi, Master], dict[str, Any] | None]] = {
    "GET_HEALTH": lambda api, master: {"healthy": True},
    "GET_FLAGS": lambda api, master: {"flags": [{"name": k, "value": str(v)} for k, v in
                                                 sorted(api.host.flags.items())]},
    "GET_VERSION": lambda api, master: {"version_info": views.version_json(master)},
    "GET_METRICS": lambda api, master: api._metrics(master),
    "GET_LOGGING_LEVEL": lambda api, master: {"level": logging.getLogger().getEffectiveLevel()},
    "GET_STATE": lambda api, master: ov.get_state(master),
    "GET_AGENTS": lambda api, master: ov.get_agents(master),
    "GET_FRAMEWORKS": lambda api, master: ov.get_frameworks(master),
    "GET_EXECUTORS": lambda api, master: ov.get_executors(master),
    "GET_TASKS": lambda api, master: ov.get_tasks(master),
    "GET_ROLES": lambda api, master: ov.get_roles(master, views.roles_json(master)),
    "GET_WEIGHTS": lambda api, master: {"weight_infos": views.weights_json(master)},
    "GET_MASTER": lambda api, master: ov.get_master(master, api.host.info(),
                                                   master.start_time or time.time()),
    "GET_QUOTA": lambda api, master: _quota(master),
}
_CHANGERS: dict[str, Callable[[OperatorApi, Master, Mapping[str, Any], str | None],
                              Awaitable[web.Response]]] = {
    "UPDATE_WEIGHTS": OperatorApi._update_weights,
    "SET_QUOTA": OperatorApi._set_quota,
    "UPDATE_QUOTA": OperatorApi._update_quota,
    "REMOVE_QUOTA": OperatorApi._remove_quota,
    "MARK_AGENT_GONE": OperatorApi._mark_gone,
    "DRAIN_AGENT": OperatorApi._agent_call,
    "DEACTIVATE_AGENT": OperatorApi._agent_call,
    "REACTIVATE_AGENT": OperatorApi._agent_call,
    "UPDATE_MAINTENANCE_SCHEDULE": OperatorApi._maintenance,
    "START_MAINTENANCE": OperatorApi._maintenance,
    "STOP_MAINTENANCE": OperatorApi._maintenance,
}
#: Known Mesos calls this master does not serve yet: 501 with a message (unknown ones: 400).
_NOT_BUILT = {"CREATE_VOLUMES", "DESTROY_VOLUMES", "GROW_VOLUME", "SHRINK_VOLUME",
              "SET_LOGGING_LEVEL", "LIST_FILES", "READ_FILE", "GET_OPERATIONS"}
