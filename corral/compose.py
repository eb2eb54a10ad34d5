"""A Compose file as a Marathon group: what `docker stack deploy` does, as pure functions.

`parse` turns YAML text into a mapping, `interpolate` fills `${VAR}` from a given environment,
`merge` lays later files over earlier ones, `check` validates against the Compose spec's JSON
schema and reports keys it does not know, and `to_group` builds group `/NAME` with one app per
service. Keys that are valid Compose but have no Marathon meaning are collected (`ignored`) so
the caller can warn once or, strict, refuse. Every error is one `ComposeError` line naming the
service and key. No IO here: the caller reads files and the schema and passes them in.
"""
from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from corral.errors import CliError

STACK_LABEL = "com.corral.stack.namespace"
HASH_LABEL = "com.corral.stack.hash"
DEFAULT_CPUS = 0.1
DEFAULT_MEM = 128.0
SEGMENT = re.compile(r"^([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$")
# Service keys (and deploy keys) that have a Marathon meaning; any other is `ignored`.
SERVICE_KEYS = frozenset({
    "image", "command", "entrypoint", "environment", "env_file", "ports", "deploy",
    "healthcheck", "depends_on", "labels", "volumes", "network_mode", "user", "working_dir",
    "privileged", "cpus", "mem_limit", "stop_grace_period"})
DEPLOY_KEYS = frozenset({"mode", "replicas", "resources", "placement", "update_config",
                         "labels"})
TOP_KEYS = frozenset({"version", "name", "services"})
# Read-only parts of an app as GET answers it; not part of a definition sent back.
APP_STATUS_KEYS = frozenset({
    "tasks", "deployments", "tasksRunning", "tasksStaged", "tasksHealthy", "tasksUnhealthy",
    "versionInfo", "lastTaskFailure", "taskStats", "tasksStats", "readinessCheckResults",
    "version"})


class ComposeError(CliError):
    """Bad input, as one line that names the service and key."""


@frozen
class Translation:
    group: dict[str, Any]
    ignored: list[str]  # "services.web.build", ... (valid Compose, no Marathon meaning)


@frozen
class StackPlan:
    """What a deploy of `group` over the deployed one changes."""
    group: dict[str, Any]  # to PUT: changed apps as translated, unchanged ones as deployed
    changed: list[str]
    unchanged: list[str]
    removed: list[str]


def _where(service: str | None, key: str) -> str:
    return f"service {service!r}, key {key!r}" if service else f"key {key!r}"


def _fail(service: str | None, key: str, why: str) -> ComposeError:
    return ComposeError(f"{_where(service, key)}: {why}")


# ------------------------------------------------------------------ reading


def parse(text: str, source: str) -> dict[str, Any]:
    """YAML text -> mapping; a parse error names the file, line and column."""
    import yaml
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ComposeError(f"{where}: YAML does not parse: {what}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ComposeError(f"{source}: a Compose file is a mapping, not {type(doc).__name__}")
    return doc


_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|"
                  r"([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: Any, environ: Mapping[str, str], path: str = "") -> Any:
    """`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `$VAR` and `$$` in every
    string of `value` (Compose interpolation)."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ, f"{path}.{k}" if path else str(k))
                for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        have = environ.get(name)
        unset = have is None or (op is not None and op.startswith(":") and have == "")
        if op and op.endswith("?") and unset:
            raise ComposeError(f"key {path!r}: variable {name} is required: {arg or 'unset'}")
        if op and op.endswith("-") and unset:
            return arg
        return have or ""
    return _VAR.sub(one, value)


def merge(base: Any, over: Any) -> Any:
    """A later file over an earlier one: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    return over


def check(doc: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Validate against the Compose schema. Keys the schema does not know are returned (as
    dotted paths, for one warning); any other violation is a ComposeError."""
    import jsonschema
    unknown: list[str] = []
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc),
                    key=lambda e: [str(p) for p in e.absolute_path])
    for e in errors:
        path = list(e.absolute_path)
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            known = e.schema.get("properties", {})
            pats = list(e.schema.get("patternProperties", {}))
            for key in e.instance:
                if key not in known and not any(re.search(p, key) for p in pats):
                    unknown.append(_dotted(path + [key]))
            continue
        service, key = _service_key(path)
        raise _fail(service, key, _schema_message(e))
    return sorted(set(unknown))


def _schema_message(e: Any) -> str:
    if e.validator in ("oneOf", "anyOf"):
        return f"{json.dumps(e.instance)[:60]} is not a valid value here"
    return e.message.splitlines()[0][:200]


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _service_key(path: list[Any]) -> tuple[str | None, str]:
    if len(path) >= 2 and path[0] == "services":
        return str(path[1]), _dotted(path[2:]) or "(service)"
    return None, _dotted(path) or "(top level)"


# ------------------------------------------------------------------ value forms


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)")
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: Any, service: str, key: str) -> float:
    """Compose duration (`1m30s`, `500ms`, `10s`, or a number of seconds) -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip()
    parts = _DURATION.findall(s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise _fail(service, key, f"bad duration {text!r} (e.g. 10s, 1m30s, 500ms)")
    return sum(float(n) * _UNIT[u] for n, u in parts)


_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([bkmg]?)b?$", re.I)


def mebibytes(value: Any, service: str, key: str) -> float:
    """Docker byte size (`64M`, `1g`, `512m`, bytes as a number) -> MiB."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 2**20
    m = _SIZE.match(str(value).strip())
    if not m:
        raise _fail(service, key, f"bad memory size {value!r} (e.g. 64M, 1g)")
    scale = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}[m.group(2).lower()]
    return float(m.group(1)) * scale / 2**20


def number(value: Any, service: str, key: str, integer: bool = False) -> float:
    try:
        v = float(value)
        if integer and v != int(v):
            raise ValueError
    except (TypeError, ValueError):
        raise _fail(service, key, f"{value!r} is not {'an integer' if integer else 'a number'}") \
            from None
    if v < 0 or math.isinf(v) or math.isnan(v):
        raise _fail(service, key, f"{value!r} must be a finite number >= 0")
    return v


def str_dict(value: Any, service: str, key: str) -> dict[str, str]:
    """Compose `list_or_dict` (`[K=V, ...]` or a mapping) -> strings."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else _scalar(v) for k, v in value.items()}
    out = {}
    for item in value:
        k, eq, v = str(item).partition("=")
        if not k:
            raise _fail(service, key, f"bad entry {item!r} (expected KEY=VALUE)")
        out[k] = v
    return out


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def env_file_values(text: str, source: str) -> dict[str, str]:
    """An env file (`KEY=VALUE` lines, `#` comments, optional quotes) -> mapping."""
    out = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        k, eq, v = line.removeprefix("export ").partition("=")
        k = k.strip()
        if not eq or not k or " " in k:
            raise ComposeError(f"{source}:{n}: expected KEY=VALUE, got {raw!r}")
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        out[k] = v
    return out


_PORT = re.compile(r"^(?:(?:(?P<ip>\[[^\]]*\]|[0-9]+(?:\.[0-9]+){3}):)?"
                   r"(?P<pub>[0-9]+(?:-[0-9]+)?)?:)?"
                   r"(?P<target>[0-9]+(?:-[0-9]+)?)(?:/(?P<proto>tcp|udp))?$")


def _range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    a, b = int(lo), int(hi or lo)
    return list(range(a, b + 1)) if a <= b else []


def port_mappings(ports: list[Any], service: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Compose `ports` -> Marathon portMappings (bridge), and keys that were ignored."""
    out: list[dict[str, Any]] = []
    ignored: list[str] = []
    for i, p in enumerate(ports):
        key = f"ports[{i}]"
        if isinstance(p, dict):
            target, pub = p.get("target"), p.get("published")
            proto = str(p.get("protocol") or "tcp")
            if target is None:
                raise _fail(service, key, "a long-form port needs 'target'")
            try:
                targets = _range(str(target))
                pubs = _range(str(pub)) if pub not in (None, "") else [0] * len(targets)
            except ValueError:
                raise _fail(service, key, f"bad port spec {p!r}") from None
            ignored += [f"services.{service}.{key}.{k}" for k in ("host_ip", "mode", "app_protocol")
                        if k in p and not (k == "mode" and p[k] == "host")]
        else:
            m = _PORT.match(str(p).strip())
            if not m or isinstance(p, bool):
                raise _fail(service, key, f"bad port spec {p!r} "
                                          "(expected [[IP:]PUBLISHED:]TARGET[/PROTOCOL])")
            targets = _range(m["target"])
            pubs = _range(m["pub"]) if m["pub"] else [0] * len(targets)
            proto = m["proto"] or "tcp"
            if m["ip"]:
                ignored.append(f"services.{service}.{key} (host IP)")
        if proto not in ("tcp", "udp"):
            raise _fail(service, key, f"bad protocol {proto!r} (tcp or udp)")
        if not targets or len(pubs) != len(targets) or \
                not all(0 < t < 65536 for t in targets) or not all(0 <= h < 65536 for h in pubs):
            raise _fail(service, key, f"bad port spec {p!r} (ports 1-65535, equal ranges)")
        out += [{"containerPort": t, "hostPort": h, "protocol": proto}
                for t, h in zip(targets, pubs, strict=True)]
    return out, ignored


def _constraint(text: str, service: str, i: int) -> list[str]:
    key = f"deploy.placement.constraints[{i}]"
    m = re.match(r"^\s*([\w.\-]+)\s*(==|!=)\s*(\S.*?)\s*$", str(text))
    if not m:
        raise _fail(service, key, f"bad constraint {text!r} (expected FIELD==VALUE or !=)")
    field, op, value = m.groups()
    if field == "node.hostname":
        name = "hostname"
    elif field.startswith(("node.labels.", "engine.labels.")):
        name = field.split(".", 2)[2]
    else:
        raise _fail(service, key, f"unsupported constraint field {field!r} "
                                  "(node.hostname, node.labels.NAME)")
    return [name, "IS" if op == "==" else "UNLIKE", value]


def _command(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def health_check(hc: dict[str, Any], service: str) -> list[dict[str, Any]]:
    """Compose healthcheck -> one COMMAND health check (none when disabled)."""
    test = hc.get("test")
    if hc.get("disable") in (True, "true") or test in (["NONE"], "NONE"):
        return []
    if test is None or test == []:
        raise _fail(service, "healthcheck.test", "a healthcheck needs 'test'")
    if isinstance(test, str):
        cmd = test
    elif test[0] == "CMD-SHELL":
        cmd = " ".join(test[1:])
    elif test[0] == "CMD":
        cmd = shlex.join(test[1:])
    else:
        raise _fail(service, "healthcheck.test", "a list test starts with CMD, CMD-SHELL or NONE")
    if not cmd.strip():
        raise _fail(service, "healthcheck.test", "the test command is empty")
    secs = {k: duration(hc[k], service, f"healthcheck.{k}")
            for k in ("interval", "timeout", "start_period") if k in hc}
    return [{"protocol": "COMMAND", "command": {"value": cmd},
             "intervalSeconds": max(1, math.ceil(secs.get("interval", 30))),
             "timeoutSeconds": max(1, math.ceil(secs.get("timeout", 30))),
             "gracePeriodSeconds": math.ceil(secs.get("start_period", 0)),
             "maxConsecutiveFailures": int(number(hc.get("retries", 3), service,
                                                  "healthcheck.retries", True)),
             "delaySeconds": 0}]


def upgrade_strategy(update: dict[str, Any], replicas: int, service: str) -> dict[str, float]:
    """Swarm's update parallelism/order as Marathon capacities: stop-first keeps
    (replicas - parallelism) up, start-first starts `parallelism` extra first."""
    p = number(update.get("parallelism", 1), service, "deploy.update_config.parallelism", True)
    frac = 1.0 if p == 0 or replicas == 0 else min(1.0, p / replicas)
    frac = round(frac, 4)
    if update.get("order", "stop-first") == "start-first":
        return {"minimumHealthCapacity": 1.0, "maximumOverCapacity": frac}
    return {"minimumHealthCapacity": round(1.0 - frac, 4), "maximumOverCapacity": 0.0}


def _volumes(vols: list[Any], service: str, base_dir: str,
             ignored: list[str]) -> list[dict[str, str]]:
    out = []
    for i, v in enumerate(vols):
        key = f"volumes[{i}]"
        if isinstance(v, dict):
            if v.get("type") != "bind" or not v.get("source") or not v.get("target"):
                ignored.append(f"services.{service}.{key} (only bind volumes)")
                continue
            src, dst, ro = str(v["source"]), str(v["target"]), bool(v.get("read_only"))
        else:
            parts = str(v).split(":")
            if len(parts) == 1 or not parts[0].startswith(("/", ".", "~")):
                ignored.append(f"services.{service}.{key} (only bind volumes)")
                continue
            if len(parts) > 3 or not parts[1]:
                raise _fail(service, key, f"bad volume {v!r} (expected HOST:CONTAINER[:ro|rw])")
            src, dst = parts[0], parts[1]
            ro = len(parts) == 3 and "ro" in parts[2].split(",")
        if not dst.startswith("/"):
            raise _fail(service, key, f"container path {dst!r} must be absolute")
        if src.startswith("~"):
            raise _fail(service, key, "a host path starting with ~ is not supported")
        host = posixpath.normpath(posixpath.join(base_dir, src))
        out.append({"containerPath": dst, "hostPath": host, "mode": "RO" if ro else "RW"})
    return out


# ------------------------------------------------------------------ translation


def stack_id(name: str) -> str:
    if not SEGMENT.match(name):
        raise ComposeError(f"stack name {name!r}: use lowercase letters, digits and '-'")
    return f"/{name}"


def to_group(doc: dict[str, Any], name: str, *, env_files: Mapping[str, str] | None = None,
             base_dir: str = "/") -> Translation:
    """The Compose document `doc` (already `check`ed) as Marathon group `/NAME`.
    `env_files` holds the text of each `env_file` path as written; `base_dir` resolves
    relative bind mounts."""
    gid = stack_id(name)
    services = doc.get("services") or {}
    if not services:
        raise ComposeError("key 'services': the file defines no services")
    ignored = [k for k in doc if k not in TOP_KEYS and not str(k).startswith("x-")]
    apps = []
    for svc, spec in services.items():
        if not SEGMENT.match(str(svc)):
            raise _fail(str(svc), "(name)", "a service name must be lowercase letters, digits "
                                            "and '-' to be a Marathon app id")
        app, skipped = _service_app(str(svc), spec or {}, gid, services, env_files or {},
                                    base_dir)
        apps.append(app)
        ignored += skipped
    return Translation({"id": gid, "apps": apps}, sorted(set(ignored)))


def _service_app(svc: str, spec: dict[str, Any], gid: str, services: Mapping[str, Any],
                 env_files: Mapping[str, str], base_dir: str) -> tuple[dict, list[str]]:
    ignored = [f"services.{svc}.{k}" for k in spec
               if k not in SERVICE_KEYS and not str(k).startswith("x-")]
    image = spec.get("image")
    if not image or not isinstance(image, str):
        raise _fail(svc, "image", "missing (Corral runs images; 'build' is not supported)")
    deploy = spec.get("deploy") or {}
    ignored += [f"services.{svc}.deploy.{k}" for k in deploy if k not in DEPLOY_KEYS]
    if deploy.get("mode", "replicated") != "replicated":
        raise _fail(svc, "deploy.mode", f"{deploy['mode']!r} is not supported (replicated)")
    replicas = int(number(deploy.get("replicas", 1), svc, "deploy.replicas", True))
    limits = (deploy.get("resources") or {}).get("limits") or {}
    ignored += [f"services.{svc}.deploy.resources.{k}" for k in deploy.get("resources") or {}
                if k != "limits"]
    ignored += [f"services.{svc}.deploy.resources.limits.{k}" for k in limits
                if k not in ("cpus", "memory")]
    cpus = number(limits.get("cpus", spec.get("cpus", DEFAULT_CPUS)), svc,
                  "deploy.resources.limits.cpus")
    mem = (mebibytes(limits["memory"], svc, "deploy.resources.limits.memory")
           if "memory" in limits else mebibytes(spec["mem_limit"], svc, "mem_limit")
           if "mem_limit" in spec else DEFAULT_MEM)
    docker: dict[str, Any] = {"image": image}
    app: dict[str, Any] = {"id": f"{gid}/{svc}", "instances": replicas,
                           "cpus": cpus, "mem": round(mem, 3),
                           "container": {"type": "DOCKER", "docker": docker}}
    params = []
    if "entrypoint" in spec and spec["entrypoint"] is not None:
        params.append({"key": "entrypoint", "value": shlex.join(_command(spec["entrypoint"]))})
    for key, flag in (("user", "user"), ("working_dir", "workdir")):
        if spec.get(key):
            params.append({"key": flag, "value": str(spec[key])})
    if params:
        docker["parameters"] = params
    if spec.get("privileged"):
        docker["privileged"] = True
    if spec.get("command") is not None:
        app["args"] = _command(spec["command"])
    env: dict[str, str] = {}
    files = spec.get("env_file") or []
    for f in [files] if isinstance(files, (str, dict)) else files:
        path = f["path"] if isinstance(f, dict) else f
        if path not in env_files:
            if isinstance(f, dict) and f.get("required") is False:
                continue
            raise _fail(svc, "env_file", f"{path} was not read")
        env.update(env_file_values(env_files[path], path))
    env.update(str_dict(spec.get("environment"), svc, "environment"))
    if env:
        app["env"] = env
    host_net = spec.get("network_mode") == "host"
    if spec.get("network_mode") not in (None, "host", "bridge"):
        raise _fail(svc, "network_mode", f"{spec['network_mode']!r} (host or bridge)")
    app["networks"] = [{"mode": "host" if host_net else "container/bridge"}]
    if host_net:
        app["portDefinitions"] = []
        if spec.get("ports"):
            ignored.append(f"services.{svc}.ports (network_mode host)")
    else:
        mappings, skipped = port_mappings(spec.get("ports") or [], svc)
        ignored += skipped
        app["container"]["portMappings"] = mappings
    vols = _volumes(spec.get("volumes") or [], svc, base_dir, ignored)
    if vols:
        app["container"]["volumes"] = vols
    labels = str_dict(spec.get("labels"), svc, "labels")
    labels.update(str_dict(deploy.get("labels"), svc, "deploy.labels"))
    constraints = [_constraint(c, svc, i) for i, c in
                   enumerate((deploy.get("placement") or {}).get("constraints") or [])]
    ignored += [f"services.{svc}.deploy.placement.{k}" for k in deploy.get("placement") or {}
                if k != "constraints"]
    if constraints:
        app["constraints"] = constraints
    deps = spec.get("depends_on") or []
    for d in deps:
        if d not in services:
            raise _fail(svc, "depends_on", f"{d!r} is not a service of this file")
    if deps:
        app["dependencies"] = [f"{gid}/{d}" for d in deps]
    if spec.get("healthcheck"):
        app["healthChecks"] = health_check(spec["healthcheck"], svc)
    update = deploy.get("update_config") or {}
    ignored += [f"services.{svc}.deploy.update_config.{k}" for k in update
                if k not in ("parallelism", "order")]
    app["upgradeStrategy"] = upgrade_strategy(update, replicas, svc)  # Swarm's defaults too
    if "stop_grace_period" in spec:
        app["taskKillGracePeriodSeconds"] = duration(spec["stop_grace_period"], svc,
                                                     "stop_grace_period")
    labels[STACK_LABEL] = gid.lstrip("/")
    app["labels"] = labels
    labels[HASH_LABEL] = definition_hash(app)
    return app, ignored


def definition_hash(app: dict[str, Any]) -> str:
    """A digest of a translated app (without its own hash label): equal file, equal hash."""
    labels = {k: v for k, v in app.get("labels", {}).items() if k != HASH_LABEL}
    text = json.dumps(dict(app, labels=labels), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan(group: dict[str, Any], deployed: dict[str, Any] | None) -> StackPlan:
    """Compare a translated group with the one deployed (GET /v2/groups/ID, or None):
    an app whose hash label matches is sent back exactly as deployed, so Marathon leaves
    it alone; only the others change."""
    current = {a["id"]: a for a in (deployed or {}).get("apps", [])}
    apps, changed, unchanged = [], [], []
    for app in group["apps"]:
        cur = current.get(app["id"])
        if cur is not None and cur.get("labels", {}).get(HASH_LABEL) == \
                app["labels"][HASH_LABEL]:
            apps.append({k: v for k, v in cur.items() if k not in APP_STATUS_KEYS})
            unchanged.append(app["id"])
        else:
            apps.append(app)
            changed.append(app["id"])
    removed = sorted(set(current) - {a["id"] for a in group["apps"]})
    return StackPlan(dict(group, apps=apps), changed, unchanged, removed)
