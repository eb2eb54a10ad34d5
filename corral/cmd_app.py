"""`corral app ...`: Marathon apps, every change optionally followed with `--wait`."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from corral.cmd_master import json_option
from corral.errors import CliError
from corral.output import emit_json, fields, note, table

wait_option = click.option("--wait", is_flag=True, help="Follow the deployment to its end; "
                           "exit non-zero if it fails or is cancelled.")
force_option = click.option("--force", is_flag=True, help="Override a deployment in progress.")
timeout_option = click.option("--timeout", type=float, default=None, metavar="SECONDS",
                              help="With --wait: give up (exit 1) after this long.")


def path_of(app_id: str) -> str:
    return "/" + app_id.strip("/")


def read_json(source: str) -> Any:
    """A JSON document from a file, or from stdin for `-`."""
    try:
        text = sys.stdin.read() if source == "-" else open(source).read()
    except OSError as e:
        raise CliError(f"{source}: {e.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise CliError(f"{'stdin' if source == '-' else source}: not valid JSON: {e}") from None


def changing(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options every change takes: --wait, --timeout, --force, --json."""
    for deco in (json_option, force_option, timeout_option, wait_option):
        fn = deco(fn)
    return fn


def run(env: Any, opts: dict[str, Any], make: Callable[[], Any],
        apps: list[str] | None = None) -> Any:
    from corral.wait import change
    return change(env.marathon, opts["wait"], make, opts["as_json"], opts["timeout"], apps)


def force(opts: dict[str, Any]) -> dict[str, str]:
    return {"force": "true"} if opts["force"] else {}


def health(app: dict[str, Any]) -> str:
    if not app.get("healthChecks"):
        return "-"
    return f"{app.get('tasksHealthy', 0)} healthy, {app.get('tasksUnhealthy', 0)} unhealthy"


def what_runs(app: dict[str, Any]) -> str:
    image = ((app.get("container") or {}).get("docker") or {}).get("image")
    cmd = app.get("cmd") or " ".join(app.get("args") or [])
    text = f"{image} {cmd}".strip() if image else cmd
    return text if len(text) <= 60 else text[:57] + "..."


@click.group()
def app() -> None:
    """Marathon apps."""


@app.command("list")
@json_option
@click.pass_obj
def app_list(env: Any, as_json: bool) -> None:
    """Apps with their instances (running / wanted) and health."""
    apps = env.marathon.get("/v2/apps")["apps"]
    if as_json:
        emit_json(apps)
        return
    table(["ID", "INSTANCES", "HEALTH", "CPUS", "MEM", "DEPLOYING", "RUNS"],
          [(a["id"], f"{a.get('tasksRunning', 0)}/{a.get('instances', 0)}", health(a),
            a.get("cpus"), a.get("mem"), bool(a.get("deployments")), what_runs(a))
           for a in apps], empty="no apps")


@app.command("show")
@click.argument("app_id")
@json_option
@click.pass_obj
def app_show(env: Any, app_id: str, as_json: bool) -> None:
    """One app and its tasks."""
    a = env.marathon.get(f"/v2/apps{path_of(app_id)}")["app"]
    if as_json:
        emit_json(a)
        return
    fields([("id", a["id"]), ("version", a.get("version")), ("runs", what_runs(a)),
            ("instances", f"{a.get('tasksRunning', 0)} running of {a.get('instances')}"),
            ("health", health(a)), ("cpus", a.get("cpus")), ("mem", a.get("mem")),
            ("constraints", [":".join(c) for c in a.get("constraints", [])]),
            ("dependencies", a.get("dependencies")), ("labels", a.get("labels")),
            ("deployments", [d["id"] for d in a.get("deployments", [])])])
    tasks = a.get("tasks", [])
    if tasks:
        table(["TASK", "STATE", "HOST", "PORTS", "STARTED"],
              [(t["id"], t.get("state", "").removeprefix("TASK_"), t.get("host"),
                t.get("ports"), t.get("startedAt")) for t in tasks])


def _deployment_of(resp: dict[str, Any]) -> dict[str, Any]:
    """POST /v2/apps answers the app; its deployment id is in `deployments`."""
    deps = resp.get("deployments") or []
    return dict(resp, deploymentId=deps[0]["id"]) if deps else resp


@app.command("add")
@click.argument("source", metavar="FILE|-")
@changing
@click.pass_obj
def app_add(env: Any, source: str, **opts: Any) -> None:
    """Create an app from a JSON definition."""
    doc = read_json(source)
    apps = [path_of(doc["id"])] if isinstance(doc, dict) and isinstance(doc.get("id"), str) \
        else None
    run(env, opts, lambda: _deployment_of(env.marathon.post("/v2/apps", doc,
                                                            params=force(opts))), apps)


@app.command("update")
@click.argument("app_id")
@click.argument("source", metavar="FILE|-")
@changing
@click.pass_obj
def app_update(env: Any, app_id: str, source: str, **opts: Any) -> None:
    """Change an app: the given fields replace the app's."""
    doc = read_json(source)
    run(env, opts, lambda: env.marathon.put(f"/v2/apps{path_of(app_id)}", doc,
                                            params=force(opts)), [path_of(app_id)])


@app.command("remove")
@click.argument("app_id")
@changing
@click.pass_obj
def app_remove(env: Any, app_id: str, **opts: Any) -> None:
    """Destroy an app and kill its tasks."""
    run(env, opts, lambda: env.marathon.delete(f"/v2/apps{path_of(app_id)}",
                                               params=force(opts)), [path_of(app_id)])


@app.command("restart")
@click.argument("app_id")
@changing
@click.pass_obj
def app_restart(env: Any, app_id: str, **opts: Any) -> None:
    """Replace every task of an app (rolling, per its upgrade strategy)."""
    run(env, opts, lambda: env.marathon.post(f"/v2/apps{path_of(app_id)}/restart",
                                             params=force(opts)), [path_of(app_id)])


@app.command("scale")
@click.argument("app_id")
@click.argument("instances", type=click.IntRange(min=0))
@changing
@click.pass_obj
def app_scale(env: Any, app_id: str, instances: int, **opts: Any) -> None:
    """Set the number of instances."""
    run(env, opts, lambda: env.marathon.put(f"/v2/apps{path_of(app_id)}",
                                            {"instances": instances}, params=force(opts)),
        [path_of(app_id)])


@app.command("kill")
@click.argument("app_id")
@click.argument("task_id")
@click.option("--scale", is_flag=True, help="Also lower the app's instances by one.")
@changing
@click.pass_obj
def app_kill(env: Any, app_id: str, task_id: str, scale: bool, **opts: Any) -> None:
    """Kill one task of an app (Marathon starts a replacement unless --scale)."""
    params = dict(force(opts), **({"scale": "true"} if scale else {}))
    resp = run(env, opts, lambda: env.marathon.delete(
        f"/v2/apps{path_of(app_id)}/tasks/{task_id}", params=params), [path_of(app_id)])
    if not scale and not opts["as_json"]:
        note(f"killed {resp['task']['id']}")


@app.group("version")
def app_version() -> None:
    """Versions of an app."""


@app_version.command("list")
@click.argument("app_id")
@json_option
@click.pass_obj
def app_version_list(env: Any, app_id: str, as_json: bool) -> None:
    """The app's versions, newest first."""
    resp = env.marathon.get(f"/v2/apps{path_of(app_id)}/versions")
    if as_json:
        emit_json(resp)
        return
    table(["VERSION"], [(v,) for v in resp["versions"]], empty="no versions")


@app.command("rollback")
@click.argument("app_id")
@click.argument("version", required=False)
@changing
@click.pass_obj
def app_rollback(env: Any, app_id: str, version: str | None, **opts: Any) -> None:
    """Put an app back to VERSION (default: the version before the current one)."""
    aid = path_of(app_id)
    if version is None:
        versions = env.marathon.get(f"/v2/apps{aid}/versions")["versions"]
        current = env.marathon.get(f"/v2/apps{aid}")["app"]["version"]
        older = [v for v in versions if v < current]
        if not older:
            raise CliError(f"app {aid} has no version before {current}")
        version = older[0]
    run(env, opts, lambda: env.marathon.put(f"/v2/apps{aid}", {"version": version},
                                            params=force(opts)), [aid])
