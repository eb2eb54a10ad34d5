"""Marathon-side health checks (HTTP, HTTPS, TCP): the IO edge that probes tasks.

One loop looks every `resolution` seconds for checks that are due (each task/check pair
runs every `intervalSeconds`); probes run concurrently in a TaskGroup with their own
timeout. Results go to the core (`HealthResult`), which keeps the books: a task failing
`maxConsecutiveFailures` times in a row after its grace period is killed and replaced.
COMMAND and MESOS_* checks are the executor's job and are not probed here.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from marathon.model import marathon_checks
from marathon.tracker import TaskRecord

if TYPE_CHECKING:
    from marathon.server import MarathonServer

log = logging.getLogger("marathon.health")


def probe_port(t: TaskRecord, hc: dict[str, Any]) -> int | None:
    if hc.get("port"):
        return int(hc["port"])
    i = int(hc.get("portIndex", 0))
    return t.ports[i] if i < len(t.ports) else None


async def probe(hc: dict[str, Any], host: str, port: int) -> tuple[bool, str]:
    timeout = float(hc.get("timeoutSeconds", 20))
    proto = hc.get("protocol", "HTTP")
    try:
        if proto == "TCP":
            _, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            w.close()
            return True, ""
        scheme = "https" if proto == "HTTPS" else "http"
        url = f"{scheme}://{host}:{port}{hc.get('path', '/')}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            async with s.get(url, ssl=False, allow_redirects=False) as r:
                code = r.status
        if 200 <= code < 400 or (code < 200 and hc.get("ignoreHttp1xx")):
            return True, ""
        return False, f"HTTP {code}"
    except (TimeoutError, OSError, aiohttp.ClientError) as e:
        return False, f"{type(e).__name__}: {e}"


class HealthChecker:
    def __init__(self, svc: MarathonServer, resolution: float = 0.5) -> None:
        self.svc = svc
        self.resolution = resolution
        self._due: dict[tuple[str, int], float] = {}

    def _due_checks(self, now: float) -> list[tuple[TaskRecord, int, dict[str, Any], int]]:
        out = []
        live: set[tuple[str, int]] = set()
        for app_id, app in self.svc.state.apps.items():
            checks = marathon_checks(app)
            if checks:  # apps without probes cost nothing here, however many tasks they have
                out += self._due_for(app_id, checks, now, live)
        for key in set(self._due) - live:
            del self._due[key]
        return out

    def _due_for(self, app_id: str, checks: list[dict[str, Any]], now: float,
                 live: set[tuple[str, int]]) -> list[tuple[TaskRecord, int, dict[str, Any], int]]:
        out = []
        for t in self.svc.state.tasks_of(app_id):
            if not t.running or t.killing:
                continue
            for i, hc in enumerate(checks):
                key = (t.id, i)
                live.add(key)
                port = probe_port(t, hc)
                if port is None:
                    continue
                if now >= self._due.get(key, t.started_at or now):
                    self._due[key] = now + float(hc.get("intervalSeconds", 60))
                    out.append((t, i, hc, port))
        return out

    async def _one(self, t: TaskRecord, i: int, hc: dict[str, Any], port: int) -> None:
        alive, cause = await probe(hc, t.host, port)
        if self.svc.state.tasks.get(t.id) is t:
            self.svc.health_result(t.id, i, alive, cause)

    async def run(self) -> None:
        while True:
            due = self._due_checks(self.svc.now())
            if due:
                async with asyncio.TaskGroup() as tg:
                    for t, i, hc, port in due:
                        tg.create_task(self._one(t, i, hc, port))
                await self.svc.flush_async()  # kills of unhealthy tasks: durable before they go out
            await asyncio.sleep(self.resolution)
