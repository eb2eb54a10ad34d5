"""RecordIO, the framing of Mesos's v1 event streams: `<length in bytes>\n<JSON>` per record,
no other separator (a `\r` or leading space would stall pymesos's parser for good)."""
from __future__ import annotations

import json
from typing import Any


def record(event: Any) -> bytes:
    data = json.dumps(event, separators=(",", ":")).encode()
    return b"%d\n%s" % (len(data), data)


def split(buf: bytes) -> tuple[list[Any], bytes]:
    """The whole records at the front of `buf`, decoded, and what is left (a client's side)."""
    out = []
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            return out, buf
        size = int(buf[:nl])
        if len(buf) < nl + 1 + size:
            return out, buf
        out.append(json.loads(buf[nl + 1:nl + 1 + size]))
        buf = buf[nl + 1 + size:]
