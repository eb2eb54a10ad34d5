"""The Docker engine's HTTP API over its unix socket (aiohttp), every call under a deadline.

Nothing here holds a thread or a connection for a container's life: calls are short requests
that fail with `EngineTimeout` when the engine does not answer in time (a hung or paused
engine fails the launch that waits on it instead of leaving it queued), and exits are learnt
from the one event stream (`event_stream`).
"""
from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

API_VERSION = "v1.41"  # Docker 20.10; later engines answer it too
DEFAULT_SOCKET = "/var/run/docker.sock"
STDOUT, STDERR = 1, 2
_HEADER = struct.Struct(">BxxxL")  # a multiplexed log frame: stream, 3 pad bytes, length


class EngineError(Exception):
    """The engine refused a call (`status` is the HTTP status) or could not be reached (0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EngineTimeout(EngineError):
    """The engine did not answer within the call's deadline."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


def socket_path(environ: Mapping[str, str] = os.environ) -> str:
    """The engine's unix socket, from DOCKER_HOST (`unix://PATH`) as the docker CLI reads it."""
    host = environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if not host.startswith("unix://"):
        raise ValueError(f"DOCKER_HOST={host!r}: only unix:// sockets are supported")
    return host[len("unix://"):]


def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        if isinstance(v, bool):
            out[k] = "1" if v else "0"
        elif isinstance(v, (dict, list)):
            out[k] = json.dumps(v)
        else:
            out[k] = str(v)
    return out


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message") or body.decode(errors="replace")).strip()
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()


class FrameReader:
    """A non-TTY container's multiplexed log stream, incrementally: bytes in, whole
    (stream, payload) frames out; a frame cut by a chunk boundary waits for its rest."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames, at = [], 0
        while at + _HEADER.size <= len(self._buf):
            stream, size = _HEADER.unpack_from(self._buf, at)
            end = at + _HEADER.size + size
            if end > len(self._buf):
                break
            frames.append((stream, bytes(self._buf[at + _HEADER.size:end])))
            at = end
        del self._buf[:at]
        return frames


class Engine:
    """One aiohttp session on the engine's socket; `timeout` is every call's default deadline."""

    def __init__(self, path: str | None = None, timeout: float = 60.0) -> None:
        self.path = path or socket_path()
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # A call timed out and none has been answered since: callers can fail fast rather
        # than each wait out its own deadline behind a hung engine.
        self.hung = False

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No connection limit: our callers bound what they have in flight themselves
            # (launches, log copies), and kills each wait out their grace period in the engine.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(self.path, limit=0),
                timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    def _timed_out(self, what: str, deadline: float) -> EngineTimeout:
        self.hung = True
        return EngineTimeout(f"the Docker engine did not answer ({what}) within {deadline:g} s")

    def _unreachable(self, e: Exception) -> EngineError:
        return EngineError(0, f"cannot reach the Docker engine at {self.path}: {e}")

    def _url(self, path: str) -> str:
        return f"http://docker/{API_VERSION}{path}"

    async def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                   body: Any = None, timeout: float | None = None, what: str = "",
                   raw: bool = False) -> Any:
        """One request; the decoded JSON answer (None when empty), or the body's bytes with
        `raw`. Raises EngineError."""
        deadline = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(deadline):
                async with self._http().request(method, self._url(path), params=_query(params),
                                                json=body) as r:
                    data = await r.read()
                    status = r.status
        except TimeoutError:
            raise self._timed_out(what or f"{method} {path}", deadline) from None
        except aiohttp.ClientError as e:
            raise self._unreachable(e) from None
        self.hung = False
        if status >= 400:
            raise EngineError(status, _error_text(data))
        if raw:
            return data
        return json.loads(data) if data else None

    async def pull(self, image: str, timeout: float) -> None:
        """`docker pull`: the engine answers 200 and reports failures inside its progress."""
        name, tag = image, None
        if "@" not in image and ":" in image.rsplit("/", 1)[-1]:
            name, tag = image.rsplit(":", 1)
        if tag is None and "@" not in image:
            tag = "latest"  # without a tag the engine would pull every tag of the repository
        progress = await self.call("POST", "/images/create", timeout=timeout, what="pull",
                                   params={"fromImage": name, "tag": tag}, raw=True)
        for line in progress.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("error"):
                raise EngineError(500, str(doc["error"]))

    async def logs(self, cid: str, since: str | None, batch_bytes: int = 1 << 20
                   ) -> AsyncGenerator[list[tuple[int, bytes]], None]:
        """The container's output since `since` ("seconds.nanoseconds", inclusive), each
        line prefixed with its timestamp, in batches of about `batch_bytes`:
        [(stream, b"<RFC3339Nano> line")]. Each read has the call deadline, not the whole
        transfer: a chatty container's backlog streams through without being held whole."""
        deadline = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout,
                                         sock_read=self.timeout)
        params = _query({"stdout": True, "stderr": True, "timestamps": True, "since": since})
        try:
            async with self._http().get(self._url(f"/containers/{cid}/logs"), params=params,
                                        timeout=deadline) as r:
                if r.status >= 400:
                    raise EngineError(r.status, _error_text(await r.read()))
                reader, batch, size = FrameReader(), [], 0
                async for chunk in r.content.iter_chunked(64 * 1024):
                    frames = reader.feed(chunk)
                    batch += frames
                    size += sum(len(p) for _, p in frames)
                    if size >= batch_bytes:
                        yield batch
                        batch, size = [], 0
                if batch:
                    yield batch
        except TimeoutError:
            raise self._timed_out("logs", self.timeout) from None
        except aiohttp.ClientError as e:
            raise self._unreachable(e) from None

    @asynccontextmanager
    async def event_stream(self, filters: Mapping[str, list[str]]
                           ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """`docker events` with `filters`; the iterator ends when the engine closes it. The
        connection is open (the engine has answered) when this yields."""
        try:
            async with asyncio.timeout(self.timeout):
                r = await self._http().get(self._url("/events"),
                                           params=_query({"filters": dict(filters)}))
        except TimeoutError:
            raise self._timed_out("events", self.timeout) from None
        except aiohttp.ClientError as e:
            raise self._unreachable(e) from None
        try:
            if r.status >= 400:
                raise EngineError(r.status, _error_text(await r.read()))
            yield _json_lines(r)
        finally:
            r.close()

    def close(self) -> None:
        """Close the session's connections now (no await: callers may be synchronous)."""
        if self._session is not None and not self._session.closed:
            self._session.connector.close()  # type: ignore[union-attr]
            self._session.detach()
        self._session = None


async def _json_lines(r: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    try:
        async for line in r.content:
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue
    except aiohttp.ClientError:
        return
