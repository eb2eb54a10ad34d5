"""JSON documents the API returns (pure): AppInfo, deployments, groups, queue, info.

Shaped as Marathon 1.10 but restricted to the keys marathon-python 0.13.0 can parse
(reference §1.4): no `tty`, `tasksStats`, queue `role` or group `enforceRole`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from marathon.deployment import config_version
from marathon.model import executor_checks, marathon_checks, timestamp

if TYPE_CHECKING:
    from marathon.core_state import Deployment, MarathonState, Options

EMBED_PREFIXES = ("group.apps.", "apps.", "app.")
STAGED = frozenset({"TASK_STAGING", "TASK_STARTING"})
RUNNING = frozenset({"TASK_RUNNING"})


def embeds(values: Iterable[str]) -> set[str]:
    out = set()
    for v in values:
        for p in EMBED_PREFIXES:
            if v.startswith(p):
                v = v[len(p):]
                break
        out.add(v)
    if "failures" in out:
        out |= {"tasks", "lastTaskFailure", "deployments"}
    return out


def n_checks(app: dict[str, Any]) -> int:
    return len(marathon_checks(app))


def service_ports(app: dict[str, Any]) -> list[int]:
    if "portDefinitions" in app:
        return [p["port"] for p in app["portDefinitions"]]
    return [p.get("servicePort", 0) for p in (app.get("container") or {}).get("portMappings", [])]


def task_json(st: MarathonState, t: Any) -> dict[str, Any]:
    app = st.apps.get(t.app_id, {})
    return t.to_json(service_ports(app), n_checks(app))


def app_info(st: MarathonState, app: dict[str, Any], embed: set[str]) -> dict[str, Any]:
    out = dict(app)
    aid = app["id"]
    staged = st.tally.state_count(aid, STAGED)  # counts, not a scan of every task
    running = st.tally.state_count(aid, RUNNING)
    healthy = unhealthy = 0
    if app.get("healthChecks"):
        checks, ex_checks = n_checks(app), executor_checks(app)
        for t in st.tasks_of(aid):
            # a task with no check result yet is neither healthy nor unhealthy (Marathon)
            if t.state == "TASK_RUNNING" and (t.health or t.mesos_healthy is not None):
                h = t.healthy(checks, ex_checks)
                healthy += h is True
                unhealthy += h is False
    tasks = st.tasks_of(aid) if "tasks" in embed else []
    out.update({"tasksStaged": staged, "tasksRunning": running,
                "tasksHealthy": healthy, "tasksUnhealthy": unhealthy,
                "deployments": [{"id": d.id} for d in st.deployments_of(app["id"])]})
    if "tasks" in embed:
        out["tasks"] = [task_json(st, t) for t in tasks]
    failure = st.last_failures.get(app["id"])
    if failure and ("lastTaskFailure" in embed or "tasks" in embed):
        out["lastTaskFailure"] = failure
    if "readiness" in embed:
        out["readinessCheckResults"] = readiness_results(st, app["id"])
    return out


def readiness_results(st: MarathonState, aid: str) -> list[dict[str, Any]]:
    """The last readiness probe of each task of the app's current config."""
    app = st.apps.get(aid)
    if app is None or not app.get("readinessChecks"):
        return []
    cv = config_version(app)
    return [t.readiness for t in st.tasks_of(aid) if t.readiness is not None and t.active
            and (t.config_version or t.version) == cv]


def deployment_json(st: MarathonState, d: Deployment) -> dict[str, Any]:
    steps = [{"actions": [a.to_json() for a in s]} for s in d.steps]
    current = d.steps[d.current] if d.current < len(d.steps) else ()
    return {"id": d.id, "version": d.version, "affectedApps": sorted(d.affected),
            "affectedPods": [], "steps": steps,
            "currentActions": [dict(a.to_json(),
                                    readinessCheckResults=readiness_results(st, a.app))
                               for a in current],
            "currentStep": min(d.current + 1, len(d.steps)), "totalSteps": len(d.steps)}


def group_doc(apps: dict[str, dict[str, Any]], version: str) -> dict[str, Any]:
    """A flat group snapshot for deployment plans (`original`/`target`)."""
    return {"id": "/", "apps": list(apps.values()), "groups": [], "pods": [],
            "dependencies": [], "version": version}


def group_tree(st: MarathonState, gid: str, embed: set[str]) -> dict[str, Any]:
    """The group `gid` with its apps and nested groups, derived from app ids."""
    prefix = gid.rstrip("/") + "/"
    children: set[str] = set()
    apps = []
    for aid in sorted(st.apps):
        if not aid.startswith(prefix):
            continue
        rest = aid[len(prefix):]
        if "/" in rest:
            children.add(prefix + rest.split("/", 1)[0])
        else:
            apps.append(app_info(st, st.apps[aid], embed))
    for g in st.groups:
        if g.startswith(prefix) and g != gid:
            children.add(prefix + g[len(prefix):].split("/", 1)[0])
    return {"id": gid, "apps": apps,
            "groups": [group_tree(st, c, embed) for c in sorted(children)],
            "pods": [], "dependencies": st.groups.get(gid, {}).get("dependencies", []),
            "version": st.groups.get(gid, {}).get("version") or st.root_version}


def info(st: MarathonState, o: Options, leader: str) -> dict[str, Any]:
    return {
        "name": "marathon", "version": "1.10.26", "buildref": "corral",
        "elected": True, "leader": leader, "frameworkId": st.framework_id or "",
        "marathon_config": {
            "master": o.master, "framework_name": o.framework_name, "hostname": o.hostname,
            "checkpoint": True, "failover_timeout": o.failover_timeout, "ha": False,
            "local_port_min": 10000, "local_port_max": 20000, "mesos_role": o.mesos_role,
            "mesos_user": o.mesos_user, "decline_offer_duration": 120000,
            "task_launch_timeout": 300000, "reconciliation_initial_delay": 15000,
            "reconciliation_interval": 600000, "max_instances_per_offer": 100,
            "features": []},
        "zookeeper_config": {"zk": None, "zk_timeout": 10000, "zk_session_timeout": 10000,
                             "zk_max_versions": 50},
        "http_config": {"http_port": o.http_port, "https_port": 8443},
    }


def queue_item(st: MarathonState, app: dict[str, Any], count: int, now: float,
               embed_offers: bool) -> dict[str, Any]:
    b = st.backoffs.get(app["id"])
    left = max(0.0, b.until - now) if b else 0.0
    out = {"app": app, "count": count,
           "delay": {"timeLeftSeconds": int(round(left)), "overdue": left <= 0},
           "since": timestamp(st.queued_since.get(app["id"], now)),
           "processedOffersSummary": st.offer_log.summary(app["id"])}
    if embed_offers:
        out["lastUnusedOffers"] = st.offer_log.last_unused(app["id"])
    return out
