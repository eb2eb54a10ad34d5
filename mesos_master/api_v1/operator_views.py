"""The operator API's documents (Mesos v1 `master.proto` shapes) over the master core: pure
functions of the core's records, as `views.py` is for `/master/state`."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mesos_common import messages as m
from mesos_common import v1_json
from mesos_common.v1_json import framework_info, task_status
from mesos_master import views
from mesos_master.core import Master
from mesos_master.state import Agent, Framework, Task


def _value(v: str) -> dict[str, str]:
    return {"value": v}


def _time(seconds: float | None) -> dict[str, int]:
    return {"nanoseconds": int((seconds or 0.0) * 1e9)}


def framework(fw: Framework) -> dict[str, Any]:
    out = {"framework_info": framework_info(fw.info), "active": fw.active,
           "connected": fw.connected, "recovered": fw.recovered,
           "registered_time": _time(fw.registered_time)}
    if fw.reregistered_time is not None:
        out["reregistered_time"] = _time(fw.reregistered_time)
    if fw.unregistered_time is not None:
        out["unregistered_time"] = _time(fw.unregistered_time)
    return out


def agent_info(agent: Agent) -> dict[str, Any]:
    return v1_json.agent_info(agent.id, agent.info)


def agent(a: Agent) -> dict[str, Any]:
    out = {"agent_info": agent_info(a), "active": not a.deactivated, "deactivated": a.deactivated,
           "version": a.version, "pid": f"slave(1)@{a.info.hostname}:{a.info.port}",
           "registered_time": _time(a.registered_time),
           "total_resources": a.total.unreserved().to_json() + [  # reserved: with reservations
               item for items in views.reserved_full(a).values() for item in items],
           "allocated_resources": a.used.to_json(),
           "offered_resources": a.offered.to_json(), "capabilities": []}
    if a.reregistered_time is not None:
        out["reregistered_time"] = _time(a.reregistered_time)
    if a.drain is not None:
        out["drain_info"] = views.drain_json(a)
    return out


def task(t: Task) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": t.info.name, "task_id": _value(t.id), "framework_id": _value(t.framework_id),
        "agent_id": _value(t.agent_id), "state": t.state, "resources": t.resources.to_json(),
        "statuses": [task_status(m.TaskStatus(t.id, state, agent_id=t.agent_id,
                                              timestamp=when, healthy=healthy, source=""))
                     for state, when, healthy in t.statuses]}
    for s in out["statuses"]:
        s.pop("source", None)
    if t.info.labels:
        out["labels"] = {"labels": [{"key": k, "value": v} for k, v in t.info.labels.items()]}
    return out


def launched_task(framework_id: str, info: m.TaskInfo) -> dict[str, Any]:
    """TASK_ADDED's task: as the master books it when it sends the launch."""
    return {"name": info.name, "task_id": _value(info.task_id),
            "framework_id": _value(framework_id), "agent_id": _value(info.agent_id),
            "state": "TASK_STAGING", "resources": info.resources.to_json(), "statuses": []}


def get_agents(master: Master) -> dict[str, Any]:
    return {"agents": [agent(a) for a in sorted(master.agents.values(), key=lambda a: a.id)],
            "recovered_agents": [{"id": _value(a), "hostname": h}
                                 for a, h in sorted(master.registry.admitted.items())
                                 if a in master.recovering and a not in master.agents]}


def get_frameworks(master: Master) -> dict[str, Any]:
    return {"frameworks": [framework(f) for f in
                           sorted(master.frameworks.values(), key=lambda f: f.id)],
            "completed_frameworks": [framework(f) for f in master.completed_frameworks]}


def get_tasks(master: Master) -> dict[str, Any]:
    tasks, unreachable, completed = [], [], []
    for fw in sorted(master.frameworks.values(), key=lambda f: f.id):
        tasks += [task(t) for t in sorted(fw.tasks.values(), key=lambda t: t.id)]
        unreachable += [task(t) for t in fw.unreachable_tasks.values()]
        completed += [task(t) for t in fw.completed_tasks]
    for fw in master.completed_frameworks:
        completed += [task(t) for t in fw.completed_tasks]
    return {"tasks": tasks, "unreachable_tasks": unreachable, "completed_tasks": completed}


def get_executors(master: Master) -> dict[str, Any]:
    """The custom executors running on the agents (command tasks' are not listed)."""
    return {"executors": [{"agent_id": v1_json.value(a.id),
                           "executor_info": v1_json.executor_info(info)}
                          for a in master.agents.values() for info in a.executors.values()],
            "orphan_executors": []}


def get_state(master: Master) -> dict[str, Any]:
    return {"get_tasks": get_tasks(master), "get_executors": get_executors(master),
            "get_frameworks": get_frameworks(master), "get_agents": get_agents(master)}


def get_master(master: Master, info: Mapping[str, Any], start: float) -> dict[str, Any]:
    from mesos_master.api_v1.convert import master_info
    return {"master_info": master_info(info), "start_time": start, "elected_time": start}


def get_roles(master: Master, roles: Mapping[str, Any]) -> dict[str, Any]:
    """`roles`: the /master/roles document (views.roles_json)."""
    out = []
    for r in roles.get("roles", []):
        out.append({"name": r["name"], "weight": r.get("weight", 1.0),
                    "frameworks": [_value(f) for f in r.get("frameworks", [])],
                    "resources": _map_to_json(r.get("resources", {}))})
    return {"roles": out}


def _map_to_json(res: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": k, "type": "SCALAR", "scalar": {"value": v}}
            for k, v in sorted(res.items()) if isinstance(v, (int, float)) and v]
