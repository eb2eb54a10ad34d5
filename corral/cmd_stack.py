"""`corral stack ...`: Compose files deployed as Marathon groups (`docker stack` for Corral).

Everything is read and checked before the first API call, so bad input deploys nothing.
"""
from __future__ import annotations

import json
import os
import sys
from importlib import resources
from typing import Any

import click

from corral.cmd_app import changing, force, run
from corral.cmd_master import json_option
from corral.errors import CliError
from corral.output import emit_json, note, table

SCHEMA = "compose-spec.json"


def load_schema() -> dict[str, Any]:
    return json.loads(resources.files("corral").joinpath(SCHEMA).read_text())


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise CliError(f"{path}: {e.strerror}") from None


def _env_file_paths(doc: dict[str, Any]) -> list[tuple[str, bool]]:
    out = []
    for spec in (doc.get("services") or {}).values():
        files = (spec or {}).get("env_file") or []
        for f in [files] if isinstance(files, (str, dict)) else files:
            if isinstance(f, dict):
                out.append((str(f.get("path", "")), f.get("required", True) is not False))
            else:
                out.append((str(f), True))
    return out


def translate(files: tuple[str, ...], name: str, strict: bool) -> Any:
    """Read, merge, validate and translate the Compose files (IO here, rules in compose)."""
    from corral import compose
    doc: dict[str, Any] = {}
    for path in files:
        text = sys.stdin.read() if path == "-" else _read(path)
        doc = compose.merge(doc, compose.interpolate(compose.parse(text, path),
                                                     dict(os.environ)))
    unknown = compose.check(doc, load_schema())
    base = os.path.dirname(os.path.abspath(files[0])) if files[0] != "-" else os.getcwd()
    env_files = {}
    for p, required in _env_file_paths(doc):
        full = os.path.join(base, p)
        if os.path.exists(full) or required:
            env_files[p] = _read(full)
    out = compose.to_group(doc, name, env_files=env_files, base_dir=base)
    ignored = sorted(set(unknown) | set(out.ignored))
    if ignored and strict:
        raise CliError(f"keys Corral cannot honour (--strict): {', '.join(ignored)}")
    if ignored:
        note(f"corral: warning: ignoring keys Corral cannot honour: {', '.join(ignored)}")
    return out


def deployed(env: Any, gid: str) -> dict[str, Any] | None:
    from corral.client import ApiError
    try:
        return env.marathon.get(f"/v2/groups{gid}")
    except ApiError as e:
        if e.status == 404:
            return None
        raise


@click.group()
def stack() -> None:
    """Compose files deployed as Marathon groups."""


@stack.command("deploy")
@click.option("--compose-file", "-c", "files", multiple=True, required=True,
              metavar="FILE", help="A Compose file (repeat to lay files over each other).")
@click.option("--strict", is_flag=True, help="Refuse keys Corral cannot honour.")
@click.argument("name")
@changing
@click.pass_obj
def stack_deploy(env: Any, files: tuple[str, ...], strict: bool, name: str,
                 **opts: Any) -> None:
    """Deploy (or update) the Compose files as group /NAME; only changed services redeploy."""
    from corral import compose
    out = translate(files, name, strict)
    gid = out.group["id"]
    current = deployed(env, gid)
    if current is not None:
        from corral.cmd_deploy import walk
        foreign = [a["id"] for g in walk(current) for a in g.get("apps", [])
                   if a.get("labels", {}).get(compose.STACK_LABEL) != name]
        if foreign:
            raise CliError(f"group {gid} holds apps that are not part of stack {name!r}: "
                           f"{', '.join(foreign)}")
    plan = compose.plan(out.group, current)
    if not plan.changed and not plan.removed:
        if opts["as_json"]:
            emit_json({"changed": [], "unchanged": plan.unchanged, "removed": []})
        else:
            note(f"stack {name} is up to date")
        return
    if not opts["as_json"]:
        note(f"stack {name}: updating {', '.join(plan.changed) or 'nothing'}"
             + (f"; removing {', '.join(plan.removed)}" if plan.removed else "")
             + (f"; unchanged {', '.join(plan.unchanged)}" if plan.unchanged else ""))
    run(env, opts, lambda: env.marathon.put(f"/v2/groups{gid}", plan.group,
                                            params=force(opts)),
        [a["id"] for a in plan.group["apps"]] + plan.removed)


def stack_apps(env: Any) -> dict[str, list[dict[str, Any]]]:
    from corral.compose import STACK_LABEL
    out: dict[str, list[dict[str, Any]]] = {}
    for a in env.marathon.get("/v2/apps", params={"label": STACK_LABEL})["apps"]:
        out.setdefault(a["labels"][STACK_LABEL], []).append(a)
    return out


@stack.command("ls")
@json_option
@click.pass_obj
def stack_ls(env: Any, as_json: bool) -> None:
    """Stacks and how many services each has."""
    stacks = stack_apps(env)
    if as_json:
        emit_json([{"name": n, "apps": apps} for n, apps in sorted(stacks.items())])
        return
    table(["NAME", "SERVICES"], [(n, len(a)) for n, a in sorted(stacks.items())],
          empty="no stacks")


@stack.command("services")
@click.argument("name")
@json_option
@click.pass_obj
def stack_services(env: Any, name: str, as_json: bool) -> None:
    """The services of a stack: image, replicas, health, ports."""
    apps = stack_apps(env).get(name)
    if apps is None:
        raise CliError(f"no stack {name!r}")
    if as_json:
        emit_json(apps)
        return
    from corral.cmd_app import health
    table(["SERVICE", "IMAGE", "REPLICAS", "HEALTH", "PORTS"],
          [(a["id"].rsplit("/", 1)[-1],
            ((a.get("container") or {}).get("docker") or {}).get("image"),
            f"{a.get('tasksRunning', 0)}/{a.get('instances', 0)}", health(a),
            [f"{p.get('hostPort') or '*'}->{p.get('containerPort')}/{p.get('protocol', 'tcp')}"
             for p in (a.get("container") or {}).get("portMappings", [])
             if p.get("containerPort")])
           for a in apps])


@stack.command("rm")
@click.argument("name")
@changing
@click.pass_obj
def stack_rm(env: Any, name: str, **opts: Any) -> None:
    """Remove a stack: its group and every service in it."""
    from corral.compose import stack_id
    apps = stack_apps(env).get(name)
    if apps is None:
        raise CliError(f"no stack {name!r}")
    run(env, opts, lambda: env.marathon.delete(f"/v2/groups{stack_id(name)}",
                                               params=force(opts)), [a["id"] for a in apps])
