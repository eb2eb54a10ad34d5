"""Mesos v1 JSON <-> Corral's wire records, both ways, as pure functions.

Calls a v1 scheduler POSTs become the same messages a ZeroMQ framework sends, and what the
master core sends a framework becomes v1 events, so a v1 framework is a framework like any other
to the core. Leniency follows the Mesos JSON parser (unknown keys ignored, `roles` as a string
or a list, deprecated fields accepted); a missing required field is a `V1Error`. Event shapes
follow what pymesos needs (docs/V1_API.md): the payload under the lowercase type key, `agent_id`
with every `uuid`, ERROR nested under `error`.
"""
from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from mesos_common import messages as m
from mesos_common.resources import ResourceError, Resources
from mesos_common.v1_calls import V1Error, id_value
from mesos_common.v1_calls import b64_bytes as _b64
from mesos_common.v1_json import task_status

#: Mesos caps `refuse_seconds` at a year.
MAX_REFUSE_SECONDS = 31536000.0


# ----------------------------------------------------------------------------- small helpers

def _obj(d: Any, what: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise V1Error(f"'{what}' must be a JSON object")
    return d


def _inner(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`d[key]` when it is a JSON object, else an empty one (an optional part left out)."""
    v = d.get(key)
    return v if isinstance(v, dict) else {}


def _str(d: Mapping[str, Any], key: str, default: str = "") -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise V1Error(f"'{key}' must be a string")
    return v


def _num(d: Mapping[str, Any], key: str, default: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise V1Error(f"'{key}' must be a number")
    return float(v)


def _nanos(d: Any) -> float | None:
    """A Duration `{"nanoseconds": n}` in seconds."""
    if not isinstance(d, dict) or not isinstance(d.get("nanoseconds"), (int, float)):
        return None
    return float(d["nanoseconds"]) / 1e9


def _value(v: str) -> dict[str, str]:
    return {"value": v}


def _refuse(d: Mapping[str, Any]) -> float | None:
    filters = d.get("filters")
    if not isinstance(filters, dict) or "refuse_seconds" not in filters:
        return None
    return min(max(_num(filters, "refuse_seconds", 5.0), 0.0), MAX_REFUSE_SECONDS)


def _roles(d: Mapping[str, Any]) -> tuple[str, ...]:
    raw = d.get("roles")
    if raw is None:
        raw = d.get("role")
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(r, str) for r in raw):
        return tuple(raw)
    raise V1Error("'roles' must be a string or a list of strings")


# ----------------------------------------------------------------------------- v1 -> records

def framework_info(d: Any, framework_id: str | None) -> m.FrameworkInfo:
    d = _obj(d, "framework_info")
    fid = id_value(d, "id", required=False) or framework_id
    caps = d.get("capabilities", [])
    if not isinstance(caps, list):
        raise V1Error("'capabilities' must be a list")
    return m.FrameworkInfo(
        name=_str(d, "name") or "unnamed", user=_str(d, "user"), id=fid,
        roles=_roles(d) or ("*",), failover_timeout=_num(d, "failover_timeout", 0.0),
        hostname=_str(d, "hostname"),
        capabilities=tuple(c["type"] for c in caps
                           if isinstance(c, dict) and isinstance(c.get("type"), str)),
        checkpoint=bool(d.get("checkpoint", False)),
        principal=d.get("principal") if isinstance(d.get("principal"), str) else None)


def _resources(items: Any, what: str) -> Resources:
    if not isinstance(items, list):
        raise V1Error(f"'{what}' must be a list of resources")
    try:
        return Resources.from_json(items)
    except ResourceError as e:
        raise V1Error(str(e)) from None


def _command(d: Any) -> m.CommandInfo:
    d = _obj(d, "command")
    env = {}
    variables = _obj(d.get("environment", {}), "environment").get("variables", [])
    for v in variables if isinstance(variables, list) else []:
        if isinstance(v, dict) and isinstance(v.get("name"), str):
            env[v["name"]] = str(v.get("value", ""))
    args = d.get("arguments", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise V1Error("'command.arguments' must be a list of strings")
    user = d.get("user")
    return m.CommandInfo(value=_str(d, "value"), shell=bool(d.get("shell", True)),
                         arguments=tuple(args), environment=env,
                         user=user if isinstance(user, str) else None,
                         uris=_uris(d.get("uris", [])))


def _uris(items: Any) -> tuple[m.URI, ...]:
    """`CommandInfo.uris`: what the agent's fetcher puts into the sandbox."""
    if not isinstance(items, list):
        raise V1Error("'command.uris' must be a list")
    out = []
    for u in items:
        u = _obj(u, "command.uris[]")
        if not _str(u, "value"):
            raise V1Error("'command.uris[].value' must be a non-empty string")
        out.append(m.URI(_str(u, "value"), executable=bool(u.get("executable", False)),
                         extract=bool(u.get("extract", True)), cache=bool(u.get("cache", False)),
                         output_file=_str(u, "output_file") or None))
    return tuple(out)


def _container(d: Any) -> m.ContainerInfo:
    d = _obj(d, "container")
    volumes = tuple(m.Volume(container_path=_str(v, "container_path"),
                             host_path=_str(v, "host_path"), mode=_str(v, "mode", "RW"))
                    for v in d.get("volumes", []) if isinstance(v, dict))
    docker = None
    if isinstance(d.get("docker"), dict):
        dd = d["docker"]
        params = tuple((str(p.get("key", "")), str(p.get("value", "")))
                       for p in dd.get("parameters", []) if isinstance(p, dict))
        mappings = tuple(m.PortMapping(int(p.get("host_port", 0)), int(p.get("container_port", 0)),
                                       str(p.get("protocol", "tcp")))
                         for p in dd.get("port_mappings", []) if isinstance(p, dict))
        docker = m.DockerInfo(image=_str(dd, "image"), network=_str(dd, "network", "HOST"),
                              port_mappings=mappings, privileged=bool(dd.get("privileged")),
                              parameters=params,
                              force_pull_image=bool(dd.get("force_pull_image")))
    return m.ContainerInfo(type=_str(d, "type", "MESOS"), docker=docker, volumes=volumes)


def _health_check(d: Any) -> m.HealthCheck | None:
    if not isinstance(d, dict) or d.get("type") not in ("COMMAND", "HTTP", "TCP"):
        return None
    http, tcp = _inner(d, "http"), _inner(d, "tcp")
    port = http.get("port", tcp.get("port"))
    return m.HealthCheck(
        type=d["type"], command=_command(d["command"]) if "command" in d else None,
        port=int(port) if isinstance(port, int) else None, path=str(http.get("path", "/")),
        scheme=str(http.get("scheme", "http")),
        delay_seconds=_num(d, "delay_seconds", 15.0),
        interval_seconds=_num(d, "interval_seconds", 10.0),
        timeout_seconds=_num(d, "timeout_seconds", 20.0),
        consecutive_failures=int(_num(d, "consecutive_failures", 3)),
        grace_period_seconds=_num(d, "grace_period_seconds", 10.0))


def executor_info(d: Any) -> m.ExecutorInfo:
    """A v1 ExecutorInfo (type CUSTOM; DEFAULT executors come with LAUNCH_GROUP)."""
    d = _obj(d, "executor")
    if d.get("type", "CUSTOM") != "CUSTOM":
        raise V1Error(f"executor type {d.get('type')!r} is not supported: use CUSTOM")
    if not isinstance(d.get("command"), dict):
        raise V1Error("an executor needs a 'command'")
    return m.ExecutorInfo(
        executor_id=id_value(d, "executor_id") or "", command=_command(d["command"]),
        resources=_resources(d.get("resources", []), "executor.resources"),
        name=_str(d, "name"), framework_id=id_value(d, "framework_id", required=False) or "",
        data=_b64(d["data"], "executor.data") if "data" in d else None)


def task_info(d: Any) -> m.TaskInfo:
    """A v1 TaskInfo: a command task, or one for a custom executor."""
    d = _obj(d, "task_info")
    labels = _inner(d, "labels").get("labels", [])
    kill = _inner(d, "kill_policy")
    return m.TaskInfo(
        name=_str(d, "name"), task_id=id_value(d, "task_id") or "",
        agent_id=id_value(d, "agent_id") or "",
        resources=_resources(d.get("resources", []), "resources"),
        command=_command(d["command"]) if "command" in d else None,
        container=_container(d["container"]) if "container" in d else None,
        kill_grace_period=_nanos(kill.get("grace_period")),
        labels={str(x.get("key")): str(x.get("value", "")) for x in labels
                if isinstance(x, dict) and "key" in x},
        data=_b64(d["data"], "data") if "data" in d else None,
        health_check=_health_check(d.get("health_check")),
        executor=executor_info(d["executor"]) if "executor" in d else None)


def unsupported_task(d: Any) -> str | None:
    """Why this master cannot run a task as given, or None."""
    if isinstance(d, dict) and "command" not in d and "container" not in d \
            and "executor" not in d:
        return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
    return None


class Launch:
    """An ACCEPT, split into what the core takes and the tasks refused before it."""

    def __init__(self, accept: m.Accept, refused: list[tuple[str, str, str]]) -> None:
        self.accept = accept
        self.refused = refused  # (task_id, agent_id, why)


def accept(body: Mapping[str, Any], framework_id: str) -> Launch:
    d = _obj(body.get("accept"), "accept")
    offer_ids = tuple(id_value({"o": o}, "o") or "" for o in d.get("offer_ids", []))
    tasks: list[m.TaskInfo] = []
    reservations: list[m.Operation] = []
    refused: list[tuple[str, str, str]] = []
    for op in d.get("operations", []):
        op = _obj(op, "operation")
        kind = op.get("type")
        if kind in ("RESERVE", "UNRESERVE"):  # pre-refinement `role` or `reservations`
            inner = _obj(op.get(kind.lower(), {}), kind.lower())
            reservations.append(m.Operation(kind, resources=_resources(
                inner.get("resources", []), f"{kind.lower()}.resources")))
        elif kind == "LAUNCH":
            for t in _obj(op.get("launch", {}), "launch").get("task_infos", []):
                why = unsupported_task(t)
                if why is None and isinstance(t, dict) and "executor" in t:
                    try:  # a bad executor fails its task alone, as Mesos validates per task
                        executor_info(t["executor"])
                    except V1Error as e:
                        why = str(e)
                if why is not None:
                    refused.append((id_value(t, "task_id") or "",
                                    id_value(t, "agent_id", False) or "", why))
                else:
                    tasks.append(task_info(t))
        elif kind == "LAUNCH_GROUP":
            group = _obj(op.get("launch_group", {}), "launch_group")
            for t in _obj(group.get("task_group", {}), "task_group").get("tasks", []):
                refused.append((id_value(t, "task_id") or "", id_value(t, "agent_id", False) or "",
                                "LAUNCH_GROUP (task groups) is not supported by this master"))
        else:
            refused.append(("", "", f"offer operation {kind} is not supported by this master"))
    ops = (*reservations, *((m.Operation(type="LAUNCH", tasks=tuple(tasks)),) if tasks else ()))
    return Launch(m.Accept(framework_id, offer_ids, ops, _refuse(d)), refused)


def _decline(body: Mapping[str, Any], fid: str) -> m.Decline:
    d = _obj(body.get("decline"), "decline")
    return m.Decline(fid, tuple(id_value({"o": o}, "o") or "" for o in d.get("offer_ids", [])),
                     _refuse(d))


def _inverse_ids(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    d = _obj(body.get(key), key)
    return tuple(id_value({"o": o}, "o") or "" for o in d.get("inverse_offer_ids", []))


def _kill(body: Mapping[str, Any], fid: str) -> m.Kill:
    d = _obj(body.get("kill"), "kill")
    return m.Kill(fid, id_value(d, "task_id") or "", id_value(d, "agent_id", required=False))


def _acknowledge(body: Mapping[str, Any], fid: str) -> m.Acknowledge:
    d = _obj(body.get("acknowledge"), "acknowledge")
    return m.Acknowledge(fid, id_value(d, "agent_id") or "", id_value(d, "task_id") or "",
                         _b64(d.get("uuid"), "uuid"))


def _reconcile(body: Mapping[str, Any], fid: str) -> m.Reconcile:
    d = body.get("reconcile") or {}
    tasks = tuple(m.ReconcileTask(id_value(t, "task_id") or "",
                                  id_value(t, "agent_id", required=False))
                  for t in _obj(d, "reconcile").get("tasks", []) if isinstance(t, dict))
    return m.Reconcile(fid, tasks)


def _roles_of(key: str) -> Callable[[Mapping[str, Any]], tuple[str, ...]]:
    def roles(body: Mapping[str, Any]) -> tuple[str, ...]:
        d = body.get(key) or {}
        return _roles(d) if isinstance(d, dict) else ()
    return roles


_revive_roles, _suppress_roles = _roles_of("revive"), _roles_of("suppress")

#: Call type -> the message it becomes (None: accepted and ignored, see IGNORED_CALLS).
CALLS: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
    "DECLINE": _decline,
    "KILL": _kill,
    "ACKNOWLEDGE": _acknowledge,
    "RECONCILE": _reconcile,
    "REVIVE": lambda b, fid: m.Revive(fid, _revive_roles(b)),
    "SUPPRESS": lambda b, fid: m.Suppress(fid, _suppress_roles(b)),
    "TEARDOWN": lambda b, fid: m.Teardown(fid),
    "MESSAGE": lambda b, fid: _message(b, fid),
    "SHUTDOWN": lambda b, fid: _shutdown(b, fid),
    "ACCEPT_INVERSE_OFFERS": lambda b, fid: m.AcceptInverseOffers(
        fid, _inverse_ids(b, "accept_inverse_offers")),
    "DECLINE_INVERSE_OFFERS": lambda b, fid: m.DeclineInverseOffers(
        fid, _inverse_ids(b, "decline_inverse_offers")),
}


def _message(body: Mapping[str, Any], fid: str) -> m.FrameworkMessage:
    d = _obj(body.get("message"), "message")
    return m.FrameworkMessage(fid, id_value(d, "agent_id") or "", id_value(d, "executor_id") or "",
                              _b64(d.get("data", ""), "message.data"))


def _shutdown(body: Mapping[str, Any], fid: str) -> m.ShutdownExecutor:
    d = _obj(body.get("shutdown"), "shutdown")
    return m.ShutdownExecutor(fid, id_value(d, "agent_id") or "", id_value(d, "executor_id") or "")


#: Calls answered 202 that change nothing here (Mesos's allocator ignores REQUEST too), with
#: the reason logged once per framework.
IGNORED_CALLS = {
    "REQUEST": "resource requests are ignored (as Mesos's allocator does)",
    "ACKNOWLEDGE_OPERATION_STATUS": "this master sends no operation status updates",
    "RECONCILE_OPERATIONS": "this master has no offer operations to reconcile",
}


# ----------------------------------------------------------------------------- records -> v1

def offer(o: m.Offer) -> dict[str, Any]:
    attrs = [{"name": k, "type": "SCALAR", "scalar": {"value": v}}
             if isinstance(v, (int, float)) else {"name": k, "type": "TEXT", "text": {"value": v}}
             for k, v in sorted(o.attributes.items())]
    return {"id": _value(o.id), "framework_id": _value(o.framework_id),
            "agent_id": _value(o.agent_id), "hostname": o.hostname,
            "resources": o.resources.to_json(), "attributes": attrs}


def inverse_offer(o: m.InverseOffer) -> dict[str, Any]:
    """Mesos' InverseOffer: the agent's unavailability (TimeInfo/DurationInfo in ns)."""
    window: dict[str, Any] = {"start": {"nanoseconds": int(o.start * 1e9)}}
    if o.duration is not None:
        window["duration"] = {"nanoseconds": int(o.duration * 1e9)}
    return {"id": _value(o.id), "framework_id": _value(o.framework_id),
            "agent_id": _value(o.agent_id), "url": {"scheme": "http", "address": {
                "hostname": o.hostname}, "path": "/"}, "unavailability": window}


def event(msg: Any, master_info: Mapping[str, Any]) -> dict[str, Any] | None:
    """The v1 event for a message the core sends a framework (None: nothing to send)."""
    kind = type(msg)
    if kind is m.Heartbeat:
        return {"type": "HEARTBEAT"}
    if kind is m.Offers:
        return {"type": "OFFERS", "offers": {"offers": [offer(o) for o in msg.offers]}}
    if kind is m.Update:
        return {"type": "UPDATE", "update": {"status": task_status(msg.status)}}
    if kind is m.Rescind:
        return {"type": "RESCIND", "rescind": {"offer_id": _value(msg.offer_id)}}
    if kind is m.InverseOffers:
        return {"type": "INVERSE_OFFERS", "inverse_offers": {
            "inverse_offers": [inverse_offer(o) for o in msg.inverse_offers]}}
    if kind is m.Subscribed:
        return {"type": "SUBSCRIBED", "subscribed": {
            "framework_id": _value(msg.framework_id),
            "heartbeat_interval_seconds": float(msg.heartbeat_interval),
            "master_info": dict(master_info)}}
    if kind is m.AgentLost:
        return {"type": "FAILURE", "failure": {"agent_id": _value(msg.agent_id)}}
    if kind is m.ExecutorLost:
        return {"type": "FAILURE", "failure": {"agent_id": _value(msg.agent_id),
                                               "executor_id": _value(msg.executor_id),
                                               "status": msg.status}}
    if kind is m.FrameworkMessage:
        return {"type": "MESSAGE", "message": {"agent_id": _value(msg.agent_id),
                                               "executor_id": _value(msg.executor_id),
                                               "data": base64.b64encode(msg.data).decode()}}
    if kind is m.Error:
        return {"type": "ERROR", "error": {"message": msg.message}}
    if kind is m.ProtocolError:
        return {"type": "ERROR", "error": {"message": msg.message}}
    return None


def refused_update(task_id: str, agent_id: str, why: str, now: float) -> dict[str, Any]:
    """TASK_ERROR for a task refused before the core (Mesos: REASON_TASK_INVALID, no uuid)."""
    status: dict[str, Any] = {"task_id": _value(task_id), "state": "TASK_ERROR",
                              "source": "SOURCE_MASTER", "reason": "REASON_TASK_INVALID",
                              "message": why, "timestamp": now}
    if agent_id:
        status["agent_id"] = _value(agent_id)
    return {"type": "UPDATE", "update": {"status": status}}


def master_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """MasterInfo as Mesos writes it (pymesos reads `address`)."""
    host = info.get("hostname") or info.get("ip") or ""
    return {"id": info.get("id", ""), "hostname": host, "port": int(info.get("port") or 0),
            "version": info.get("version", ""),
            "address": {"hostname": host, "ip": info.get("ip", ""),
                        "port": int(info.get("port") or 0)}}
