"""`POST /api/v1/scheduler`: the Mesos v1 scheduler HTTP API beside the ZeroMQ protocol.

A SUBSCRIBE opens a chunked RecordIO stream; the subscription gets a peer id of its own
(`v1-<stream id>`) and is, to the master core, one more framework connection: its calls are fed
as the messages a ZeroMQ framework sends, and what the core sends that peer is written to the
stream as v1 events (`convert.event`). Events wait in a bounded per-stream buffer and are
written by the stream's own request task, so a slow reader never holds the master; one that
lets the buffer fill is disconnected. While a stream is open, each HEARTBEAT written to it
counts as the framework's heartbeat (pymesos sends none; the open connection is its sign of
life, as libprocess's socket is for Mesos).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Protocol

from aiohttp import web

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import recordio
from mesos_common.auth.http import PRINCIPAL
from mesos_common.recordio import record
from mesos_common.v1_calls import V1Error, id_value
from mesos_common.v1_http import bad as _bad
from mesos_common.v1_http import open_response, pump, read_call, to_leader
from mesos_master.api_v1 import convert
from mesos_master.core_auth import PeerAuthenticated

log = logging.getLogger("mesos_master.api_v1")

PEER_PREFIX = b"v1-"
MAX_BUFFERED_BYTES = recordio.MAX_BUFFERED_BYTES


class Host(Protocol):
    """What the scheduler API needs from the master server."""

    @property
    def leading(self) -> bool: ...

    def info(self) -> dict[str, Any]: ...
    def leader_info(self) -> dict[str, Any] | None: ...
    def feed(self, event: Any) -> None: ...


class Stream(recordio.Stream):
    """One SUBSCRIBE's event stream, and the framework peer it is to the core."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id, MAX_BUFFERED_BYTES)
        self.peer = PEER_PREFIX + stream_id.encode()
        self.framework_id: str | None = None

    def describe(self) -> str:
        return f"v1 stream {self.stream_id} (framework {self.framework_id})"


class SchedulerApi:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.streams: dict[bytes, Stream] = {}  # by peer id
        self._by_id: dict[str, Stream] = {}  # by Mesos-Stream-Id
        self._by_framework: dict[str, Stream] = {}
        self._warned: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ core -> stream

    def deliver(self, peer: bytes, msg: Any) -> None:
        """A message the core sends a v1 peer; dropped when its stream is gone."""
        stream = self.streams.get(peer)
        if stream is None or stream.closed:
            return
        if type(msg) is m.Subscribed:
            self._subscribed(stream, msg.framework_id)
        ev = convert.event(msg, convert.master_info(self.host.info()))
        if ev is None:
            return
        stream.push(record(ev))
        if type(msg) is m.Heartbeat:
            self.host.feed(fx.Received(peer, m.Heartbeat()))  # the open stream is alive
        elif type(msg) is m.Error:
            stream.end()  # Mesos closes the stream after a framework error

    def _subscribed(self, stream: Stream, framework_id: str) -> None:
        stream.framework_id = framework_id
        old = self._by_framework.get(framework_id)
        if old is not None and old is not stream:
            old.close()  # the core told it "framework failed over" already
        self._by_framework[framework_id] = stream

    # ------------------------------------------------------------------ HTTP

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.host.leading:
            to_leader(self.host.leader_info(), "/api/v1/scheduler")
        try:
            body = await read_call(request)
            kind = body["type"]
            if kind == "SUBSCRIBE":
                return await self._subscribe(request, body)
            return self._call(request, kind, body)
        except V1Error as e:
            return _bad(str(e))

    async def _subscribe(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        sub = body.get("subscribe")
        if not isinstance(sub, dict):
            return _bad("SUBSCRIBE needs 'subscribe'")
        top = id_value(body, "framework_id", required=False)
        info = convert.framework_info(sub.get("framework_info"), top)
        if top is not None and info.id != top:
            return _bad("'framework_id' differs from 'subscribe.framework_info.id'")
        stream = Stream(str(uuid.uuid4()))
        resp = await open_response(request, {"Mesos-Stream-Id": stream.stream_id})
        self.streams[stream.peer] = stream
        self._by_id[stream.stream_id] = stream
        log.info("v1 framework %r subscribing on stream %s", info.name, stream.stream_id)
        try:
            principal = request.get(PRINCIPAL)  # proven by HTTP Basic (mesos_common.auth.http)
            if principal is not None:
                self.host.feed(PeerAuthenticated(stream.peer, principal))
            self.host.feed(fx.Received(stream.peer, m.Subscribe(info)))
            await pump(stream, resp)
        except asyncio.CancelledError:
            pass  # the master stops
        finally:
            stream.close()
            self.streams.pop(stream.peer, None)
            self._by_id.pop(stream.stream_id, None)
            if stream.framework_id and self._by_framework.get(stream.framework_id) is stream:
                del self._by_framework[stream.framework_id]
            log.info("v1 stream %s (framework %s) closed", stream.stream_id,
                     stream.framework_id)
        return resp

    def _call(self, request: web.Request, kind: str, body: dict[str, Any]) -> web.Response:
        if kind not in _KNOWN_CALLS:
            return _bad(f"unknown call type {kind[:80]!r}")
        fid = id_value(body, "framework_id")
        assert fid is not None
        stream = self._by_id.get(request.headers.get("Mesos-Stream-Id", ""))
        if stream is None or stream.closed:
            return _bad("no open subscription for this Mesos-Stream-Id: SUBSCRIBE first")
        if stream.framework_id != fid:
            return _bad(f"framework {fid} is not the one subscribed on this stream")
        if kind == "ACCEPT":
            launch = convert.accept(body, fid)
            now = time.time()
            for task_id, agent_id, why in launch.refused:
                if task_id:
                    stream.push(record(convert.refused_update(task_id, agent_id, why, now)))
                else:
                    self._warn_once(fid, why)
            self.host.feed(fx.Received(stream.peer, launch.accept))
        elif kind in convert.CALLS:
            self.host.feed(fx.Received(stream.peer, convert.CALLS[kind](body, fid)))
        elif kind in convert.IGNORED_CALLS:
            self._warn_once(fid, f"{kind}: {convert.IGNORED_CALLS[kind]}")
        else:  # UPDATE_FRAMEWORK: nothing to update here yet; Mesos answers it 200
            return web.Response(status=200)
        return web.Response(status=202)

    def _warn_once(self, framework_id: str, text: str) -> None:
        if (framework_id, text) not in self._warned:
            self._warned.add((framework_id, text))
            log.warning("v1 framework %s: %s", framework_id, text)

    def close(self) -> None:
        for stream in list(self.streams.values()):
            stream.close()


_KNOWN_CALLS = {"ACCEPT", "UPDATE_FRAMEWORK", *convert.CALLS, *convert.IGNORED_CALLS}
