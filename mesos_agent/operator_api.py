"""`POST /api/v1` on the agent: the Mesos v1 agent operator API (JSON).

GET_HEALTH, GET_VERSION, GET_FLAGS, GET_STATE (tasks, executors, frameworks, the agent),
GET_CONTAINERS, LIST_FILES and READ_FILE (the files API's sandbox rules: paths outside the
sandboxes are refused). Unknown calls: 400 with a message.
"""
from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

from aiohttp import web

from mesos_agent.core import Agent
from mesos_agent.executor_api import ExecutorApi, agent_info
from mesos_agent.http import PathError, listing, owner_names, resolve_sandbox_path
from mesos_agent.records import TaskEntry
from mesos_common import v1_json
from mesos_common.v1_calls import V1Error
from mesos_common.v1_http import bad, read_call

MAX_READ = 16 * 1024 * 1024


def _task(e: TaskEntry) -> dict[str, Any]:
    t = e.task
    out: dict[str, Any] = {
        "name": t.name, "task_id": v1_json.value(t.task_id),
        "framework_id": v1_json.value(e.framework_id), "agent_id": v1_json.value(t.agent_id),
        "state": e.state, "resources": t.resources.to_json(),
        "statuses": [{"task_id": v1_json.value(t.task_id), "state": s, "timestamp": at}
                     for s, at in e.statuses]}
    if e.executor_id:
        out["executor_id"] = v1_json.value(e.executor_id)
    return out


def get_state(core: Agent, agent_info: dict[str, Any]) -> dict[str, Any]:
    tasks = core.tasks().values()
    executors = core.executors()
    return {
        "get_tasks": {
            "launched_tasks": [_task(e) for e in tasks if e.state in ("TASK_RUNNING",
                               "TASK_STARTING", "TASK_KILLING", "TASK_STAGING")],
            "terminated_tasks": [_task(e) for e in tasks if e.state not in (
                "TASK_RUNNING", "TASK_STARTING", "TASK_KILLING", "TASK_STAGING")]},
        "get_executors": {"executors": [{"executor_info": v1_json.executor_info(ex.info)}
                                        for ex in executors]},
        "get_frameworks": {"frameworks": [{"framework_info": v1_json.framework_info(fw)}
                                          for fw in core.frameworks().values()]},
        "get_agent": {"agent_info": agent_info},
    }


def get_containers(core: Agent) -> list[dict[str, Any]]:
    out = []
    for e in core.tasks().values():
        if not e.executor_id and e.container:
            out.append({"framework_id": v1_json.value(e.framework_id),
                        "executor_id": v1_json.value(e.task_id),
                        "executor_name": f"Command Executor (Task: {e.task_id})",
                        "container_id": v1_json.value(e.run_id)})
    for ex in core.executors():
        out.append({"framework_id": v1_json.value(ex.framework_id),
                    "executor_id": v1_json.value(ex.info.executor_id),
                    "executor_name": ex.info.name, "container_id": v1_json.value(ex.run_id)})
    return out


def list_files(work_dir: str, path: str | None) -> list[dict[str, Any]]:
    real = resolve_sandbox_path(work_dir, path)
    out = []
    for shown, st in listing(real, path or ""):
        uid, gid = owner_names(st)
        out.append({"path": shown, "nlink": st.st_nlink, "size": st.st_size,
                    "mtime": {"nanoseconds": st.st_mtime_ns}, "mode": st.st_mode,
                    "uid": uid, "gid": gid})
    return out


def read_file(work_dir: str, path: str | None, offset: int, length: int | None
              ) -> dict[str, Any]:
    real = resolve_sandbox_path(work_dir, path)
    if os.path.isdir(real):
        raise PathError(400, "Cannot read a directory")
    if offset < 0 or (length is not None and length < 0):
        raise PathError(400, "offset and length must not be negative")
    with open(real, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(min(offset, size))
        data = f.read(min(MAX_READ, length if length is not None else MAX_READ))
    return {"size": size, "data": base64.b64encode(data).decode()}


def add_v1_routes(app: web.Application, executor: ExecutorApi,
                  operator: AgentOperatorApi) -> None:
    """`/api/v1/executor` and `/api/v1` (also under Mesos's `/slave(1)` prefix)."""
    for prefix in ("", "/slave(1)"):
        app.router.add_post(f"{prefix}/api/v1/executor", executor.handle)
        app.router.add_post(f"{prefix}/api/v1", operator.handle)


class AgentOperatorApi:
    def __init__(self, core: Callable[[], Agent | None], work_dir: str,
                 flags: dict[str, str], version: str) -> None:
        self.core = core
        self.work_dir = work_dir
        self.flags = flags
        self.version = version

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await read_call(request)
        except V1Error as e:
            return bad(str(e))
        kind = body["type"]
        core = self.core()
        if core is None:
            return web.Response(status=503, text="the agent is starting")
        try:
            result = self._answer(kind, body, core)
        except PathError as e:
            return web.Response(status=e.status, text=str(e))
        except (TypeError, ValueError) as e:
            return bad(f"bad {kind} call: {e}")
        if result is None:
            return bad(f"unknown call type {kind[:80]!r}")
        return web.json_response({"type": kind, kind.lower(): result})

    def _answer(self, kind: str, body: dict[str, Any], core: Agent) -> dict[str, Any] | None:
        if kind == "GET_HEALTH":
            return {"healthy": True}
        if kind == "GET_VERSION":
            return {"version_info": {"version": self.version}}
        if kind == "GET_FLAGS":
            return {"flags": [{"name": k, "value": v} for k, v in sorted(self.flags.items())]}
        if kind == "GET_STATE":
            return get_state(core, agent_info(core))
        if kind == "GET_CONTAINERS":
            return {"containers": get_containers(core)}
        if kind == "LIST_FILES":
            args = body.get("list_files") or {}
            return {"file_infos": list_files(self.work_dir, args.get("path"))}
        if kind == "READ_FILE":
            args = body.get("read_file") or {}
            length = args.get("length")
            return read_file(self.work_dir, args.get("path"), int(args.get("offset", 0)),
                             int(length) if length is not None else None)
        return None
