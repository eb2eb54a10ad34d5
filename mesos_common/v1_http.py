"""The HTTP side of the v1 APIs, shared by master and agent: reading a call's JSON body (its
size limit, its shape), 400 answers, and writing a RecordIO stream to a chunked response."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from aiohttp import web

from mesos_common.recordio import Stream
from mesos_common.v1_calls import V1Error

MAX_BODY_BYTES = 16 * 1024 * 1024


async def read_call(request: web.Request) -> dict[str, Any]:
    """The call's JSON object, with a string `type` (413 past MAX_BODY_BYTES)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES,
                                            actual_size=request.content_length)
    try:
        body = json.loads(await request.text())
    except ValueError as e:
        raise V1Error(f"invalid JSON: {e}") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise V1Error("a call is a JSON object with a string 'type'")
    return body


def to_leader(leader: Mapping[str, Any] | None, path: str) -> NoReturn:
    """A standby's answer: 307 to the leader's same path (a protocol-relative `Location`, as
    Mesos sends), 503 while no leader is elected."""
    if not leader:
        raise web.HTTPServiceUnavailable(text="no leading master elected")
    host = leader.get("hostname") or leader.get("ip")
    raise web.HTTPTemporaryRedirect(f"//{host}:{leader.get('port')}{path}")


def bad(text: str) -> web.Response:
    return web.Response(status=400, text=text)


async def open_response(request: web.Request,
                        headers: dict[str, str] | None = None) -> web.StreamResponse:
    """A 200 chunked JSON response, its headers sent."""
    resp = web.StreamResponse(status=200, headers=headers)
    resp.content_type = "application/json"
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    return resp


async def pump(stream: Stream, resp: web.StreamResponse) -> None:
    """Write what the stream buffers until it is closed or the client leaves."""
    try:
        while True:
            chunk = await stream.next_chunk()
            if chunk is None:
                return
            await resp.write(chunk)
    except (ConnectionResetError, ConnectionError):
        pass  # the client left
