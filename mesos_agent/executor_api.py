"""`POST /api/v1/executor`: the Mesos v1 executor HTTP API, for custom executors.

An executor's SUBSCRIBE opens a chunked RecordIO stream (SUBSCRIBED, LAUNCH, KILL, ACKNOWLEDGED,
MESSAGE, SHUTDOWN, HEARTBEAT every 30 s); its UPDATE and MESSAGE calls answer 202 and are fed to
the agent core as events. What the core sends an executor (`ToExecutor`) is written to its
stream as v1 events; each stream is a bounded buffer written by its own request task, as the
master's scheduler streams are. One stream per executor: a new SUBSCRIBE replaces the old.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from mesos_agent.core import Agent
from mesos_agent.events import (
    ExecutorDisconnected,
    ExecutorMessage,
    ExecutorSubscribe,
    ExecutorSubscribed,
    ExecutorUpdate,
)
from mesos_common import messages as m
from mesos_common import task_states, v1_json
from mesos_common.recordio import Stream, record
from mesos_common.v1_calls import V1Error, b64_bytes, id_value
from mesos_common.v1_http import bad, open_response, pump, read_call

log = logging.getLogger("mesos_agent.executor_api")
HEARTBEAT_SECONDS = 30.0


class Host(Protocol):
    """What the executor API needs from the agent's runtime."""

    @property
    def core(self) -> Agent | None: ...

    def feed(self, event: Any) -> None: ...


def agent_info(core: Agent) -> dict[str, Any]:
    return v1_json.agent_info(core.agent_id or "", core.config.agent_info())


def parse_status(d: Any, now: float) -> m.TaskStatus:
    """An executor's TaskStatus (unknown fields ignored, as Mesos's JSON parser does)."""
    if not isinstance(d, dict):
        raise V1Error("'update.status' must be a JSON object")
    state = d.get("state")
    if state not in task_states.ALL_STATES:
        raise V1Error(f"unknown task state {state!r}")
    ts = d.get("timestamp")
    return m.TaskStatus(
        task_id=id_value(d, "task_id") or "", state=state,
        message=d["message"] if isinstance(d.get("message"), str) else "",
        reason=d["reason"] if isinstance(d.get("reason"), str) else None,
        source="SOURCE_EXECUTOR",
        timestamp=float(ts) if isinstance(ts, (int, float)) else now,
        uuid=b64_bytes(d["uuid"], "uuid") if "uuid" in d else None,
        healthy=d["healthy"] if isinstance(d.get("healthy"), bool) else None,
        data=b64_bytes(d["data"], "data") if "data" in d else None)


def event(msg: Any, agent_info: dict[str, Any]) -> dict[str, Any] | None:
    """The v1 executor event for what the core sends an executor."""
    kind = type(msg)
    if kind is ExecutorSubscribed:
        return {"type": "SUBSCRIBED", "subscribed": {
            "executor_info": v1_json.executor_info(msg.executor),
            "framework_info": v1_json.framework_info(msg.framework),
            "agent_info": agent_info, "container_id": v1_json.value(msg.container)}}
    if kind is m.RunTask:
        return {"type": "LAUNCH", "launch": {"task": v1_json.task_info(msg.task)}}
    if kind is m.KillTask:
        out: dict[str, Any] = {"task_id": v1_json.value(msg.task_id)}
        if msg.grace_period is not None:
            out["kill_policy"] = {"grace_period": {"nanoseconds": int(msg.grace_period * 1e9)}}
        return {"type": "KILL", "kill": out}
    if kind is m.StatusUpdateAck:
        return {"type": "ACKNOWLEDGED", "acknowledged": {
            "task_id": v1_json.value(msg.task_id), "uuid": v1_json.b64(msg.uuid)}}
    if kind is m.FrameworkMessage:
        return {"type": "MESSAGE", "message": {"data": v1_json.b64(msg.data)}}
    if kind is m.ShutdownExecutor:
        return {"type": "SHUTDOWN"}
    return None


class ExecutorApi:
    def __init__(self, host: Host, clock: Callable[[], float]) -> None:
        self.host = host
        self.clock = clock
        self.streams: dict[tuple[str, str], Stream] = {}

    # ------------------------------------------------------------------ core -> stream

    def deliver(self, framework_id: str, executor_id: str, msg: Any) -> None:
        stream = self.streams.get((framework_id, executor_id))
        if stream is None or stream.closed:
            return
        core = self.host.core
        ev = event(msg, agent_info(core) if core is not None else {})
        if ev is not None:
            stream.push(record(ev))

    def end(self, framework_id: str, executor_id: str) -> None:
        stream = self.streams.get((framework_id, executor_id))
        if stream is not None:
            stream.close()

    def close(self) -> None:
        for stream in list(self.streams.values()):
            stream.close()

    async def heartbeats(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """HEARTBEAT on every open stream now and then: a reader that is gone shows up as a
        failed write, a silent one fills its buffer and is disconnected."""
        beat = record({"type": "HEARTBEAT"})
        while True:
            await asyncio.sleep(interval)
            for stream in list(self.streams.values()):
                stream.push(beat)

    # ------------------------------------------------------------------ HTTP

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_call(request)
            fid = id_value(body, "framework_id") or ""
            eid = id_value(body, "executor_id") or ""
            kind = body["type"]
            if kind == "SUBSCRIBE":
                sub = body.get("subscribe")
                if not isinstance(sub, dict):
                    sub = {}
                held = tuple(t for t in (id_value(t, "task_id", required=False) if
                                         isinstance(t, dict) else None
                                         for t in sub.get("unacknowledged_tasks") or ())
                             if t)
                return await self._subscribe(request, fid, eid, held)
            if kind not in ("UPDATE", "MESSAGE"):
                return bad(f"unknown call type {kind[:80]!r}")
            stream = self.streams.get((fid, eid))
            if stream is None or stream.closed:
                return bad(f"executor {eid} of framework {fid} is not subscribed")
            if kind == "UPDATE":
                update = body.get("update")
                status = parse_status(update.get("status") if isinstance(update, dict)
                                      else None, self.clock())
                self.host.feed(ExecutorUpdate(fid, eid, status))
            else:
                message = body.get("message")
                data = b64_bytes(message.get("data") if isinstance(message, dict) else None,
                              "message.data")
                self.host.feed(ExecutorMessage(fid, eid, data))
        except V1Error as e:
            return bad(str(e))
        return web.Response(status=202)

    async def _subscribe(self, request: web.Request, fid: str, eid: str,
                         held: tuple[str, ...]) -> web.StreamResponse:
        core = self.host.core
        why = core.may_subscribe(fid, eid) if core is not None else "the agent is starting"
        if why is not None:
            return bad(why)
        old = self.streams.get((fid, eid))
        if old is not None:
            old.close()
        stream = Stream(str(uuid.uuid4()))
        self.streams[(fid, eid)] = stream
        resp = await open_response(request)
        log.info("executor %s of framework %s subscribed", eid, fid)
        try:
            self.host.feed(ExecutorSubscribe(fid, eid, held))
            await pump(stream, resp)
        except asyncio.CancelledError:
            pass  # the agent stops
        finally:
            stream.close()
            if self.streams.get((fid, eid)) is stream:
                del self.streams[(fid, eid)]
                self.host.feed(ExecutorDisconnected(fid, eid))
            log.info("executor %s of framework %s: stream closed", eid, fid)
        return resp
