"""RecordIO, the framing of Mesos's v1 event streams: `<length in bytes>\n<JSON>` per record,
no other separator (a `\r` or leading space would stall pymesos's parser for good), and the
bounded per-stream buffer the master's and the agent's v1 streams are written from
(v1_http.py writes it to the response)."""
from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Any

log = logging.getLogger("mesos_common.recordio")

MAX_BUFFERED_BYTES = 16 * 1024 * 1024  # past this a reader is too slow: disconnect it


def record(event: Any) -> bytes:
    data = json.dumps(event, separators=(",", ":")).encode()
    return b"%d\n%s" % (len(data), data)


def split(buf: bytes) -> tuple[list[Any], bytes]:
    """The whole records at the front of `buf`, decoded, and what is left (a client's side)."""
    out: list[Any] = []
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            return out, buf
        size = int(buf[:nl])
        if len(buf) < nl + 1 + size:
            return out, buf
        out.append(json.loads(buf[nl + 1:nl + 1 + size]))
        buf = buf[nl + 1 + size:]


class Stream:
    """One subscriber's event stream: a byte-bounded buffer its request task drains, so a
    slow reader never holds the daemon; one that lets it fill is disconnected."""

    def __init__(self, stream_id: str, limit: int = MAX_BUFFERED_BYTES) -> None:
        self.stream_id = stream_id
        self.limit = limit
        self.closed = False
        self._buf: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._ready = asyncio.Event()

    def describe(self) -> str:
        return f"v1 stream {self.stream_id}"

    def push(self, data: bytes) -> None:
        if self.closed:
            return
        if self._size + len(data) > self.limit:
            log.warning("%s reads too slowly: disconnected", self.describe())
            self.close()
            return
        self._buf.append(data)
        self._size += len(data)
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._buf.clear()
        self._size = 0
        self._ready.set()

    def end(self) -> None:
        """Over once what is buffered has been written (the last event still goes out)."""
        self.closed = True
        self._ready.set()

    async def next_chunk(self) -> bytes | None:
        """What is buffered, as one write (None: the stream is over)."""
        while not self._buf:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        data = b"".join(self._buf)
        self._buf.clear()
        self._size = 0
        return data
