"""`corral task ...`: tasks from the master, their sandboxes through the agent's files API."""
from __future__ import annotations

import posixpath
import sys
import time
from typing import Any

import click

from corral.cmd_master import find_agent, json_option
from corral.errors import CliError
from corral.output import emit_json, fields, table

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
            "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}
ALL_TASKS = 1_000_000  # /master/tasks pages at 100 by default
FOLLOW_POLL = 0.5
READ_CHUNK = 64 * 1024


def all_tasks(env: Any) -> list[dict[str, Any]]:
    return env.master.get("/master/tasks", params={"limit": ALL_TASKS}).get("tasks", [])


def find_task(env: Any, task_id: str) -> dict[str, Any]:
    """The task with this id (or unique prefix); a live one wins over finished namesakes."""
    tasks = all_tasks(env)
    found = [t for t in tasks if t["id"] == task_id] or \
        [t for t in tasks if t["id"].startswith(task_id)]
    if not found:
        raise CliError(f"no task {task_id!r}")
    if len({t["id"] for t in found}) > 1:
        raise CliError(f"task id {task_id!r} is ambiguous ({len(found)} tasks match)")
    live = [t for t in found if t["state"] not in TERMINAL]
    return (live or found)[-1]


def healthy(task: dict[str, Any]) -> bool | None:
    for s in reversed(task.get("statuses", [])):
        if "healthy" in s:
            return bool(s["healthy"])
    return None


def _state_matches(state: str, wanted: str) -> bool:
    w = wanted.upper()
    return state == w or state == "TASK_" + w


@click.group()
def task() -> None:
    """Tasks, their sandboxes and logs."""


@task.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include finished tasks.")
@click.option("--app", "app_id", help="Only the tasks of this Marathon app.")
@click.option("--agent", "agent_id", help="Only the tasks on this agent (id or prefix).")
@click.option("--state", help="Only tasks in this state (running, TASK_FAILED, ...).")
@json_option
@click.pass_obj
def task_list(env: Any, show_all: bool, app_id: str | None, agent_id: str | None,
              state: str | None, as_json: bool) -> None:
    """Tasks of every framework (live ones unless --all or --state)."""
    tasks = all_tasks(env)
    if state:
        tasks = [t for t in tasks if _state_matches(t["state"], state)]
    elif not show_all:
        tasks = [t for t in tasks if t["state"] not in TERMINAL]
    if agent_id:
        tasks = [t for t in tasks if t["slave_id"].startswith(agent_id)]
    if app_id:
        from marathon.model import app_of_task, normalize_id
        want = normalize_id(app_id)
        tasks = [t for t in tasks if app_of_task(t["id"]) == want]
    if as_json:
        emit_json(tasks)
        return
    table(["ID", "STATE", "HEALTHY", "AGENT", "CPUS", "MEM"],
          [(t["id"], t["state"].removeprefix("TASK_"), healthy(t), t["slave_id"],
            t.get("resources", {}).get("cpus"), t.get("resources", {}).get("mem"))
           for t in tasks], empty="no tasks")


class Sandbox:
    """Where a task's files are: its agent's base URL and the sandbox directory there."""

    def __init__(self, env: Any, task_id: str) -> None:
        self.env = env
        self.task = find_task(env, task_id)
        agent = find_agent(env, self.task["slave_id"])
        self.agent_url = f"http://{agent['hostname']}:{agent['port']}"
        self.directory, self.live = self._locate()

    def _executors(self) -> list[tuple[dict[str, Any], bool]]:
        state = self.env.master.get(self.agent_url + "/state")
        out = []
        for fw in state.get("frameworks", []) + state.get("completed_frameworks", []):
            out += [(e, True) for e in fw.get("executors", [])]
            out += [(e, False) for e in fw.get("completed_executors", [])]
        return [(e, live) for e, live in out if e.get("id") == self.task["id"]]

    def _locate(self) -> tuple[str, bool]:
        found = self._executors()
        if not found:
            raise CliError(f"agent {self.agent_url} no longer has a sandbox for task "
                           f"{self.task['id']}")
        e, live = sorted(found, key=lambda x: x[1])[-1]  # the live run, else the last
        return e["directory"], live

    def running(self) -> bool:
        for e, live in self._executors():
            if live and any(t.get("state") not in TERMINAL for t in e.get("tasks", [])):
                return True
        return False

    def path(self, rel: str) -> str:
        return posixpath.normpath(posixpath.join(self.directory, rel.lstrip("/")))

    def read(self, rel: str, offset: int, length: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"path": self.path(rel), "offset": offset}
        if length is not None:
            params["length"] = length
        return self.env.master.get(self.agent_url + "/files/read", params=params)


def _tail_start(box: Sandbox, name: str, size: int, lines: int) -> int:
    """The offset where the last `lines` lines of the file begin."""
    start = size
    while start > 0:
        start = max(0, start - READ_CHUNK)
        data = box.read(name, start, size - start)["data"]
        body = data[:-1] if data.endswith("\n") else data
        if body.count("\n") >= lines:
            cut = len(body)
            for _ in range(lines):
                cut = body.rfind("\n", 0, cut)
            return start + len(data[:cut + 1].encode())
    return 0


def _print_from(box: Sandbox, name: str, offset: int) -> int:
    while True:
        got = box.read(name, offset)
        data = got.get("data", "")
        if not data:
            return max(offset, int(got.get("offset", offset)))
        sys.stdout.write(data)
        sys.stdout.flush()
        offset = int(got["offset"]) + len(data.encode())


@task.command("log")
@click.argument("task_id")
@click.option("--stderr", "use_stderr", is_flag=True, help="The task's stderr, not stdout.")
@click.option("--lines", default=10, show_default=True, type=click.IntRange(min=0),
              help="Print this many last lines first.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing what the task writes; "
              "ends when the task ends.")
@click.pass_obj
def task_log(env: Any, task_id: str, use_stderr: bool, lines: int, follow: bool) -> None:
    """The task's stdout (or stderr) from its sandbox."""
    box = Sandbox(env, task_id)
    name = "stderr" if use_stderr else "stdout"
    size = int(box.read(name, -1)["offset"])
    offset = _print_from(box, name, _tail_start(box, name, size, lines) if lines else size)
    while follow:
        alive = box.running()
        offset = _print_from(box, name, offset)
        if not alive:
            return
        time.sleep(FOLLOW_POLL)


@task.command("show")
@click.argument("task_id")
@json_option
@click.pass_obj
def task_show(env: Any, task_id: str, as_json: bool) -> None:
    """One task (by id or unique id prefix)."""
    t = find_task(env, task_id)
    if as_json:
        emit_json(t)
        return
    res = t.get("resources", {})
    fields([("id", t["id"]), ("name", t.get("name")), ("state", t["state"]),
            ("healthy", healthy(t)), ("agent", t["slave_id"]),
            ("framework", t["framework_id"]),
            ("resources", {k: v for k, v in res.items() if k != "ports"}),
            ("ports", res.get("ports")),
            ("container", (t.get("container") or {}).get("type")),
            ("states", [s["state"].removeprefix("TASK_") for s in t.get("statuses", [])])])


@task.command("ls")
@click.argument("task_id")
@click.argument("path", default=".")
@json_option
@click.pass_obj
def task_ls(env: Any, task_id: str, path: str, as_json: bool) -> None:
    """Files in the task's sandbox (or a directory in it)."""
    box = Sandbox(env, task_id)
    entries = env.master.get(box.agent_url + "/files/browse", params={"path": box.path(path)})
    if as_json:
        emit_json(entries)
        return
    table(["MODE", "SIZE", "MTIME", "NAME"],
          [(e["mode"], e["size"], time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["mtime"])),
            posixpath.basename(e["path"])) for e in entries], empty="(empty)")


@task.command("download")
@click.argument("task_id")
@click.argument("path")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True),
              help="Where to write (default: the file's name here; - for stdout).")
@click.pass_obj
def task_download(env: Any, task_id: str, path: str, output: str | None) -> None:
    """Copy one file out of the task's sandbox."""
    box = Sandbox(env, task_id)
    r = env.master.request("GET", box.agent_url + "/files/download",
                           params={"path": box.path(path)}, stream=True)
    target = output or posixpath.basename(path.rstrip("/"))
    out = sys.stdout.buffer if target == "-" else open(target, "wb")
    n = 0
    try:
        for chunk in r.iter_content(64 * 1024):
            out.write(chunk)
            n += len(chunk)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    if target != "-":
        click.echo(f"{target}: {n} bytes", err=True)
