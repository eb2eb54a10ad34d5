"""What a client sees of a HostCluster, and the guarantees checked against it.

`MarathonClient` talks to whichever Marathon answers (standbys proxy to the leader) and
records every change acknowledged with a 2xx, so a test can later ask for all of them. The
check functions return a list of problems (empty when the guarantee holds) rather than
assert, so a chaos round can log them all before it fails.
"""
from __future__ import annotations

import time
from typing import Any

from attrs import define, field

from tests.hosts.cluster import HostCluster, http

LIVE = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"})
# Ends nobody asked for (a kill or a task's own exit would be TASK_KILLED / TASK_FINISHED).
LOST = frozenset({"TASK_LOST", "TASK_FAILED", "TASK_UNREACHABLE", "TASK_GONE", "TASK_DROPPED",
                  "TASK_ERROR"})


@define
class Acked:
    """A change Marathon acknowledged: after it, app `app_id` has these fields."""
    app_id: str
    fields: dict[str, Any]
    at: float


@define
class MarathonClient:
    cluster: HostCluster
    acked: list[Acked] = field(factory=list)
    failed_calls: int = 0

    def call(self, method: str, path: str, body: Any = None,
             timeout: float = 5.0) -> tuple[int, Any]:
        """The first Marathon that answers (the leaders first); (599, error) if none does."""
        order = self.cluster.leading_marathons() + self.cluster.marathon_hosts
        last: Any = None
        for name in dict.fromkeys(order):
            if name not in self.cluster.daemons:
                continue
            try:
                status, out = http(method, self.cluster.marathon_url(name) + path, body, timeout)
            except OSError as e:
                last = e
                continue
            if status < 500 and status != 503:
                return status, out
            last = out
        self.failed_calls += 1
        return 599, last

    def change(self, method: str, path: str, app_id: str, body: dict[str, Any]) -> bool:
        """Send an app change; remember it when acknowledged."""
        status, _ = self.call(method, path, body)
        if 200 <= status < 300:
            self.acked.append(Acked(app_id, {k: body[k] for k in ("instances", "cmd")
                                             if k in body}, time.time()))
            return True
        return False

    def app(self, app_id: str) -> dict[str, Any] | None:
        status, body = self.call("GET", f"/v2/apps/{app_id.strip('/')}?embed=apps.tasks")
        return body["app"] if status == 200 else None

    def apps(self) -> list[dict[str, Any]] | None:
        status, body = self.call("GET", "/v2/apps?embed=apps.tasks")
        return body["apps"] if status == 200 else None


def lost_changes(client: MarathonClient) -> list[str]:
    """Acknowledged changes whose effect is gone: for each app the last acknowledged value of
    each field must be what Marathon holds now (a later change may overwrite an earlier one,
    never an older value)."""
    last: dict[tuple[str, str], Any] = {}
    for a in client.acked:
        for k, v in a.fields.items():
            last[(a.app_id, k)] = v
    apps = client.apps()
    if apps is None:
        return ["no Marathon answers GET /v2/apps"]
    by_id = {a["id"]: a for a in apps}
    out = []
    for (app_id, k), v in sorted(last.items()):
        if app_id not in by_id:
            out.append(f"{app_id}: acknowledged but absent")
        elif by_id[app_id].get(k) != v:
            out.append(f"{app_id}: {k} is {by_id[app_id].get(k)!r}, acknowledged {v!r}")
    return out


def converged(app: dict[str, Any]) -> bool:
    """The app runs `instances` tasks of its current configuration (a task's version is the
    app's when it was launched; scaling makes versions but no new configuration), healthy if
    checked, and no deployment is left."""
    tasks = [t for t in app.get("tasks", []) if t["state"] == "TASK_RUNNING"]
    config = (app.get("versionInfo") or {}).get("lastConfigChangeAt", "")
    ok = (len(app.get("tasks", [])) == app["instances"] == len(tasks) and not app["deployments"]
          and all(t.get("version", config) >= config for t in tasks))
    if app.get("healthChecks"):
        ok = ok and app["tasksHealthy"] == app["instances"]
    return ok


def agent_states(cluster: HostCluster) -> dict[str, dict[str, Any]]:
    """Each live agent's own /state, by host name."""
    out = {}
    for name in cluster.agent_hosts:
        if name not in cluster.daemons:
            continue
        try:
            status, body = http("GET", cluster.agent_url(name) + "/state", timeout=5)
        except OSError:
            continue
        if status == 200:
            out[name] = body
    return out


def running_on_agents(cluster: HostCluster) -> dict[str, str]:
    """task id -> host name of every live task the agents themselves report."""
    out = {}
    for name, st in agent_states(cluster).items():
        for fw in st["frameworks"]:
            for t in fw["tasks"]:
                if t["state"] in LIVE:
                    out[t["id"]] = name
    return out


def unknown_tasks(cluster: HostCluster, apps: list[dict[str, Any]]) -> list[str]:
    """Tasks running on an agent that Marathon does not know of."""
    known = {t["id"] for a in apps for t in a.get("tasks", [])}
    return sorted(f"{tid} on {host}" for tid, host in running_on_agents(cluster).items()
                  if tid not in known)


def unique_violations(cluster: HostCluster, apps: list[dict[str, Any]]) -> list[str]:
    """Two live tasks of a `hostname UNIQUE` app on one host."""
    out = []
    for a in apps:
        if ["hostname", "UNIQUE"] not in [list(c) for c in a.get("constraints", [])]:
            continue
        hosts = [t["host"] for t in a.get("tasks", []) if t["state"] in LIVE]
        out += [f"{a['id']}: {h} x{hosts.count(h)}" for h in set(hosts) if hosts.count(h) > 1]
    return out


def tasks_lost(cluster: HostCluster) -> dict[str, str]:
    """task id -> agent host of every task the leading master saw lost (or still holds
    unreachable); the agent id when no live agent has it."""
    state = cluster.master_state()
    names = {st["id"]: name for name, st in agent_states(cluster).items()}
    return {t["id"]: names.get(t["slave_id"], t["slave_id"])
            for f in state["frameworks"]
            for t in f.get("completed_tasks", []) + f.get("unreachable_tasks", [])
            if t["state"] in LOST}


def books_unbalanced(cluster: HostCluster) -> list[str]:
    """The leading master's view of agents and tasks against the agents' own /state: the
    same live tasks on the same agents, and the same resources used."""
    state = cluster.master_state()
    agents = agent_states(cluster)
    by_agent_id = {st["id"]: name for name, st in agents.items()}
    out = []
    master_tasks = {t["id"]: t["slave_id"] for f in state["frameworks"] for t in f["tasks"]
                    if t["state"] in LIVE}
    agent_tasks = {t["id"]: st["id"] for st in agents.values() for f in st["frameworks"]
                   for t in f["tasks"] if t["state"] in LIVE}
    for tid in sorted(set(master_tasks) | set(agent_tasks)):
        if master_tasks.get(tid) != agent_tasks.get(tid):
            out.append(f"task {tid}: master says agent {master_tasks.get(tid)}, "
                       f"agents say {agent_tasks.get(tid)}")
    for s in state["slaves"]:
        name = by_agent_id.get(s["id"])
        if name is None or not s.get("active"):
            continue
        mine, theirs = _scalars(s["used_resources"]), _scalars(agents[name]["used_resources"])
        if mine != theirs:
            out.append(f"agent {name}: master books {mine}, agent uses {theirs}")
    return out


def _scalars(res: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 3) for k, v in res.items()
            if k in ("cpus", "mem", "disk") and float(v)}
