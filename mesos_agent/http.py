"""The agent's HTTP endpoints: `/health`, `/state` (+ Mesos aliases), `/monitor/statistics`
and the files API.

Files API semantics follow Mesos (src/files/files.cpp): `read` returns
`{"data": ..., "offset": N}`, where a missing offset (or -1) answers with the file size and no
data (tail -f clients start there) and one read returns at most 16 pages. Only paths inside
the agent's sandbox root (`<work_dir>/slaves`, after resolving symlinks and `..`) are served:
anything else is 403, a missing path parameter 400, a path that does not exist 404. Mesos's
virtual paths (`/slaves/<agent>/frameworks/...`) are accepted relative to the work dir.

`read?follow=true` is not in Mesos: the file's bytes from `offset` (default 0, -1 its end) as
a chunked stream that follows it until its task ends (follow.py), for `curl -N` and the CLI.
The read-only GET endpoints answer any origin (CORS `*`), so the master's web UI can read
sandboxes and `/state` from the browser; this opens nothing that JSONP did not already.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import re
import stat
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mesos_agent import paths
from mesos_agent.follow import FollowHub
from mesos_agent.metrics import AgentMetrics
from mesos_common import prom
from mesos_common.auth.http import HttpAuth, middleware

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MAX_READ = 16 * PAGE
_JSONP = re.compile(r"^[A-Za-z_$][\w$.]*$")
FOLLOW = web.AppKey("follow", FollowHub)


class PathError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def resolve_sandbox_path(work_dir: str, path: str | None) -> str:
    """The real path behind `path` when it lies inside a sandbox root; PathError otherwise."""
    if not path:
        raise PathError(400, "Expecting 'path=value' in query")
    if "\x00" in path:
        raise PathError(400, "path contains a NUL byte")
    roots = [os.path.realpath(r) for r in paths.sandbox_roots(work_dir)]
    real = os.path.realpath(os.path.join(work_dir, path))  # absolute paths ignore work_dir
    if not any(_within(real, r) for r in roots) and path.lstrip("/").startswith(
            paths.SANDBOXES + "/"):
        real = os.path.realpath(os.path.join(work_dir, path.lstrip("/")))  # Mesos virtual path
    if not any(_within(real, r) for r in roots):
        raise PathError(403, f"{path} is outside the agent's sandboxes")
    if not os.path.exists(real):
        raise PathError(404, f"{path} does not exist")
    return real


def read_file(real: str, offset: int, length: int | None) -> dict[str, Any]:
    """One Mesos `files/read` answer for an already resolved path."""
    if offset < -1:
        raise PathError(400, f"Negative offset provided: {offset}")
    if length is not None and length < -1:
        raise PathError(400, f"Negative length provided: {length}")
    if os.path.isdir(real):
        raise PathError(400, "Cannot read a directory")
    with open(real, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if offset == -1 or offset >= size:
            return {"data": "", "offset": size}
        want = size - offset if length is None or length == -1 else length
        f.seek(offset)
        data = f.read(min(want, MAX_READ))
    return {"data": data.decode("utf-8", errors="replace"), "offset": offset}


def _name(table: Any, ident: int) -> str:
    try:
        return str(table(ident)[0])
    except KeyError:
        return str(ident)


def listing(real: str, shown: str) -> list[tuple[str, os.stat_result]]:
    """(shown path, lstat) of a directory's entries (or of the one file) at `real`."""
    if os.path.isdir(real):
        names = sorted(os.listdir(real))
        items = [(os.path.join(real, n), shown.rstrip("/") + "/" + n) for n in names]
    else:
        items = [(real, shown)]
    out = []
    for full, visible in items:
        try:
            out.append((visible, os.lstat(full)))
        except OSError:
            continue
    return out


def owner_names(st: os.stat_result) -> tuple[str, str]:
    return _name(pwd.getpwuid, st.st_uid), _name(grp.getgrgid, st.st_gid)


def browse(real: str, shown: str) -> list[dict[str, Any]]:
    """Mesos `files/browse` entries for a directory (or the one file) at `real`."""
    out = []
    for visible, st in listing(real, shown):
        uid, gid = owner_names(st)
        out.append({"path": visible, "nlink": st.st_nlink, "size": st.st_size,
                    "mtime": int(st.st_mtime), "mode": stat.filemode(st.st_mode),
                    "uid": uid, "gid": gid})
    return out


def _json(request: web.Request, data: Any, status: int = 200) -> web.Response:
    callback = request.query.get("jsonp")
    if callback and _JSONP.match(callback):
        return web.Response(text=f"{callback}({json.dumps(data)});", status=status,
                            content_type="text/javascript")
    return web.json_response(data, status=status)


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise PathError(400, f"Failed to parse {name}: {raw!r} is not an integer") from None


async def _cors(request: web.Request, resp: web.StreamResponse) -> None:
    if request.method in ("GET", "HEAD"):
        resp.headers["Access-Control-Allow-Origin"] = "*"
        resp.headers["Access-Control-Expose-Headers"] = "X-Offset"


def make_app(get_state: Callable[[], dict[str, Any]], work_dir: str,
             get_statistics: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None,
             auth: HttpAuth | None = None) -> web.Application:
    """The agent's aiohttp application; `get_state` renders the core's `/state` document,
    `get_statistics` the `/monitor/statistics` list (per-task usage, Mesos shape)."""

    async def statistics(request: web.Request) -> web.Response:
        return _json(request, await get_statistics() if get_statistics is not None else [])

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200)

    async def state(request: web.Request) -> web.Response:
        return _json(request, get_state())

    async def files_read(request: web.Request) -> web.StreamResponse:
        try:
            real = resolve_sandbox_path(work_dir, request.query.get("path"))
            if request.query.get("follow", "").lower() in ("true", "1", "yes"):
                if os.path.isdir(real):
                    raise PathError(400, "Cannot read a directory")
                start = _int_param(request, "offset", 0)
                assert start is not None
                if start < -1:
                    raise PathError(400, f"Negative offset provided: {start}")
                return await hub.stream(request, real, start)
            offset = _int_param(request, "offset", -1)
            length = _int_param(request, "length", None)
            assert offset is not None
            return _json(request, read_file(real, offset, length))
        except PathError as e:
            return web.Response(status=e.status, text=str(e) + "\n")
        except OSError as e:
            return web.Response(status=500, text=f"{e}\n")

    async def files_browse(request: web.Request) -> web.Response:
        path = request.query.get("path")
        try:
            real = resolve_sandbox_path(work_dir, path)
            return _json(request, browse(real, path or ""))
        except PathError as e:
            return web.Response(status=e.status, text=str(e) + "\n")

    async def files_download(request: web.Request) -> web.StreamResponse:
        try:
            real = resolve_sandbox_path(work_dir, request.query.get("path"))
        except PathError as e:
            return web.Response(status=e.status, text=str(e) + "\n")
        if os.path.isdir(real):
            return web.Response(status=400, text="Cannot download a directory\n")
        name = os.path.basename(real)
        return web.FileResponse(real, headers={
            "Content-Disposition": f'attachment; filename="{name}"'})

    metrics = AgentMetrics(get_state)
    hub = FollowHub(get_state)

    async def close_hub(_: web.Application) -> None:
        await hub.close()

    async def prometheus(_: web.Request) -> web.Response:
        return prom.exposition(metrics.registry)

    app = web.Application(middlewares=[prom.timing_middleware(metrics.requests),
                                       middleware(auth or HttpAuth())])
    app[FOLLOW] = hub
    app.on_cleanup.append(close_hub)
    app.on_response_prepare.append(_cors)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", prometheus)
    for prefix in ("", "/slave(1)"):
        for suffix in ("", ".json"):
            app.router.add_get(f"{prefix}/state{suffix}", state)
    for suffix in ("", ".json"):
        app.router.add_get(f"/files/read{suffix}", files_read)
        app.router.add_get(f"/files/browse{suffix}", files_browse)
        app.router.add_get(f"/monitor/statistics{suffix}", statistics)
    app.router.add_get("/files/download", files_download)
    return app
