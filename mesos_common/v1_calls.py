"""Reading Mesos v1 calls, shared by the master's and the agent's v1 APIs (pure): `{"value":
...}` ids and base64 bytes. A call that cannot be understood is a `V1Error`, answered 400 with
its text (v1_http.py reads the body)."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any


class V1Error(ValueError):
    """A call that cannot be understood: the HTTP layer answers 400 with this text."""


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
