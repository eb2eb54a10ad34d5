"""Reading Mesos v1 calls (JSON POST bodies), shared by the master's and the agent's v1 APIs:
the body limits, the call's shape, `{"value": ...}` ids and base64 bytes. A call that cannot
be understood is a `V1Error`, answered 400 with its text."""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Mapping

from aiohttp import web

MAX_BODY_BYTES = 16 * 1024 * 1024


class V1Error(ValueError):
    """A call that cannot be understood: the HTTP layer answers 400 with this text."""


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


def bad(text: str) -> web.Response:
    return web.Response(status=400, text=text)


def id_value(d: Mapping[str, Any], key: str, required: bool = True) -> str | None:
    """`{"value": "..."}` ids."""
    v = d.get(key)
    if v is None:
        if required:
            raise V1Error(f"missing '{key}'")
        return None
    if isinstance(v, dict) and isinstance(v.get("value"), str) and v["value"]:
        return str(v["value"])
    raise V1Error(f"'{key}' must be {{\"value\": <non-empty string>}}")


def b64_bytes(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise V1Error(f"'{what}' must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise V1Error(f"'{what}' is not valid base64: {e}") from None
