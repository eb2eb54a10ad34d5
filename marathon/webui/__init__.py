"""Marathon's web UI: `/` serves the page, `/ui/` its assets (static, no build step).

The page is a client of the v2 REST API like any other (`/v2/apps`, `/v2/deployments`,
`/v2/queue`, `/v2/events` for live updates); a standby serves it too and proxies the API
calls to the leader as it does for every client.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from mesos_common import webui

STATIC = Path(__file__).parent / "static"


def install(app: web.Application) -> None:
    webui.install(app, STATIC, "/ui/", index_paths=("/", "/ui"))
