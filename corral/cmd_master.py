"""`corral cluster`, `corral agent ...`, `corral framework ...`: the master's operator API."""
from __future__ import annotations

from typing import Any

import click

from corral.errors import CliError
from corral.output import emit_json, fields, table

json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
RESOURCES = ("cpus", "mem", "disk", "gpus")


def _amount(used: dict[str, Any], total: dict[str, Any], name: str) -> str:
    u, t = float(used.get(name) or 0), float(total.get(name) or 0)
    return f"{u:g} / {t:g}"


def _sum(items: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in items:
        for k in RESOURCES:
            if isinstance(r.get(k), (int, float)):
                out[k] = out.get(k, 0.0) + r[k]
    return out


def summary(state: dict[str, Any]) -> dict[str, Any]:
    """The `corral cluster` view of /master/state."""
    agents = state.get("slaves", [])
    return {
        "leader": state.get("leader"), "id": state.get("id"),
        "version": state.get("version"), "agents": len(agents),
        "active_agents": sum(1 for a in agents if a.get("active")),
        "frameworks": len(state.get("frameworks", [])),
        "tasks": sum(len(f.get("tasks", [])) for f in state.get("frameworks", [])),
        "resources": {"total": _sum([a.get("resources", {}) for a in agents]),
                      "used": _sum([a.get("used_resources", {}) for a in agents])},
    }


@click.command()
@json_option
@click.pass_obj
def cluster(env: Any, as_json: bool) -> None:
    """Leader, version, agents and pooled resources (used / total)."""
    s = summary(env.master.get("/master/state"))
    if as_json:
        emit_json(s)
        return
    used, total = s["resources"]["used"], s["resources"]["total"]
    fields([("leader", s["leader"]), ("version", s["version"]),
            ("agents", f"{s['active_agents']} active of {s['agents']}"),
            ("frameworks", s["frameworks"]), ("tasks", s["tasks"])]
           + [(k, _amount(used, total, k)) for k in RESOURCES if k in total])


@click.group()
def agent() -> None:
    """Agents of the cluster."""


def agents_of(env: Any) -> list[dict[str, Any]]:
    return env.master.get("/master/state").get("slaves", [])


def find_agent(env: Any, agent_id: str) -> dict[str, Any]:
    """The agent with this id (or unique id prefix) from the master's state."""
    agents = agents_of(env)
    exact = [a for a in agents if a["id"] == agent_id]
    found = exact or [a for a in agents if a["id"].startswith(agent_id)]
    if len(found) != 1:
        raise CliError(f"no agent {agent_id!r}" if not found else
                       f"agent id {agent_id!r} is ambiguous ({len(found)} match)")
    return found[0]


@agent.command("list")
@json_option
@click.pass_obj
def agent_list(env: Any, as_json: bool) -> None:
    """Agents with their resources (used / total)."""
    agents = agents_of(env)
    if as_json:
        emit_json(agents)
        return
    table(["ID", "ADDRESS", "ACTIVE", "CPUS", "MEM", "DISK"],
          [(a["id"], f"{a.get('hostname')}:{a.get('port')}", a.get("active"),
            *(_amount(a.get("used_resources", {}), a.get("resources", {}), k)
              for k in ("cpus", "mem", "disk"))) for a in agents], empty="no agents")


@agent.command("show")
@click.argument("agent_id")
@json_option
@click.pass_obj
def agent_show(env: Any, agent_id: str, as_json: bool) -> None:
    """One agent (by id or unique id prefix)."""
    a = find_agent(env, agent_id)
    if as_json:
        emit_json(a)
        return
    total, used = a.get("resources", {}), a.get("used_resources", {})
    fields([("id", a["id"]), ("address", f"{a.get('hostname')}:{a.get('port')}"),
            ("active", a.get("active")), ("deactivated", a.get("deactivated")),
            ("drain", (a.get("drain_info") or {}).get("state")), ("version", a.get("version")),
            ("registered", a.get("registered_time")), ("attributes", a.get("attributes"))]
           + [(k, _amount(used, total, k)) for k in RESOURCES if k in total]
           + [("ports", total.get("ports"))])


def _agent_call(env: Any, kind: str, agent_id: str, **extra: Any) -> str:
    """A v1 operator call on one agent (by id or unique id prefix); returns its full id."""
    full = find_agent(env, agent_id)["id"]
    env.master.post("/api/v1", {"type": kind, kind.lower(): {"agent_id": {"value": full},
                                                              **extra}})
    return full


@agent.command("drain")
@click.argument("agent_id")
@click.option("--max-grace-period", type=float, default=None,
              help="Seconds: a cap on the kill grace period of the tasks there.")
@click.option("--mark-gone", is_flag=True, help="Remove the agent for good once drained.")
@click.pass_obj
def agent_drain(env: Any, agent_id: str, max_grace_period: float | None,
                mark_gone: bool) -> None:
    """No new tasks on the agent; its frameworks move their tasks (or they are killed)."""
    extra: dict[str, Any] = {"mark_gone": mark_gone}
    if max_grace_period is not None:
        if max_grace_period < 0:
            raise CliError("--max-grace-period must not be negative")
        extra["max_grace_period"] = {"nanoseconds": int(max_grace_period * 1e9)}
    click.echo(f"agent {_agent_call(env, 'DRAIN_AGENT', agent_id, **extra)} draining")


@agent.command("deactivate")
@click.argument("agent_id")
@click.pass_obj
def agent_deactivate(env: Any, agent_id: str) -> None:
    """No new offers of the agent; what runs there keeps running."""
    click.echo(f"agent {_agent_call(env, 'DEACTIVATE_AGENT', agent_id)} deactivated")


@agent.command("reactivate")
@click.argument("agent_id")
@click.pass_obj
def agent_reactivate(env: Any, agent_id: str) -> None:
    """Offer the agent again (a drain under way stops)."""
    click.echo(f"agent {_agent_call(env, 'REACTIVATE_AGENT', agent_id)} reactivated")


@click.group()
def framework() -> None:
    """Frameworks registered with the master."""


@framework.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include completed frameworks.")
@json_option
@click.pass_obj
def framework_list(env: Any, show_all: bool, as_json: bool) -> None:
    """Frameworks, their state and the resources they use."""
    state = env.master.get("/master/state")
    fws = state.get("frameworks", []) + (state.get("completed_frameworks", [])
                                         if show_all else [])
    if as_json:
        emit_json(fws)
        return
    done = {f["id"] for f in state.get("completed_frameworks", [])}
    table(["ID", "NAME", "STATE", "TASKS", "CPUS", "MEM"],
          [(f["id"], f.get("name"), "completed" if f["id"] in done else
            "active" if f.get("active") else "inactive", len(f.get("tasks", [])),
            f.get("used_resources", {}).get("cpus", 0),
            f.get("used_resources", {}).get("mem", 0)) for f in fws],
          empty="no frameworks")


@framework.command("teardown")
@click.argument("framework_id")
@click.pass_obj
def framework_teardown(env: Any, framework_id: str) -> None:
    """Remove a framework: the master kills its tasks and forgets it."""
    env.master.request("POST", "/master/teardown", data={"frameworkId": framework_id})
    click.echo(f"framework {framework_id} torn down")
