"""`corral deployment ...`, `corral group ...`, `corral queue`: the rest of Marathon's API."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click

from corral.cmd_app import changing, force, path_of, read_json, run, timeout_option
from corral.cmd_master import json_option
from corral.output import emit_json, fields, note, table


@click.group()
def deployment() -> None:
    """Marathon deployments."""


def _actions(dep: dict[str, Any]) -> str:
    return ", ".join(f"{a.get('action')} {a.get('app')}" for a in dep.get("currentActions", []))


@deployment.command("list")
@json_option
@click.pass_obj
def deployment_list(env: Any, as_json: bool) -> None:
    """Deployments in progress."""
    deps = env.marathon.get("/v2/deployments")
    if as_json:
        emit_json(deps)
        return
    table(["ID", "APPS", "STEP", "CURRENT ACTIONS", "VERSION"],
          [(d["id"], d.get("affectedApps"), f"{d.get('currentStep')}/{d.get('totalSteps')}",
            _actions(d), d.get("version")) for d in deps], empty="no deployments")


@deployment.command("watch")
@click.argument("deployment_id")
@timeout_option
@click.pass_obj
def deployment_watch(env: Any, deployment_id: str, timeout: float | None) -> None:
    """Follow a deployment to its end; exit non-zero if it fails or is cancelled."""
    from corral.wait import follow
    follow(env.marathon, deployment_id, timeout=timeout)
    note(f"deployment {deployment_id} finished")


@deployment.command("rollback")
@click.argument("deployment_id")
@changing
@click.pass_obj
def deployment_rollback(env: Any, deployment_id: str, **opts: Any) -> None:
    """Cancel a deployment and start one that puts its apps back."""
    run(env, opts, lambda: env.marathon.delete(f"/v2/deployments/{deployment_id}"))


@deployment.command("stop")
@click.argument("deployment_id")
@click.pass_obj
def deployment_stop(env: Any, deployment_id: str) -> None:
    """Cancel a deployment where it stands (no rollback)."""
    env.marathon.delete(f"/v2/deployments/{deployment_id}", params={"force": "true"})
    note(f"deployment {deployment_id} stopped")


@click.group()
def group() -> None:
    """Marathon groups."""


def walk(g: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield g
    for child in g.get("groups", []):
        yield from walk(child)


def count_apps(g: dict[str, Any]) -> int:
    return sum(len(x.get("apps", [])) for x in walk(g))


@group.command("list")
@json_option
@click.pass_obj
def group_list(env: Any, as_json: bool) -> None:
    """Every group (the root first) with how many apps it holds."""
    root = env.marathon.get("/v2/groups")
    if as_json:
        emit_json(root)
        return
    table(["ID", "APPS", "GROUPS", "VERSION"],
          [(g["id"], count_apps(g), len(g.get("groups", [])), g.get("version"))
           for g in walk(root)])


@group.command("show")
@click.argument("group_id", default="/")
@json_option
@click.pass_obj
def group_show(env: Any, group_id: str, as_json: bool) -> None:
    """One group and the apps under it."""
    g = env.marathon.get(f"/v2/groups{path_of(group_id)}".rstrip("/") or "/v2/groups")
    if as_json:
        emit_json(g)
        return
    fields([("id", g["id"]), ("version", g.get("version")),
            ("dependencies", g.get("dependencies")),
            ("groups", [c["id"] for c in g.get("groups", [])])])
    table(["APP", "INSTANCES", "VERSION"],
          [(a["id"], a.get("instances"), a.get("version")) for x in walk(g)
           for a in x.get("apps", [])], empty="no apps")


@group.command("add")
@click.argument("source", metavar="FILE|-")
@changing
@click.pass_obj
def group_add(env: Any, source: str, **opts: Any) -> None:
    """Create a group (with its apps and groups) from a JSON definition."""
    doc = read_json(source)
    run(env, opts, lambda: env.marathon.post("/v2/groups", doc, params=force(opts)))


@group.command("remove")
@click.argument("group_id")
@changing
@click.pass_obj
def group_remove(env: Any, group_id: str, **opts: Any) -> None:
    """Destroy a group and every app under it."""
    run(env, opts, lambda: env.marathon.delete(f"/v2/groups{path_of(group_id)}",
                                               params=force(opts)))


@click.command()
@json_option
@click.pass_obj
def queue(env: Any, as_json: bool) -> None:
    """Apps waiting for offers to launch instances."""
    q = env.marathon.get("/v2/queue")["queue"]
    if as_json:
        emit_json(q)
        return
    table(["APP", "WAITING", "DELAYED", "SINCE"],
          [((i.get("app") or {}).get("id"), i.get("count"),
            (i.get("delay") or {}).get("overdue") is False, i.get("since")) for i in q],
          empty="the launch queue is empty")
