"""Pure offer matching: which of the wanted instances fit an offer, with which ports.

`match(offer, wants, placed, ...)` packs as many tasks as fit into one offer (an agent that
can run the app's container, resources of its accepted roles, dynamic or required host
ports, constraints on hostname and agent attributes) and returns the TaskInfos plus their
records; the caller declines the offer when nothing fits. `rejections` says why an offer
cannot take an app. `Backoff` is the launch delay per app:
`backoffSeconds * backoffFactor^failures`, capped.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import define, frozen

from frameworks.tasks import task_resources
from marathon.model import MARATHON_PROBED, port_list
from mesos_common import messages as m
from mesos_common.resources import UNRESERVED, ResourceError, Resources

NO_RESOURCES = Resources()

# Why an offer cannot take an instance (`/v2/queue`), in the order they are checked.
NO_DOCKER = "no agent with the docker containerizer"
INSUFFICIENT = {"cpus": "insufficient cpus", "mem": "insufficient mem",
                "disk": "insufficient disk", "gpus": "insufficient gpus"}
NO_PORTS = "insufficient ports"
NO_ROLE = "no resources of the accepted roles"
TAKEN = "offer used by other instances"
DOCKER_RUNNERS = frozenset({"docker", "sim"})  # containerizers that run DOCKER tasks


@frozen
class Want:
    """`count` more instances of `app` (its canonical definition) are wanted."""

    app: Mapping[str, Any]
    count: int


@frozen
class Placement:
    """Where an instance of the app already runs (for constraints)."""

    hostname: str
    attributes: Mapping[str, Any]


@frozen
class Launch:
    task: m.TaskInfo
    app_id: str
    version: str
    ports: tuple[int, ...]


def _field(offer_host: str, attrs: Mapping[str, Any], name: str) -> str | None:
    if name in ("hostname", "@hostname"):
        return offer_host
    v = attrs.get(name.lstrip("@"))
    if v is None:
        return None
    return f"{v:g}" if isinstance(v, float) else str(v)


def constraints_ok(constraints: Sequence[Sequence[str]], hostname: str,
                   attrs: Mapping[str, Any], placed: Sequence[Placement]) -> bool:
    """Would one more instance on (hostname, attrs) respect every constraint?"""
    return broken_constraint(constraints, hostname, attrs, placed) is None


def broken_constraint(constraints: Sequence[Sequence[str]], hostname: str,
                      attrs: Mapping[str, Any], placed: Sequence[Placement]) -> str | None:
    """The first constraint one more instance on (hostname, attrs) would break, as
    "constraint OP field" (None: none)."""
    for c in constraints:
        if not _constraint_ok(c, hostname, attrs, placed):
            return f"constraint {c[1].upper()} {c[0]}"
    return None


def _constraint_ok(c: Sequence[str], hostname: str, attrs: Mapping[str, Any],
                   placed: Sequence[Placement]) -> bool:
    name, op, arg = c[0], c[1].upper(), (c[2] if len(c) > 2 else "")
    v = _field(hostname, attrs, name)
    others = [_field(p.hostname, p.attributes, name) for p in placed]
    if v is None:
        return op == "UNLIKE"
    if op == "UNIQUE":
        return v not in others
    if op == "CLUSTER":
        return not ((arg and v != arg) or (not arg and others and v != others[0]))
    if op == "GROUP_BY":
        counts: dict[str, int] = {}
        for o in others:
            if o is not None:
                counts[o] = counts.get(o, 0) + 1
        if v not in counts and arg and len(counts) < int(arg):
            return True
        return counts.get(v, 0) <= min(counts.values(), default=0)
    if op == "LIKE":
        return re.fullmatch(arg, v) is not None
    if op == "UNLIKE":
        return re.fullmatch(arg, v) is None
    if op == "MAX_PER":
        return others.count(v) < int(arg)
    if op == "IS":
        return v == arg
    return True


def can_run(app: Mapping[str, Any], offer: m.Offer) -> bool:
    """Can the offer's agent run the app's container? An agent that does not say
    (no `containerizers`) is left to refuse what it cannot run."""
    if not (app.get("container") or {}).get("docker"):  # as `_container`: an image = DOCKER
        return True
    return not offer.containerizers or not DOCKER_RUNNERS.isdisjoint(offer.containerizers)


def accepted(app: Mapping[str, Any], res: Resources) -> Resources:
    """The part of `res` the app may use: that of its `acceptedResourceRoles` ("*" being
    the unreserved resources); all of it when the app names none."""
    roles = app.get("acceptedResourceRoles")
    if not roles:
        return res
    out = Resources()
    for role in roles:
        out += res.reserved(role)  # reserved("*") is the unreserved part
    return out


def rejections(app: Mapping[str, Any], offer: m.Offer,
               placed: Sequence[Placement] = ()) -> list[str]:
    """Why `offer` as a whole cannot take one instance of `app`, in the order checked:
    the agent's containerizers, constraints, then cpus, mem, disk and ports ([]: it can)."""
    if not can_run(app, offer):
        return [NO_DOCKER]
    res = accepted(app, offer.resources)
    if not res:
        return [NO_ROLE]
    out: list[str] = []
    broken = broken_constraint(app.get("constraints", []), offer.hostname, offer.attributes,
                               placed)
    if broken is not None:
        out.append(broken)
    out += [why for name, why in INSUFFICIENT.items() if res.scalar(name) < float(app[name])]
    if _host_ports(app, res) is None:
        out.append(NO_PORTS)
    return out


def _host_ports(app: Mapping[str, Any], left: Resources) -> tuple[list[int], Resources] | None:
    """Host ports for one task: required ones as given, dynamic ones picked from the offer."""
    ports = port_list(app)
    if not ports:
        return [], NO_RESOURCES
    required = bool(app.get("requirePorts"))
    wanted: list[int | None] = []
    for p in ports:
        if "containerPort" in p:
            if "hostPort" not in p:
                continue  # container-only port: no host port needed
            wanted.append(p["hostPort"] or None)
        else:
            wanted.append(p["port"] if required and p["port"] else None)
    fixed = [w for w in wanted if w is not None]
    try:
        res = Resources.parse(";".join(f"ports:[{p}-{p}]" for p in fixed)) if fixed else Resources()
        if fixed and not left.contains(res):
            return None
        dyn, dyn_res = (left - res).take_ports(len(wanted) - len(fixed))
    except ResourceError:
        return None
    it = iter(dyn)
    return [w if w is not None else next(it) for w in wanted], res + dyn_res


def _labels_env(labels: Mapping[str, str]) -> dict[str, str]:
    env, names = {}, []
    for k, v in labels.items():
        name = re.sub(r"[^a-zA-Z0-9_]+", "_", k).upper()
        if len(k) + len(v) < 512:
            env[f"MARATHON_APP_LABEL_{name}"] = v
            names.append(name)
    env["MARATHON_APP_LABELS"] = " ".join(names)
    return env


def task_env(app: Mapping[str, Any], task_id: str, host: str,
             ports: Sequence[int]) -> dict[str, str]:
    """The environment Marathon gives a task (reference §4.2); the app's `env` wins."""
    env = {"MESOS_TASK_ID": task_id, "MARATHON_APP_ID": app["id"],
           "MARATHON_APP_VERSION": app["version"], "HOST": host,
           "MARATHON_APP_RESOURCE_CPUS": str(float(app["cpus"])),
           "MARATHON_APP_RESOURCE_MEM": str(float(app["mem"])),
           "MARATHON_APP_RESOURCE_DISK": str(float(app["disk"])),
           "MARATHON_APP_RESOURCE_GPUS": str(int(app.get("gpus", 0)))}
    docker = (app.get("container") or {}).get("docker")
    if docker:
        env["MARATHON_APP_DOCKER_IMAGE"] = docker["image"]
    env.update(_labels_env(app.get("labels", {})))
    defs = [p for p in port_list(app) if "containerPort" not in p or "hostPort" in p]
    for i, (p, d) in enumerate(zip(ports, defs, strict=True)):  # a host port per def
        env[f"PORT{i}"] = str(p)
        requested = d.get("containerPort", d.get("port", 0))
        env[f"PORT_{requested or p}"] = str(p)
        if d.get("name"):
            env[f"PORT_{d['name'].upper().replace('-', '_')}"] = str(p)
    if ports:
        env["PORT"] = str(ports[0])
        env["PORTS"] = ",".join(map(str, ports))
    env.update({k: v for k, v in app.get("env", {}).items() if isinstance(v, str)})
    return env


def _container(app: Mapping[str, Any], ports: Sequence[int]) -> m.ContainerInfo | None:
    c = app.get("container")
    if not c or not c.get("docker"):
        return None
    d = c["docker"]
    mode = app.get("networks", [{"mode": "host"}])[0]["mode"]
    mappings = [p for p in c.get("portMappings", []) if "hostPort" in p]
    pms = tuple(m.PortMapping(host_port=hp, container_port=pm["containerPort"] or hp,
                              protocol=pm.get("protocol", "tcp").split(",")[0])
                for hp, pm in zip(ports, mappings, strict=False))  # host network: no mappings
    return m.ContainerInfo(
        type="DOCKER",
        docker=m.DockerInfo(image=d["image"], network={"host": "HOST", "container/bridge":
                                                       "BRIDGE"}.get(mode, "USER"),
                            port_mappings=pms, privileged=bool(d.get("privileged")),
                            parameters=tuple((p["key"], p["value"])
                                             for p in d.get("parameters", [])),
                            force_pull_image=bool(d.get("forcePullImage"))),
        volumes=tuple(m.Volume(v["containerPath"], v.get("hostPath", ""), v.get("mode", "RW"))
                      for v in c.get("volumes", []) if "hostPath" in v))


def _build(app: Mapping[str, Any], offer: m.Offer, left: Resources, task_id: str,
           same: dict[str, Resources] | None = None) -> tuple[m.TaskInfo, list[int]] | None:
    """One task out of `left`. `same`: the app's scalars from an earlier task of this
    offer, reused while they still fit (only for offers without reservations, where
    every task takes the same unreserved amounts)."""
    picked = _host_ports(app, left)
    if picked is None:
        return None
    ports, port_res = picked
    rest = left - port_res if port_res else left
    res = same.get(app["id"]) if same is not None else None
    if res is None or not rest.contains(res):
        try:
            res, _ = task_resources(rest, app["cpus"], app["mem"], app["disk"],
                                    gpus=int(app.get("gpus", 0)))
        except ResourceError:
            return None
        if same is not None:
            same[app["id"]] = res
    env = task_env(app, task_id, offer.hostname, ports)
    container = _container(app, ports)
    uris = _uris(app)
    if "cmd" in app:
        cmd = m.CommandInfo(value=app["cmd"], shell=True, environment=env,
                            user=app.get("user"), uris=uris)
    else:
        args = tuple(app.get("args", ()))
        cmd = m.CommandInfo(value=args[0] if args and not container else "", shell=False,
                            arguments=args, environment=env, user=app.get("user"), uris=uris)
    task = m.TaskInfo(name=app["id"].strip("/").replace("/", "."), task_id=task_id,
                      agent_id=offer.agent_id, resources=res + port_res, command=cmd,
                      container=container,
                      kill_grace_period=app.get("taskKillGracePeriodSeconds"),
                      labels=dict(app.get("labels", {})),
                      health_check=_mesos_check(app, ports, env))
    return task, ports


def _uris(app: Mapping[str, Any]) -> tuple[m.URI, ...]:
    """The app's `fetch` as the command's URIs (Marathon's defaults: extract, no cache)."""
    return tuple(m.URI(f["uri"], executable=bool(f.get("executable", False)),
                       extract=bool(f.get("extract", True)), cache=bool(f.get("cache", False)),
                       output_file=f.get("destPath") or f.get("outputFile") or None)
                 for f in app.get("fetch", ()))


def _mesos_check(app: Mapping[str, Any], ports: Sequence[int],
                 env: dict[str, str]) -> m.HealthCheck | None:
    """The app's first executor-run check (MESOS_HTTP/MESOS_TCP/COMMAND) as the TaskInfo's
    health check: Marathon does not probe those itself, the agent does."""
    for hc in app.get("healthChecks", ()):
        proto = hc.get("protocol", "HTTP")
        if proto in MARATHON_PROBED:
            continue
        port = hc.get("port")
        if port is None and proto != "COMMAND":
            index = int(hc.get("portIndex", 0))
            port = ports[index] if index < len(ports) else None
        kind = {"COMMAND": "COMMAND", "MESOS_TCP": "TCP"}.get(proto, "HTTP")
        command = (m.CommandInfo(value=hc["command"]["value"], shell=True, environment=env)
                   if kind == "COMMAND" else None)
        return m.HealthCheck(
            type=kind, command=command, port=port, path=hc.get("path", "/"),
            scheme="https" if proto == "MESOS_HTTPS" else "http",
            delay_seconds=float(hc.get("delaySeconds", 15)),
            interval_seconds=float(hc.get("intervalSeconds", 60)),
            timeout_seconds=float(hc.get("timeoutSeconds", 20)),
            consecutive_failures=int(hc.get("maxConsecutiveFailures", 3)),
            grace_period_seconds=float(hc.get("gracePeriodSeconds", 300)))
    return None


def match(offer: m.Offer, wants: Sequence[Want], placed: Mapping[str, Sequence[Placement]],
          new_task_id: Callable[[str], str], max_per_offer: int = 100) -> list[Launch]:
    """Pack wanted instances into `offer`, in the order of `wants`; [] means decline."""
    left = offer.resources
    out: list[Launch] = []
    here = {k: list(v) for k, v in placed.items()}
    same: dict[str, Resources] | None = {} if left.roles() <= {UNRESERVED} else None
    for want in wants:
        app = want.app
        if not can_run(app, offer):
            continue
        for _ in range(want.count):
            if len(out) >= max_per_offer:
                return out
            if not constraints_ok(app.get("constraints", []), offer.hostname,
                                  offer.attributes, here.get(app["id"], [])):
                break
            built = _build(app, offer, accepted(app, left), new_task_id(app["id"]), same)
            if built is None:
                break
            task, ports = built
            left -= task.resources
            here.setdefault(app["id"], []).append(Placement(offer.hostname, offer.attributes))
            out.append(Launch(task, app["id"], app["version"], tuple(ports)))
    return out


@define
class Backoff:
    """Launch delay of one app after consecutive failures (reset by success or DELETE)."""

    failures: int = 0
    until: float = 0.0

    def failed(self, app: Mapping[str, Any], now: float) -> None:
        delay = float(app["backoffSeconds"]) * float(app["backoffFactor"]) ** self.failures
        self.failures += 1
        self.until = now + min(delay, float(app["maxLaunchDelaySeconds"]))

    def reset(self) -> None:
        self.failures, self.until = 0, 0.0
