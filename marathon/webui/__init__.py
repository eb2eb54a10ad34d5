"""Marathon's web UI: `/` serves the page, `/ui/` its assets (static, no build step).

The page is a client of the v2 REST API like any other (`/v2/apps`, `/v2/deployments`,
`/v2/queue`, `/v2/events` for live updates); a standby serves it too and proxies the API
calls to the leader as it does for every client.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"


async def index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def install(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/ui", index)
    app.router.add_static("/ui/", STATIC)
