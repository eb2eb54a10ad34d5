"""The master's web UI: static files served at `/` (index) and `/webui/` (assets).

The pages are a client of the public JSON APIs like any other (`/master/state-summary`,
`/metrics/snapshot`, `/roles`, `/master/tasks`, the agents' `/state` and `/files/*`, which
answer any origin); there is no build step and nothing is fetched from elsewhere.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"


async def index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def install(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_static("/webui/", STATIC)
