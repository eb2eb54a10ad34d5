"""Readiness checks: the IO edge that asks a deployment's new tasks whether they are ready.

While a deployment affects an app with a `readinessChecks` entry, each of its running
tasks not yet ready is probed every `intervalSeconds` (HTTP or HTTPS GET on the port named
`portName`); an answer in `httpStatusCodesForReady` makes it ready. Results go to the core
(`ReadinessResult`), which holds the deployment step until the new tasks are ready and
shows the last result in `/v2/deployments` (the response itself with
`preserveLastResponse`).
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from marathon.model import port_list
from marathon.tracker import TaskRecord

if TYPE_CHECKING:
    from marathon.server import MarathonServer

log = logging.getLogger("marathon.readiness")

BODY_LIMIT = 4096  # a preserved response keeps at most this much of the body


def check_port(app: dict[str, Any], t: TaskRecord, rc: dict[str, Any]) -> int | None:
    """The host port of the task's port named `portName` (None: no such port)."""
    for i, p in enumerate(port_list(app)):
        if p.get("name") == rc["portName"]:
            return t.ports[i] if i < len(t.ports) else None
    return None


async def probe(rc: dict[str, Any], host: str, port: int) -> tuple[bool, dict[str, Any]]:
    """(ready, Marathon's readinessCheckResult without taskId/ready)."""
    scheme = "https" if rc.get("protocol") == "HTTPS" else "http"
    url = f"{scheme}://{host}:{port}{rc.get('path', '/')}"
    timeout = aiohttp.ClientTimeout(total=float(rc.get("timeoutSeconds", 10)))
    result: dict[str, Any] = {"name": rc.get("name", "readinessCheck"), "lastResponse": None}
    try:
        async with aiohttp.ClientSession(timeout=timeout) as s:
            async with s.get(url, ssl=False, allow_redirects=False) as r:
                status = r.status
                body = (await r.content.read(BODY_LIMIT)).decode("utf-8", "replace")
                ctype = r.headers.get("Content-Type", "")
    except (TimeoutError, OSError, aiohttp.ClientError) as e:
        log.debug("readiness probe %s: %s", url, e)
        return False, result
    if rc.get("preserveLastResponse"):
        result["lastResponse"] = {"status": status, "contentType": ctype, "body": body}
    return status in rc.get("httpStatusCodesForReady", [200]), result


class ReadinessChecker:
    def __init__(self, svc: MarathonServer, resolution: float = 0.5) -> None:
        self.svc = svc
        self.resolution = resolution
        self._due: dict[str, float] = {}

    def _due_checks(self, now: float) -> list[tuple[TaskRecord, dict[str, Any], int]]:
        st = self.svc.state
        deploying = {a for d in st.deployments.values() for a in d.affected}
        out, live = [], set()
        for aid in deploying:
            app = st.apps.get(aid)
            if not app or not app.get("readinessChecks"):
                continue
            rc = app["readinessChecks"][0]
            for t in st.tasks_of(aid):
                if not t.running or t.killing or t.ready:
                    continue
                live.add(t.id)
                port = check_port(app, t, rc)
                if port is not None and now >= self._due.get(t.id, 0.0):
                    self._due[t.id] = now + float(rc.get("intervalSeconds", 30))
                    out.append((t, rc, port))
        for tid in set(self._due) - live:
            del self._due[tid]
        return out

    async def _one(self, t: TaskRecord, rc: dict[str, Any], port: int) -> None:
        ready, result = await probe(rc, t.host, port)
        if self.svc.state.tasks.get(t.id) is t:
            self.svc.readiness_result(t.id, ready, result)

    async def run(self) -> None:
        while True:
            due = self._due_checks(self.svc.now())
            if due:
                async with asyncio.TaskGroup() as tg:
                    for t, rc, port in due:
                        tg.create_task(self._one(t, rc, port))
                await self.svc.flush_async()
            await asyncio.sleep(self.resolution)
