"""Marathon's Prometheus metrics on `GET /metrics` (a client asking for JSON still gets
Marathon's own metrics document) and the timing of every API request.

The families are computed at scrape time from the leader's state: the figures of Marathon's
JSON `/metrics`, and per app its desired instances and its tasks by state and health. A
standby answers with its request timings and `marathon_leader 0`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from marathon import views
from mesos_common import prom

PREFIX = "marathon"
METRICS = web.AppKey("prometheus", CollectorRegistry)
_ROUTE = re.compile(r"^(/v2/[a-zA-Z]+|/[a-zA-Z]+)")


def route_of(request: web.Request) -> str:
    """`/v2/apps`, `/v2/deployments`, ...: app ids in paths must not become label values."""
    match = _ROUTE.match(re.sub("/+", "/", request.path))
    return match.group(1) if match else "/"


def service_families(svc: Any) -> Iterable[Metric]:
    fams = prom.Families()
    fams.add("gauge", f"{PREFIX}_leader", "1 on the leading Marathon", 1.0 if svc else 0.0)
    if svc is None:
        return fams
    st = svc.state
    fams.add("counter", f"{PREFIX}_events_published", "Events published on the event bus",
             svc.events.published)
    fams.add("gauge", f"{PREFIX}_apps_active", "Apps", len(st.apps))
    fams.add("gauge", f"{PREFIX}_tasks_active", "Tasks Marathon tracks", len(st.tasks))
    fams.add("gauge", f"{PREFIX}_deployments_active", "Deployments in progress",
             len(st.deployments))
    fams.add("counter", f"{PREFIX}_offers_processed", "Offers received", st.offers_seen)
    fams.add("counter", f"{PREFIX}_offers_declined", "Offers declined", st.offers_declined)
    fams.add("gauge", f"{PREFIX}_launch_queue_apps", "Apps waiting for offers",
             len(st.queued_since))
    for app in st.apps.values():
        info = views.app_info(st, app, set())
        labels = {"app": app["id"]}
        fams.add("gauge", f"{PREFIX}_app_instances", "Instances the app asks for",
                 app.get("instances", 0), labels)
        for state, key in (("staged", "tasksStaged"), ("running", "tasksRunning")):
            fams.add("gauge", f"{PREFIX}_app_tasks", "The app's tasks by state",
                     info[key], {**labels, "state": state})
        for health, key in (("healthy", "tasksHealthy"), ("unhealthy", "tasksUnhealthy")):
            fams.add("gauge", f"{PREFIX}_app_tasks_health", "Running tasks by health result",
                     info[key], {**labels, "health": health})
    return fams


def install(app: web.Application, get_service: Callable[[], Any],
            fallback: Callable[[web.Request], Any]) -> None:
    """Add the request timer and `GET /metrics` to Marathon's front application; JSON
    clients of `/metrics` are handed to `fallback` (the v2 API)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(prom.FunctionCollector(lambda: service_families(get_service())))
    requests = prom.request_histogram(registry, PREFIX)
    app[METRICS] = registry
    app.middlewares.append(prom.timing_middleware(requests, route_of))

    async def metrics(request: web.Request) -> web.StreamResponse:
        if prom.wants_json(request):
            return await fallback(request)
        return prom.exposition(registry)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/metrics/prometheus", metrics)
