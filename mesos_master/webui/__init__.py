"""The master's web UI: static files served at `/` (index) and `/webui/` (assets).

The pages are a client of the public JSON APIs like any other (`/master/state-summary`,
`/metrics/snapshot`, `/roles`, `/master/tasks`, the agents' `/state` and `/files/*`, which
answer any origin); there is no build step and nothing is fetched from elsewhere.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from mesos_common import webui

STATIC = Path(__file__).parent / "static"


def install(app: web.Application) -> None:
    webui.install(app, STATIC, "/webui/")
