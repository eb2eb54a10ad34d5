"""Wire records -> Mesos v1 JSON, shared by the master's and the agent's v1 APIs (pure).

Shapes follow the v1 protobufs as pymesos reads them: ids as `{"value": ...}`, bytes in
base64, resources in the Mesos JSON list form.
"""
from __future__ import annotations

import base64
from typing import Any

from mesos_common import messages as m


def value(v: str) -> dict[str, str]:
    return {"value": v}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def framework_info(info: m.FrameworkInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"name": info.name, "user": info.user,
                           "failover_timeout": info.failover_timeout,
                           "checkpoint": info.checkpoint, "hostname": info.hostname,
                           "roles": list(info.roles),
                           "capabilities": [{"type": c} for c in info.capabilities]}
    if info.id:
        out["id"] = value(info.id)
    if info.principal:
        out["principal"] = info.principal
    return out


def agent_info(agent_id: str, info: m.AgentInfo) -> dict[str, Any]:
    attrs = [{"name": k, "type": "SCALAR", "scalar": {"value": v}}
             if isinstance(v, (int, float)) else {"name": k, "type": "TEXT", "text": {"value": v}}
             for k, v in sorted(info.attributes.items())]
    return {"id": value(agent_id), "hostname": info.hostname, "port": info.port,
            "resources": info.resources.to_json(), "attributes": attrs}


def command_info(c: m.CommandInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"value": c.value, "shell": c.shell}
    if c.arguments:
        out["arguments"] = list(c.arguments)
    if c.environment:
        out["environment"] = {"variables": [{"name": k, "value": v}
                                            for k, v in sorted(c.environment.items())]}
    if c.user:
        out["user"] = c.user
    return out


def executor_info(e: m.ExecutorInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "CUSTOM", "executor_id": value(e.executor_id),
                           "command": command_info(e.command),
                           "resources": e.resources.to_json()}
    if e.name:
        out["name"] = e.name
    if e.framework_id:
        out["framework_id"] = value(e.framework_id)
    if e.data is not None:
        out["data"] = b64(e.data)
    return out


def task_info(t: m.TaskInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "task_id": value(t.task_id),
                           "agent_id": value(t.agent_id), "resources": t.resources.to_json()}
    if t.command is not None:
        out["command"] = command_info(t.command)
    if t.executor is not None:
        out["executor"] = executor_info(t.executor)
    if t.data is not None:
        out["data"] = b64(t.data)
    if t.labels:
        out["labels"] = {"labels": [{"key": k, "value": v} for k, v in sorted(t.labels.items())]}
    if t.kill_grace_period is not None:
        out["kill_policy"] = {"grace_period": {"nanoseconds": int(t.kill_grace_period * 1e9)}}
    return out


def task_status(s: m.TaskStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"task_id": value(s.task_id), "state": s.state, "source": s.source,
                           "timestamp": s.timestamp}
    if s.agent_id:
        out["agent_id"] = value(s.agent_id)
    if s.message:
        out["message"] = s.message
    if s.reason:
        out["reason"] = s.reason
    if s.healthy is not None:
        out["healthy"] = s.healthy
    if s.uuid is not None and s.agent_id:  # pymesos acknowledges with the agent id
        out["uuid"] = b64(s.uuid)
    if s.data is not None:
        out["data"] = b64(s.data)
    if s.executor_id:
        out["executor_id"] = value(s.executor_id)
    return out
