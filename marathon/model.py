"""App definitions: validation (schema.py + a few code rules), normalisation, ids, timestamps.

An app is kept as its canonical JSON document (the shape Marathon 1.10 returns, trimmed to
the keys marathon-python 0.13.0 can parse) plus its version: the document is what the API
echoes, what the store keeps and what every other module reads through `App`'s properties.
"""
from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
from attrs import frozen

from marathon.schema import APP_SCHEMA, READ_ONLY, ROOT_MESSAGES, SEGMENT

_VALIDATOR = jsonschema.Draft202012Validator(APP_SCHEMA)
_SEGMENT_RE = re.compile(rf"^({SEGMENT}|\.|\.\.)$")
RESERVED_LAST = ("restart", "tasks", "versions", ".", "..")
_EXTRACT = (".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".gz", ".tgz", ".tbz2", ".txz", ".zip")


class ValidationFailed(Exception):
    """A definition that breaks a rule: 422 with Marathon's `details` list."""

    def __init__(self, details: list[dict[str, Any]], message: str = "Object is not valid"):
        super().__init__(message)
        self.message = message
        self.details = details


class IdError(ValueError):
    """An id (from a path or a body) that is not a valid Marathon path."""


# ------------------------------------------------------------------ ids and time


def normalize_id(raw: str, base: str = "/") -> str:
    """Absolute, canonical form of `raw` relative to `base` ('//' collapsed, '.'/'..' resolved)."""
    parts = [] if raw.startswith("/") else [p for p in base.split("/") if p]
    for seg in raw.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    return "/" + "/".join(parts)


def id_errors(raw: Any, base: str = "/") -> list[str]:
    """Why `raw` is not a usable app id (empty list when it is)."""
    if not isinstance(raw, str):
        return ["error.expected.jsstring"]
    segs = [s for s in raw.split("/") if s]
    if not segs:
        return ["Path must contain at least one path element"]
    bad = [s for s in segs if not _SEGMENT_RE.match(s)]
    if bad:
        return [f"must fully match regular expression '{SEGMENT}|(\\.|\\.\\.)'"]
    if segs[-1] in RESERVED_LAST:
        return ["must not end with any of the following reserved keywords: "
                + ", ".join(RESERVED_LAST)]
    if normalize_id(raw, base) == "/":
        return ["must not be root"]
    return []


def safe_id(app_id: str) -> str:
    """Marathon's 'safe path' used in task ids: `/prod/web` -> `prod_web`."""
    return "_".join(p for p in app_id.split("/") if p)


def new_task_id(app_id: str, rng_uuid: uuid.UUID) -> str:
    """Marathon 1.10 app task id: `<safe>.instance-<uuid>._app.1`."""
    return f"{safe_id(app_id)}.instance-{rng_uuid}._app.1"


_TASK_ID = re.compile(r"^(.+)\.(instance-|marathon-)([^_.]+)[._]([^.]+)(\.\d+)?$")
_LEGACY_ID = re.compile(r"^(.+)[._]([^_.]+)(\.\d+)?$")


def app_of_task(task_id: str) -> str | None:
    """The app id encoded in a task id, or None when it is not a Marathon task id."""
    m = _TASK_ID.match(task_id) or _LEGACY_ID.match(task_id)
    if not m:
        return None
    uid = m.group(3) if m.re is _TASK_ID else m.group(2)
    try:
        uuid.UUID(uid)
    except ValueError:
        return None
    return "/" + m.group(1).replace("_", "/")


def timestamp(t: float) -> str:
    """`2020-08-21T10:00:00.123Z`: the only form marathon-python parses."""
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> float:
    d = dt.datetime.strptime(text.replace("Z", "+0000"),
                             "%Y-%m-%dT%H:%M:%S.%f%z" if "." in text else "%Y-%m-%dT%H:%M:%S%z")
    return d.timestamp()


# ------------------------------------------------------------------ validation


def _render_path(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        out += f"({p})" if isinstance(p, int) else f"/{p}"
    return out or "/"


def _schema_message(err: jsonschema.ValidationError) -> str:
    message: str = err.message
    if not err.absolute_path and err.validator in ROOT_MESSAGES:
        return ROOT_MESSAGES[err.validator]
    if err.validator == "additionalProperties":
        return message.replace("Additional properties are not allowed",
                               "Unknown properties").replace(" were unexpected", "")
    if err.validator == "pattern":
        return f"must fully match regular expression '{err.validator_value}'"
    if err.validator == "type":
        expected = err.validator_value if isinstance(err.validator_value, str) else "value"
        return f"error.expected.js{expected}: {message}"
    return message


def _group(pairs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    grouped: dict[str, list[str]] = {}
    for path, msg in pairs:
        grouped.setdefault(path, [])
        if msg not in grouped[path]:
            grouped[path].append(msg)
    return [{"path": p, "errors": e} for p, e in grouped.items()]


def _constraint_errors(constraints: list[list[str]]) -> Iterable[tuple[str, str]]:
    for i, c in enumerate(constraints):
        op, value = c[1].upper(), (c[2] if len(c) == 3 else None)
        path = f"/constraints({i})"
        if op == "UNIQUE" and value not in (None, ""):
            yield path, "UNIQUE does not accept a value"
        elif op == "GROUP_BY" and value not in (None, "") and not value.isdigit():
            yield path, "GROUP BY must define an integer value or else no value at all"
        elif op == "MAX_PER" and (value is None or not value.isdigit()):
            yield path, "MAX_PER requires an integer value"
        elif op in ("LIKE", "UNLIKE"):
            if not value:
                yield path, "LIKE and UNLIKE require a non-empty, regular expression value"
            else:
                try:
                    re.compile(value)
                except re.error:
                    yield path, f"'{value}' is not a valid regular expression"
        elif op == "IS" and (value is None or not re.fullmatch(r"[a-zA-Z0-9_/.-]*", value)):
            yield path, "IS requires a text value matching [a-zA-Z0-9_/.-]*"


def _unique(items: list[Any], key: str, path: str, what: str) -> Iterable[tuple[str, str]]:
    seen = [i[key] for i in items if isinstance(i, dict) and i.get(key) not in (None, 0, "")]
    if len(seen) != len(set(seen)):
        yield path, f"{what} must be unique."


def _code_errors(doc: dict[str, Any], base: str) -> Iterable[tuple[str, str]]:
    """The rules a schema cannot express; `doc` already passed the schema."""
    for msg in id_errors(doc.get("id"), base):
        yield "/id", msg
    container = doc.get("container")
    if "cmd" not in doc and "args" not in doc and not (container and container.get("docker")):
        yield "/", ("AppDefinition must either contain one of 'cmd' or 'args', "
                    "and/or a 'container'.")
    yield from _constraint_errors(doc.get("constraints", []))
    pdefs = doc.get("portDefinitions", [])
    yield from _unique(pdefs, "port", "/portDefinitions", "Ports")
    yield from _unique(pdefs, "name", "/portDefinitions", "Port names")
    if len(set(doc.get("ports", []) or [0])) != len([p for p in doc.get("ports", [0]) if p] or [0]):
        yield "/ports", "Ports must be unique."
    if container:
        docker = container.get("docker") or {}
        if container.get("portMappings") and docker.get("portMappings"):
            yield ("/container",
                   "cannot specify both container.portMappings and docker.portMappings")
        if container.get("type") == "MESOS" and (docker.get("network")
                                                 or docker.get("portMappings")):
            yield ("/container/docker",
                   "network/portMappings are only allowed with DOCKER containers")
        for i, v in enumerate(container.get("volumes", [])):
            kinds = [k for k in ("persistent", "external") if k in v]
            if kinds:
                yield f"/container/volumes({i})", (
                    f"{' and '.join(kinds)} volumes are not supported here; use a hostPath "
                    "(a host directory, or a Docker named volume)")
            elif not v.get("hostPath"):
                yield f"/container/volumes({i})", "hostPath is required"
    for i, d in enumerate(doc.get("dependencies", [])):
        if id_errors(d, base):
            yield f"/dependencies({i})", "must be a valid path"
    us = doc.get("upgradeStrategy", {})
    if doc.get("labels", {}).get("MARATHON_SINGLE_INSTANCE_APP") == "true":
        if doc.get("instances", 1) > 1:
            yield "/instances", "got more than one instance for a single-instance app"
        if us.get("minimumHealthCapacity", 1) != 0 or us.get("maximumOverCapacity", 1) != 0:
            yield "/upgradeStrategy", ("single instance app may only have "
                                       "minimumHealthCapacity 0 and maximumOverCapacity 0")


def _health_errors(app: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """Port indices of health checks point into the (normalised) port list."""
    nports = len(port_list(app))
    mesos = 0
    for i, hc in enumerate(app.get("healthChecks", [])):
        proto = hc.get("protocol", "HTTP")
        if proto.startswith("MESOS_"):
            mesos += 1
        if proto != "COMMAND" and "port" not in hc and hc.get("portIndex", 0) >= max(nports, 1):
            yield f"/healthChecks({i})", ("Health check port indices must address an element of "
                                          "the ports array or container port mappings.")
        if proto != "COMMAND" and "port" not in hc and nports == 0:
            yield f"/healthChecks({i})", ("Health check port indices must address an element of "
                                          "the ports array or container port mappings.")
    if mesos > 1:
        yield "/healthChecks", "AppDefinition can contain at most one Mesos health check."
    names = {p.get("name") for p in port_list(app)}
    for i, rc in enumerate(app.get("readinessChecks", [])):
        if rc["portName"] not in names:
            yield f"/readinessChecks({i})", (f"readinessCheck portName {rc['portName']!r} "
                                             "must name a port of the app")
        if rc["timeoutSeconds"] >= rc["intervalSeconds"]:
            yield f"/readinessChecks({i})", "timeoutSeconds must be less than intervalSeconds"


def validate(raw: Any, base: str = "/", require_id: bool = True) -> dict[str, Any]:
    """Check `raw` (a decoded JSON body) and return the canonical app document.

    Raises ValidationFailed with Marathon's details list; never anything else for bad input.
    """
    if not isinstance(raw, dict):
        raise ValidationFailed([{"path": "/", "errors": ["error.expected.jsobject"]}],
                               "Invalid JSON")
    # null means absent for optional fields (Marathon's Option[] reads; old GETs echo nulls)
    doc = {k: v for k, v in raw.items() if k not in READ_ONLY and v is not None}
    if require_id and "id" not in doc:
        raise ValidationFailed([{"path": "/id", "errors": ["error.path.missing"]}])
    errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ValidationFailed(_group((_render_path(e.absolute_path), _schema_message(e))
                                      for e in errors))
    problems = list(_code_errors(doc, base))
    if problems:
        raise ValidationFailed(_group(problems))
    app = canonical(doc, base)
    problems = list(_health_errors(app))
    if problems:
        raise ValidationFailed(_group(problems))
    return app


# ------------------------------------------------------------------ normalisation

DEFAULTS: dict[str, Any] = {
    "cpus": 1, "mem": 128, "disk": 0, "gpus": 0, "instances": 1, "executor": "",
    "backoffSeconds": 1, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300,
    "constraints": [], "dependencies": [], "env": {}, "labels": {}, "fetch": [],
    "healthChecks": [], "readinessChecks": [], "secrets": {}, "requirePorts": False,
    "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
    "killSelection": "YOUNGEST_FIRST", "role": "*",
}
_HC_DEFAULTS = {"gracePeriodSeconds": 300, "intervalSeconds": 60, "timeoutSeconds": 20,
                "maxConsecutiveFailures": 3, "delaySeconds": 15, "ignoreHttp1xx": False}
_RC_DEFAULTS = {"name": "readinessCheck", "protocol": "HTTP", "path": "/",
                "portName": "http-api", "intervalSeconds": 30, "timeoutSeconds": 10,
                "httpStatusCodesForReady": [200], "preserveLastResponse": False}
_DROP = ("ports", "uris", "ipAddress", "residency", "storeUrls", "taskRateLimit", "version")


def _networks(doc: dict[str, Any], docker: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get("networks"):
        return [dict(n, mode=n.get("mode", "container")) for n in doc["networks"]]
    net = docker.pop("network", None)
    return [{"mode": {"BRIDGE": "container/bridge", "USER": "container", "NONE": "container"}
             .get(net, "host")}]


def _container(doc: dict[str, Any], app: dict[str, Any]) -> None:
    c = copy.deepcopy(doc.get("container"))
    docker = c.get("docker", {}) if c else {}
    app["networks"] = _networks(doc, docker)
    host = app["networks"][0]["mode"] == "host"
    if not c:
        return
    c.setdefault("type", "DOCKER")
    mappings = c.pop("portMappings", None) or docker.pop("portMappings", None) or []
    docker.pop("portMappings", None)
    if docker:
        docker.setdefault("privileged", False)
        docker.setdefault("forcePullImage", False)
        docker.setdefault("parameters", [])
    if not host:
        mappings = mappings or [{"containerPort": 0, "name": "default"}]
        for mp in mappings:
            mp.setdefault("containerPort", 0)
            if app["networks"][0]["mode"] == "container/bridge":
                mp.setdefault("hostPort", 0)
            mp.setdefault("servicePort", 0)
            mp.setdefault("protocol", "tcp")
            mp.pop("networkNames", None)
        c["portMappings"] = mappings
        app["requirePorts"] = False
    c.setdefault("volumes", [])
    for v in c["volumes"]:
        v.setdefault("mode", "RW")
    app["container"] = c


def _ports(doc: dict[str, Any], app: dict[str, Any]) -> None:
    if app["networks"][0]["mode"] != "host":
        app.pop("portDefinitions", None)
        return
    if "portDefinitions" in doc:
        defs = copy.deepcopy(doc["portDefinitions"])
    elif "ports" in doc:
        defs = [{"port": p} for p in doc["ports"]]
    else:
        defs = [{"port": 0, "name": "default"}]
    for d in defs:
        d.setdefault("port", 0)
        d.setdefault("protocol", "tcp")
    app["portDefinitions"] = defs


def canonical(doc: dict[str, Any], base: str = "/") -> dict[str, Any]:
    """Marathon 1.10 normalisation of an already-valid definition (no version yet)."""
    app = copy.deepcopy(DEFAULTS)
    app.update({k: copy.deepcopy(v) for k, v in doc.items() if k not in _DROP})
    if "id" in doc:
        app["id"] = normalize_id(doc["id"], base)
    app["dependencies"] = [normalize_id(d, app.get("id", base)) for d in app["dependencies"]]
    if "uris" in doc:
        app["fetch"] = [{"uri": u, "extract": u.endswith(_EXTRACT), "executable": False,
                         "cache": False} for u in doc["uris"]]
    app["constraints"] = [[c[0], c[1].upper()] + c[2:] for c in app["constraints"]]
    for k in ("instances", "gpus"):  # 5.0 is a valid integer in JSON; answer 5
        app[k] = int(app[k])
    us = app["upgradeStrategy"]
    us.setdefault("minimumHealthCapacity", 1)
    us.setdefault("maximumOverCapacity", 1)
    ur = app["unreachableStrategy"]
    if isinstance(ur, dict):
        app["unreachableStrategy"] = {
            "inactiveAfterSeconds": ur.get("inactiveAfterSeconds",
                                           ur.get("unreachableInactiveAfterSeconds", 0)),
            "expungeAfterSeconds": ur.get("expungeAfterSeconds",
                                          ur.get("unreachableExpungeAfterSeconds", 0))}
    app.pop("container", None)
    _container(doc, app)
    _ports(doc, app)
    for hc in app["healthChecks"]:
        for k, v in _HC_DEFAULTS.items():
            hc.setdefault(k, v)
        hc.setdefault("protocol", "HTTP")
        if hc["protocol"] in ("HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS"):
            hc.setdefault("path", "/")
        if hc["protocol"] != "COMMAND" and "port" not in hc:
            hc.setdefault("portIndex", 0)
    for rc in app["readinessChecks"]:
        for k, default in _RC_DEFAULTS.items():
            rc.setdefault(k, copy.deepcopy(default))
    return app


MARATHON_PROBED = ("HTTP", "HTTPS", "TCP")


def marathon_checks(app: dict[str, Any]) -> list[dict[str, Any]]:
    """Health checks Marathon probes itself (the others are the executor's)."""
    return [h for h in app.get("healthChecks", []) if h.get("protocol", "HTTP") in MARATHON_PROBED]


def executor_checks(app: dict[str, Any]) -> bool:
    return any(h.get("protocol", "HTTP") not in MARATHON_PROBED
               for h in app.get("healthChecks", []))


def port_list(app: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The app's ports in index order: portDefinitions (host) or portMappings (container)."""
    ports: list[dict[str, Any]] = (app["portDefinitions"] if "portDefinitions" in app
                                   else (app.get("container") or {}).get("portMappings", []))
    return ports


def merge_update(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A partial update: the patch's top-level keys replace the current ones.

    Keys derived by normalisation are dropped when the patch changes what they come from
    (e.g. a new `container` recomputes `networks`), so the merged document re-validates.
    """
    merged = {k: copy.deepcopy(v) for k, v in current.items()}
    patch = {k: v for k, v in patch.items() if k not in READ_ONLY and k != "version"}
    if "container" in patch or "networks" in patch:
        merged.pop("networks", None)
        merged.pop("portDefinitions", None)
    if "ports" in patch or "portDefinitions" in patch:
        merged.pop("portDefinitions", None)
        merged.pop("ports", None)
    if "uris" in patch:
        merged.pop("fetch", None)
    if "cmd" in patch:
        merged.pop("args", None)
    if "args" in patch:
        merged.pop("cmd", None)
    merged.update(patch)
    return {k: v for k, v in merged.items() if v is not None}


def needs_restart(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """A config change (anything other than instances) replaces running tasks."""
    strip = ("instances", "version", "versionInfo")
    return {k: v for k, v in old.items() if k not in strip} != \
        {k: v for k, v in new.items() if k not in strip}


@frozen
class App:
    """One stored app version: the canonical document with `version`/`versionInfo` set."""

    doc: dict[str, Any]

    @property
    def id(self) -> str:
        app_id: str = self.doc["id"]
        return app_id

    @property
    def version(self) -> str:
        version: str = self.doc["version"]
        return version

    @property
    def instances(self) -> int:
        return int(self.doc["instances"])
