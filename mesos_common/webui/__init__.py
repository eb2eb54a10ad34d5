"""What the master's and Marathon's web UIs share: the base stylesheet (`base.css`) and how
their static pages are served: the page at its index paths, its assets under a prefix, the
base stylesheet beside them (no build step, nothing fetched from elsewhere)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from aiohttp import web

BASE_CSS = Path(__file__).parent / "base.css"


def install(app: web.Application, static: Path, prefix: str,
            index_paths: Iterable[str] = ("/",)) -> None:
    """`static/index.html` at each of `index_paths`, `static/*` under `prefix` (which ends
    with a slash), the shared stylesheet at `<prefix>base.css`."""
    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    async def base_css(_: web.Request) -> web.FileResponse:
        return web.FileResponse(BASE_CSS)

    for path in index_paths:
        app.router.add_get(path, index)
    app.router.add_get(f"{prefix}base.css", base_css)
    app.router.add_static(prefix, static)
