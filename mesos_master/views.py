"""Read-only views of the core's state in the Mesos HTTP shapes (/master/state, metrics).

Pure functions over a Master: the HTTP layer serialises what they return. Resources use the
flat map form Mesos endpoints use (`{"cpus": 4.0, "mem": ..., "ports": "[31000-32000]"}`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from mesos_common import task_states as ts
from mesos_common.resources import Resources
from mesos_master.core import Master
from mesos_master.core_base import MESSAGE_METRICS, sum_resources
from mesos_master.core_maintenance import on_machine, scheduled
from mesos_master.state import Agent, Framework, Offer, Task

BUILD_DATE = "2020-11-19 12:00:00"
BUILD_TIME = 1605787200.0
BUILD_USER = "corral"


def version_json(master: Master) -> dict[str, Any]:
    return {"version": master.config.version, "build_date": BUILD_DATE,
            "build_time": BUILD_TIME, "build_user": BUILD_USER, "git_tag": master.config.version}


def master_pid(master: Master) -> str:
    return f"master@{master.config.ip}:{master.config.port}"


def _reserved(res: Resources) -> dict[str, Any]:
    return {role: res.reserved(role).to_map() for role in sorted(res.roles() - {"*"})}


def reserved_full(agent: Agent) -> dict[str, list[dict[str, Any]]]:
    """Mesos' `reserved_resources_full`: each role's reserved resources with their
    reservation, STATIC or DYNAMIC with the principal that made it."""
    out: dict[str, list[dict[str, Any]]] = {}
    for item in (agent.total.reserved() - agent.reserved).to_json():
        out.setdefault(item["role"], []).append(
            {**item, "reservations": [{"type": "STATIC", "role": item["role"]}]})
    for item in agent.reservations.to_json():
        out.setdefault(item["role"], []).append(item)
    return dict(sorted(out.items()))


def drain_json(agent: Agent) -> dict[str, Any] | None:
    """Mesos' DrainInfo: state and the DRAIN_AGENT config (durations in nanoseconds)."""
    d = agent.drain
    if d is None:
        return None
    config: dict[str, Any] = {"mark_gone": d.mark_gone}
    if d.max_grace_period is not None:
        config["max_grace_period"] = {"nanoseconds": int(d.max_grace_period * 1e9)}
    return {"state": d.state, "config": config}


def _machine_json(mc: tuple[str, str]) -> dict[str, str]:
    return {k: v for k, v in (("hostname", mc[0]), ("ip", mc[1])) if v}


def schedule_json(master: Master, visible: bool = True) -> dict[str, Any]:
    """Mesos' maintenance Schedule (times in nanoseconds); empty when not `visible`."""
    windows = []
    for w in master.registry.schedule if visible else ():
        un: dict[str, Any] = {"start": {"nanoseconds": int(w.start * 1e9)}}
        if w.duration is not None:
            un["duration"] = {"nanoseconds": int(w.duration * 1e9)}
        windows.append({"machine_ids": [_machine_json(mc) for mc in w.machines],
                        "unavailability": un})
    return {"windows": windows}


def maintenance_status_json(master: Master, visible: bool = True) -> dict[str, Any]:
    """Mesos' ClusterStatus: draining (scheduled, not down) machines with the frameworks'
    answers to their inverse offers, and the down machines; empty when not `visible`."""
    if not visible:
        return {"draining_machines": [], "down_machines": []}
    reg = master.registry
    draining = sorted(scheduled(reg) - reg.down)
    answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for agent_id, by_fw in sorted(master.inverse_answers.items()):
        agent = master.agents.get(agent_id)
        mc = on_machine(agent.info.hostname, draining) if agent else None
        if mc is None:
            continue
        answers.setdefault(mc, []).extend(
            {"framework_id": {"value": fw}, "status": status, "timestamp": {
                "nanoseconds": int(t * 1e9)}} for fw, (status, t) in sorted(by_fw.items()))
    return {"draining_machines": [{"id": _machine_json(mc), "statuses": answers.get(mc, [])}
                                  for mc in draining],
            "down_machines": [_machine_json(mc) for mc in sorted(reg.down)]}


def agent_json(agent: Agent) -> dict[str, Any]:
    info = agent.info
    out = {
        "id": agent.id, "hostname": info.hostname, "port": info.port,
        "attributes": dict(info.attributes), "pid": f"slave(1)@{info.hostname}:{info.port}",
        "registered_time": agent.registered_time,
        "resources": agent.total.to_map(), "used_resources": agent.used.to_map(),
        "offered_resources": agent.offered.to_map(),
        "reserved_resources": _reserved(agent.total),
        "reserved_resources_full": reserved_full(agent),
        "unreserved_resources": agent.total.unreserved().to_map(),
        "active": not agent.deactivated, "deactivated": agent.deactivated, "version": agent.version,
        "capabilities": [],
        "containerizers": list(info.containerizers),
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = agent.reregistered_time
    if agent.principal is not None:
        out["principal"] = agent.principal
    if agent.drain is not None:
        out["drain_info"] = drain_json(agent)
    return out


def _task_json(task: Task) -> dict[str, Any]:
    info = task.info
    statuses = []
    for state, t, healthy in task.statuses:
        entry: dict[str, Any] = {"state": state, "timestamp": t}
        if healthy is not None:
            entry["healthy"] = healthy
        statuses.append(entry)
    out: dict[str, Any] = {
        "id": info.task_id, "name": info.name, "framework_id": task.framework_id,
        "executor_id": "", "slave_id": task.agent_id, "state": task.state,
        "resources": info.resources.to_map(), "role": task.role, "statuses": statuses,
        "labels": [{"key": k, "value": v} for k, v in sorted(info.labels.items())],
    }
    if info.container is not None:
        out["container"] = container_json(info.container)
    return out


def container_json(container: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": container.type}
    if container.docker is not None:
        out["docker"] = {"image": container.docker.image, "network": container.docker.network}
    return out


def _offer_json(offer: Offer) -> dict[str, Any]:
    return {"id": offer.id, "framework_id": offer.framework_id, "slave_id": offer.agent_id,
            "resources": offer.resources.to_map()}


def executors_by_framework(master: Master) -> dict[str, list[dict[str, Any]]]:
    """The custom executors running on the agents, as Mesos lists them under each framework
    of /master/state (ExecutorInfo plus `slave_id`); one pass over the agents for all."""
    out: dict[str, list[dict[str, Any]]] = {}
    for agent_id, agent in sorted(master.agents.items()):
        for (fw_id, executor_id), info in sorted(agent.executors.items()):
            out.setdefault(fw_id, []).append({
                "executor_id": executor_id, "name": info.name, "framework_id": fw_id,
                "command": {"value": info.command.value},
                "resources": info.resources.to_map(), "slave_id": agent_id})
    return out


def _framework_json(master: Master, fw: Framework,
                    executors: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    used = sum_resources(t.resources for t in fw.tasks.values() if not t.resources_recovered)
    return {**framework_head(master, fw, used, executors.get(fw.id, [])),
            "tasks": [_task_json(t) for t in sorted(fw.tasks.values(), key=lambda t: t.id)],
            "unreachable_tasks": [_task_json(t) for t in fw.unreachable_tasks.values()],
            "completed_tasks": [_task_json(t) for t in fw.completed_tasks]}


def framework_head(master: Master, fw: Framework, used: Resources,
                   executors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A framework of /master/state without its three task lists (`used`: its tasks' sum;
    `executors`: its entry of `executors_by_framework`)."""
    info = fw.info
    offered = sum_resources(master.offers[o].resources for o in fw.offers if o in master.offers)
    out: dict[str, Any] = {
        "id": fw.id, "name": info.name, "user": info.user, "hostname": info.hostname,
        "webui_url": "", "capabilities": list(info.capabilities), "active": fw.active,
        "connected": fw.connected, "recovered": fw.recovered,
        "failover_timeout": info.failover_timeout, "checkpoint": info.checkpoint,
        "registered_time": fw.registered_time,
        "unregistered_time": fw.unregistered_time or 0.0,
        "used_resources": used.to_map(), "offered_resources": offered.to_map(),
        "resources": (used + offered).to_map(),
        "offers": [_offer_json(master.offers[o]) for o in sorted(fw.offers)
                   if o in master.offers],
        "executors": executors or [], "labels": [], "offer_constraints": {},
    }
    if "MULTI_ROLE" in info.capabilities:
        out["roles"] = list(info.roles)
    else:
        out["role"] = info.roles[0] if info.roles else "*"
    if info.principal is not None:
        out["principal"] = info.principal
    if fw.reregistered_time is not None:
        out["reregistered_time"] = fw.reregistered_time
    return out


def state_json(master: Master, now: float, flags: Mapping[str, str]) -> dict[str, Any]:
    """The Mesos /master/state object (reference §7). The HTTP endpoint streams the same
    document from views_stream.state_pieces."""
    executors = executors_by_framework(master)
    return {
        **state_head(master, now, flags),
        "slaves": [agent_json(a) for a in sorted(master.agents.values(), key=lambda a: a.id)],
        "frameworks": [_framework_json(master, f, executors)
                       for f in sorted(master.frameworks.values(), key=lambda f: f.id)],
        "completed_frameworks": [_framework_json(master, f, executors)
                                 for f in master.completed_frameworks],
    }


def state_head(master: Master, now: float, flags: Mapping[str, str]) -> dict[str, Any]:
    """/master/state without its agents and frameworks."""
    cfg = master.config
    start = master.start_time if master.start_time is not None else now
    pid = master_pid(master)
    deactivated = sum(1 for a in master.agents.values() if a.deactivated)
    return {
        **version_json(master),
        "start_time": start, "elected_time": start,
        "id": cfg.master_id, "pid": pid, "hostname": cfg.hostname, "capabilities": [],
        "activated_slaves": float(len(master.agents) - deactivated),
        "deactivated_slaves": float(deactivated),
        "unreachable_slaves": float(len(master.registry.unreachable)),
        "leader": pid,
        "leader_info": {"id": cfg.master_id, "pid": pid, "port": cfg.port,
                        "hostname": cfg.hostname},
        "flags": {k: str(v) for k, v in flags.items()},
        "recovered_slaves": [{"id": a, "hostname": h}
                             for a, h in sorted(master.registry.admitted.items())
                             if a in master.recovering and a not in master.agents],
        "orphan_tasks": [], "unregistered_frameworks": [],
    }


_GAUGE_STATES = (ts.STAGING, ts.STARTING, ts.RUNNING, ts.KILLING)
_COUNTER_STATES = ("finished", "failed", "killed", "lost", "error", "dropped", "gone",
                   "gone_by_operator")
_VALIDITY = ("status_updates", "status_update_acknowledgements")
_EXTRA_MESSAGES = ("register_framework", "reregister_framework", "deactivate_framework",
                   "framework_to_executor", "executor_to_framework", "resource_request",
                   "update_slave", "exited_executor", "authenticate")


def _resource_metrics(master: Master) -> dict[str, float]:
    total = sum_resources(a.total for a in master.agents.values())
    used = sum_resources(a.used for a in master.agents.values())
    tq, uq = total.quantities(), used.quantities()
    out: dict[str, float] = {}
    for name in ("cpus", "gpus", "mem", "disk"):
        t, u = float(tq.get(name, 0.0)), float(uq.get(name, 0.0))
        out[f"master/{name}_total"] = t
        out[f"master/{name}_used"] = u
        out[f"master/{name}_percent"] = u / t if t else 0.0
        for kind in ("total", "used", "percent"):
            out[f"master/{name}_revocable_{kind}"] = 0.0
    return out


def metrics(master: Master, now: float) -> dict[str, float]:
    """The Mesos /metrics/snapshot keys the master can answer; every value a float."""
    c = master.counters
    start = master.start_time if master.start_time is not None else now
    agents = master.agents.values()
    # Disconnected: a whole heartbeat missed (heard from last more than two intervals ago).
    # One interval (or the ping timeout, equal by default) counted every agent whose
    # heartbeat was a little late as disconnected.
    silent = 2 * master.config.heartbeat_interval
    connected = sum(1 for a in agents if now - a.last_seen <= silent)
    fws = master.frameworks.values()
    out: dict[str, float] = {
        "master/elected": 1.0, "master/uptime_secs": max(0.0, now - start),
        **_resource_metrics(master),
        "master/slaves_active": float(len(master.agents)), "master/slaves_inactive": 0.0,
        "master/slaves_connected": float(connected),
        "master/slaves_disconnected": float(len(master.agents) - connected),
        "master/slaves_unreachable": float(len(master.registry.unreachable)),
        "master/frameworks_active": float(sum(1 for f in fws if f.active)),
        "master/frameworks_inactive": float(sum(1 for f in fws if not f.active)),
        "master/frameworks_connected": float(sum(1 for f in fws if f.connected)),
        "master/frameworks_disconnected": float(sum(1 for f in fws if not f.connected)),
        "master/outstanding_offers": float(len(master.offers)),
        "master/slave_registrations": float(c["slave_registrations"]),
        "master/slave_reregistrations": float(c["slave_reregistrations"]),
        "master/slave_removals": float(c["slave_removals"]),
        "master/dropped_messages": float(c["dropped_messages"]),
        "allocator/mesos/allocation_runs": float(c["allocation_runs"]),
        "master/event_queue_messages": 0.0, "master/event_queue_dispatches": 0.0,
        "master/event_queue_http_requests": 0.0,
    }
    for kind in ("scheduled", "canceled", "completed"):
        out[f"master/slave_shutdowns_{kind}"] = 0.0
    live = Counter(t.state for f in fws for t in f.tasks.values())  # one pass over 100k tasks
    for state in _GAUGE_STATES:
        name = state.removeprefix("TASK_").lower()
        out[f"master/tasks_{name}"] = float(live[state])
    out["master/tasks_unreachable"] = float(sum(len(f.unreachable_tasks) for f in fws))
    for name in _COUNTER_STATES:
        out[f"master/tasks_{name}"] = float(c[f"tasks_{name}"])
    for name in (*sorted(set(MESSAGE_METRICS.values())), *_EXTRA_MESSAGES):
        out[f"master/messages_{name}"] = float(c[f"messages_{name}"])
    for name in _VALIDITY:
        out[f"master/valid_{name}"] = float(c[f"valid_{name}"])
        out[f"master/invalid_{name}"] = float(c[f"invalid_{name}"])
    return out



def _map(q: Mapping[str, int]) -> dict[str, float]:
    """Milli-unit quantities -> the flat resource map of Mesos endpoints."""
    out = {n: 0.0 for n in ("cpus", "gpus", "mem", "disk")}
    out.update({n: v / 1000 for n, v in q.items()})
    return out


def weights_json(master: Master) -> list[dict[str, Any]]:
    """GET /weights: `[{"role", "weight"}]` for roles with a weight set."""
    return [{"role": r, "weight": w} for r, w in sorted(master.registry.weights.items())]


def quota_json(master: Master) -> dict[str, Any]:
    """GET /quota: `{"infos": [{"role", "guarantee": [resource JSON]}]}` (Mesos' v0 form)."""
    infos = []
    for role, g in sorted(master.registry.quotas.items()):
        infos.append({"role": role, "guarantee": Resources.from_scalars(**g).to_json()})
    return {"infos": infos}


def roles_json(master: Master) -> dict[str, Any]:
    """GET /roles: every role the allocator knows, with weight, quota and allocation."""
    offered: dict[str, Resources] = {}
    for offer in master.offers.values():
        fw = master.frameworks.get(offer.framework_id)
        role = min(fw.roles) if fw is not None and fw.roles else "*"
        offered[role] = offered.get(role, Resources()) + offer.resources
    reserved: dict[str, Resources] = {}
    for agent in master.agents.values():
        for role in agent.total.roles() - {"*"}:
            reserved[role] = reserved.get(role, Resources()) + agent.total.reserved(role)
    roles = []
    for info in master.allocator.roles_info():
        name = info["name"]
        quota = master.registry.quotas.get(name, {})
        roles.append({
            "name": name, "weight": info["weight"],
            "quota": {"role": name, "guarantee": {n: float(v) for n, v in quota.items()},
                      "consumed": _map(info["allocated"])},
            "resources": _map(info["allocated"]), "allocated": _map(info["allocated"]),
            "offered": offered.get(name, Resources()).to_map(),
            "reserved": reserved.get(name, Resources()).to_map(),
            "frameworks": info["frameworks"],
        })
    return {"roles": roles}
