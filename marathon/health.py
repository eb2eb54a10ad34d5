"""Marathon-side health checks (HTTP, HTTPS, TCP): the IO edge that probes tasks.

One loop looks every `resolution` seconds for checks that are due (each task/check pair
runs every `intervalSeconds`); probes run concurrently in a TaskGroup with their own
timeout. Results go to `apply_result`, which is pure bookkeeping: a task failing
`maxConsecutiveFailures` times in a row after its grace period is killed and replaced.
COMMAND and MESOS_* checks are the executor's job and are not probed here.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from marathon.model import marathon_checks
from marathon.tracker import Health, TaskRecord

if TYPE_CHECKING:
    from marathon.service import MarathonService

log = logging.getLogger("marathon.health")


def probe_port(t: TaskRecord, hc: dict[str, Any]) -> int | None:
    if hc.get("port"):
        return int(hc["port"])
    i = int(hc.get("portIndex", 0))
    return t.ports[i] if i < len(t.ports) else None


def apply_result(svc: MarathonService, t: TaskRecord, i: int, hc: dict[str, Any],
                 alive: bool, cause: str, now: float) -> None:
    """Record one probe result; kill the task when it has failed too often."""
    while len(t.health) <= i:
        t.health.append(Health())
    h = t.health[i]
    was = h.alive
    if alive:
        h.alive, h.consecutive_failures, h.last_success = True, 0, now
        if h.first_success is None:
            h.first_success = now
    else:
        in_grace = h.first_success is None and t.started_at is not None and \
            now - t.started_at < hc.get("gracePeriodSeconds", 300)
        h.last_failure, h.last_failure_cause = now, cause
        if not in_grace:
            h.alive = False
            h.consecutive_failures += 1
        limit = int(hc.get("maxConsecutiveFailures", 3))
        if limit and h.consecutive_failures >= limit and not t.killing:
            log.info("killing unhealthy task %s: %s", t.id, cause)
            svc.events.publish("unhealthy_instance_kill_event", appId=t.app_id, taskId=t.id,
                               instanceId=t.instance_id, version=t.version,
                               reason=cause, host=t.host, slaveId=t.agent_id)
            svc.kill(t.id)
    if was != h.alive:
        svc.events.publish("health_status_changed_event", appId=t.app_id,
                           instanceId=t.instance_id, version=t.version, alive=h.alive)
        svc.tick([t.app_id])


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
    except (OSError, asyncio.TimeoutError, aiohttp.ClientError) as e:
        return False, f"{type(e).__name__}: {e}"


class HealthChecker:
    def __init__(self, svc: MarathonService, resolution: float = 0.5) -> None:
        self.svc = svc
        self.resolution = resolution
        self._due: dict[tuple[str, int], float] = {}

    def _due_checks(self, now: float) -> list[tuple[TaskRecord, int, dict[str, Any], int]]:
        out = []
        live = set()
        for app_id, app in self.svc.apps.items():
            checks = marathon_checks(app)
            if checks:  # apps without probes cost nothing here, however many tasks they have
                out += self._due_for(app_id, checks, now, live)
        for key in set(self._due) - live:
            del self._due[key]
        return out

    def _due_for(self, app_id: str, checks: list[dict[str, Any]], now: float,
                 live: set[tuple[str, int]]) -> list[tuple[TaskRecord, int, dict[str, Any], int]]:
        out = []
        for t in self.svc.tasks_of(app_id):
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
        if self.svc.tasks.get(t.id) is t:
            apply_result(self.svc, t, i, hc, alive, cause, self.svc.now())

    async def run(self) -> None:
        while True:
            due = self._due_checks(self.svc.now())
            if due:
                async with asyncio.TaskGroup() as tg:
                    for t, i, hc, port in due:
                        tg.create_task(self._one(t, i, hc, port))
                await self.svc.flush_async()  # kills of unhealthy tasks: durable before they go out
            await asyncio.sleep(self.resolution)
