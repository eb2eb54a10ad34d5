"""The HTTP front every Marathon serves, leader or not.

- Leading (its term's service is ready): the v2 API itself (marathon/http/), every response
  carrying `X-Marathon-Leader: http://host:port`.
- Standby: `/ping`, `GET /v2/leader` and `/v2/info` (`"elected": false`, the framework id
  read from the shared store, cached for `FRAMEWORK_ID_TTL`) are answered here;
  every other request is proxied to the leader (method, path, query, headers with the
  client's credentials, body; responses streamed, so `/v2/events` works) with
  `X-Marathon-Via` added, over HTTPS when this node serves it (the Marathons of a cluster
  share their TLS setup; the leader's certificate is checked against `--ssl_ca`). No leader
  known, the leader unreachable, or a request that already came through a proxy: 503 with a
  JSON message (clients such as marathon-python retry on another server).
- `DELETE /v2/leader` on the leader abdicates once the answer is sent; on a standby it is
  proxied to the leader like everything else.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

import aiohttp
from aiohttp import web

from marathon import metrics, views, webui
from marathon.http.app import API
from marathon.leadership import Node
from marathon.store_zk import escape
from mesos_common.auth import http as http_auth
from mesos_common.auth.flags import MARATHON_PUBLIC, MARATHON_REALM
from mesos_common.auth.http import HttpAuth

log = logging.getLogger("marathon.proxy")

NODE = web.AppKey("node", Node)
SESSION = web.AppKey("session", aiohttp.ClientSession)
AUTH = web.AppKey("auth", HttpAuth)
STREAMS = web.AppKey("streams", set)
OPTIONS = web.AppKey("options", object)
ZK_TIMEOUT = web.AppKey("zk_timeout", float)
VIA = "X-Marathon-Via"
LEADER = "X-Marathon-Leader"
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailer", "transfer-encoding", "upgrade", "host", "content-length"}
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
STARTING_WAIT = 10.0  # a request to a leader still recovering its state waits this long
FRAMEWORK_ID_TTL = 2.0  # a standby re-reads the stored framework id at most this often
ZK_READ_TIMEOUT = 2.0


class StoredFrameworkId:
    """The framework id the leader stored (ZooKeeper `<zk path>/state/meta/framework_id`),
    for a standby's `/v2/info`. One read per `ttl` at most, however many requests; a failed
    read keeps the last value (None until one read succeeds)."""

    def __init__(self, ttl: float = FRAMEWORK_ID_TTL,
                 clock: Any = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._value: str | None = None
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()
        self.reads = 0  # ZooKeeper reads done (for tests)

    async def get(self, node: Node) -> str | None:
        elector = node.elector
        if elector is None:  # no ZooKeeper: nothing shared to read
            return self._value
        async with self._lock:  # concurrent requests share one read
            if self._clock() - self._read_at >= self.ttl:
                path = f"{elector.path.rstrip('/')}/state/{escape('meta')}/" \
                       f"{escape('framework_id')}"
                self._value = await asyncio.to_thread(self._read, elector.client, path)
                self._read_at = self._clock()
        return self._value

    def _read(self, client: Any, path: str) -> str | None:
        """Blocking (a worker thread): the stored id, or the last one if ZooKeeper fails."""
        self.reads += 1
        try:
            data, _ = client.get_async(path).get(timeout=ZK_READ_TIMEOUT)
            value = json.loads(data)
        except Exception as e:  # NoNodeError: no leader has registered yet
            if type(e).__name__ == "NoNodeError":
                return None
            log.warning("reading the stored framework id (%s) failed: %s", path, e)
            return self._value
        return value if isinstance(value, str) else None


FRAMEWORK_ID = web.AppKey("framework_id", StoredFrameworkId)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def info_doc(node: Node, options: Any, zk_session_timeout: float,
             framework_id: str | None = None) -> dict[str, Any]:
    """`/v2/info`: the leader's own document, or a standby's with `elected: false` (and the
    stored `framework_id`, as real Marathon's standbys report it)."""
    svc = node.service
    if svc is not None:
        doc = views.info(svc.state, svc.options, svc.leader)
    else:
        doc = {"name": "marathon", "version": "1.10.26", "buildref": "corral",
               "frameworkId": framework_id,
               "marathon_config": {"master": options.master,
                                   "framework_name": options.framework_name,
                                   "hostname": options.hostname,
                                   "failover_timeout": options.failover_timeout},
               "http_config": {"http_port": options.http_port, "https_port": 8443}}
    doc["elected"] = svc is not None
    doc["leader"] = node.leader
    doc.setdefault("marathon_config", {})["ha"] = node.zk_url is not None
    ms = int(zk_session_timeout * 1000)
    doc["zookeeper_config"] = {"zk": node.zk_url, "zk_timeout": ms, "zk_session_timeout": ms,
                               "zk_max_versions": 50}
    return doc


async def _leader_answer(request: web.Request, node: Node) -> web.StreamResponse | None:
    """The requests a node answers itself whatever its role (None: not one of them)."""
    path = re.sub("/+", "/", request.path).rstrip("/") or "/"
    if path == "/ping" and node.service is None:
        return web.Response(text="pong")
    if path == "/v2/leader" and request.method == "GET":
        if node.leader is None:
            return _json({"message": "There is no leader"}, 404)
        return _json({"leader": node.leader})
    if path == "/v2/leader" and request.method == "DELETE" and node.leading:
        resp = _json({"message": "Leadership abdicated"})
        await resp.prepare(request)
        await resp.write_eof()
        node.abdicate()
        return resp
    if path == "/v2/info" and request.method == "GET":
        fid = None if node.service is not None else await request.app[FRAMEWORK_ID].get(node)
        return _json(info_doc(node, request.app[OPTIONS], request.app[ZK_TIMEOUT], fid))
    return None


async def front(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    own = await _leader_answer(request, node)
    if own is not None:
        return own
    svc = await node.wait_service(STARTING_WAIT)
    if svc is not None:
        return await _serve(request, svc)
    if node.leading:
        return _json({"message": "Marathon is becoming the leader; try again"}, 503)
    return await forward(request, node)


async def _serve(request: web.Request, svc: Any) -> web.StreamResponse:
    """The API from our state; event streams are ended when our term ends."""
    streams = request.app[STREAMS]
    task = asyncio.current_task()
    sse = request.path.rstrip("/").endswith("/v2/events")
    if sse and task is not None:
        streams.add(task)
    try:
        return await API.handle(svc, request)
    finally:
        if sse and task is not None:
            streams.discard(task)


def end_streams(app: web.Application) -> None:
    """Cancel the SSE handlers of a term that ended (their handler ends the response)."""
    streams = app[STREAMS]
    for task in list(streams):  # a copy: a cancelled handler leaves the set
        task.cancel()


async def forward(request: web.Request, node: Node) -> web.StreamResponse:
    if request.headers.get(VIA):
        return _json({"message": f"{node.me} is not the leader either (proxy loop?); "
                                 "try again", "leader": node.leader}, 503)
    leader = node.leader
    if leader is None or leader == node.me:
        return _json({"message": "Could not determine the current leader; try again"}, 503)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
    headers[VIA] = f"1.1 {node.me}"
    sse = "text/event-stream" in request.headers.get("Accept", "") or \
        request.path.rstrip("/").endswith("/v2/events")
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT,
                                    sock_read=None if sse else READ_TIMEOUT)
    url = f"{request.app[AUTH].scheme}://{leader}{request.rel_url}"
    body = await request.read()
    resp: web.StreamResponse | None = None
    try:
        async with request.app[SESSION].request(
                request.method, url, headers=headers, data=body or None, timeout=timeout,
                allow_redirects=False) as up:
            resp = web.StreamResponse(status=up.status, reason=up.reason)
            for k, v in up.headers.items():
                if k.lower() not in HOP or k.lower() == "content-length":
                    resp.headers.add(k, v)
            await resp.prepare(request)
            async for data in up.content.iter_any():
                await resp.write(data)
            await resp.write_eof()
            return resp
    except (TimeoutError, aiohttp.ClientError) as e:
        if resp is not None:  # the leader went away mid-answer: end ours too
            log.info("proxied %s %s ended: %s", request.method, request.path, e)
            return resp
        log.warning("proxying %s %s to %s failed: %s", request.method, request.path,
                    leader, e)
        return _json({"message": f"Could not reach the leader at {leader}: "
                                 f"{type(e).__name__}; try again", "leader": leader}, 503)


async def _leader_header(request: web.Request, resp: web.StreamResponse) -> None:
    node = request.app[NODE]
    if node.service is not None and LEADER not in resp.headers:
        resp.headers[LEADER] = f"{request.app[AUTH].scheme}://{node.me}"


async def _session(app: web.Application):
    auth = app[AUTH]
    context = auth.client_context() if auth.tls else None
    app[SESSION] = aiohttp.ClientSession(auto_decompress=False,
                                         connector=aiohttp.TCPConnector(ssl=context or True))
    yield
    await app[SESSION].close()


def make_front(node: Node, options: Any, zk_session_timeout: float,
               auth: HttpAuth | None = None) -> web.Application:
    """`auth`: --http_credentials (Basic on everything but /ping) and TLS."""
    guard = http_auth.middleware(auth or HttpAuth(), realm=MARATHON_REALM,
                                 public=MARATHON_PUBLIC)
    app = web.Application(client_max_size=16 * 2**20, middlewares=[guard])
    app[AUTH] = auth or HttpAuth()
    app[NODE] = node
    app[STREAMS] = set()
    app[OPTIONS] = options
    app[ZK_TIMEOUT] = zk_session_timeout
    app[FRAMEWORK_ID] = StoredFrameworkId()
    app.cleanup_ctx.append(_session)
    app.on_response_prepare.append(_leader_header)
    metrics.install(app, lambda: node.service, front)  # GET /metrics, request timings
    webui.install(app)  # the web UI at / and /ui/
    app.router.add_route("*", "/{tail:.*}", front)
    return app
