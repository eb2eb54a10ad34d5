"""The app definition's JSON Schema: the one place that says what a valid app looks like.

Everything jsonschema can express lives here (types, ranges, enums, id and name patterns,
cmd/args exclusivity, constraint shapes); `model.py` adds only the rules a schema cannot
state (regexes that must compile, unique ports, indices into the port list) and reports
them in the same `{"path", "errors"}` form.
"""
from __future__ import annotations

from typing import Any

# One path segment (Marathon 1.10 PathId.ID_PATH_SEGMENT_PATTERN) and a whole id.
SEGMENT = r"(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])"
ID_PATTERN = rf"^/?(({SEGMENT}|\.|\.\.)/+)*({SEGMENT}|\.|\.\.)/*$"
PORT_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OPERATORS = ["UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"]
PROTOCOLS = ["tcp", "udp", "udp,tcp"]

_NUM0 = {"type": "number", "minimum": 0}
_INT0 = {"type": "integer", "minimum": 0}
_PORT = {"type": "integer", "minimum": 0, "maximum": 65535}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_LABELS = _STR_MAP

_PORT_DEFINITION = {
    "type": "object", "additionalProperties": False,
    "properties": {"port": _PORT, "protocol": {"enum": PROTOCOLS},
                   "name": {"type": "string", "pattern": PORT_NAME}, "labels": _LABELS},
}
_PORT_MAPPING = {
    "type": "object", "additionalProperties": False,
    "properties": {"containerPort": _PORT, "hostPort": _PORT, "servicePort": _PORT,
                   "protocol": {"enum": PROTOCOLS},
                   "name": {"type": "string", "pattern": PORT_NAME}, "labels": _LABELS,
                   "networkNames": {"type": "array", "items": {"type": "string"}}},
}
_VOLUME = {
    "type": "object", "required": ["containerPath"],
    "properties": {"containerPath": {"type": "string", "minLength": 1},
                   "hostPath": {"type": "string"}, "mode": {"enum": ["RO", "RW"]},
                   "persistent": {"type": "object"}, "external": {"type": "object"}},
    "additionalProperties": False,
}
_DOCKER = {
    "type": "object", "required": ["image"], "additionalProperties": False,
    "properties": {
        "image": {"type": "string", "minLength": 1},
        "network": {"enum": ["BRIDGE", "HOST", "USER", "NONE", None]},
        "portMappings": {"type": "array", "items": _PORT_MAPPING},
        "privileged": {"type": "boolean"},
        "parameters": {"type": "array", "items": {
            "type": "object", "required": ["key", "value"], "additionalProperties": False,
            "properties": {"key": {"type": "string", "minLength": 1},
                           "value": {"type": "string"}}}},
        "forcePullImage": {"type": "boolean"},
        "credential": {"type": "object"}, "pullConfig": {"type": "object"},
    },
}
_CONTAINER = {
    "type": "object", "additionalProperties": False,
    "properties": {"type": {"enum": ["DOCKER", "MESOS"]}, "docker": _DOCKER,
                   "portMappings": {"type": "array", "items": _PORT_MAPPING},
                   "volumes": {"type": "array", "items": _VOLUME}},
}
_HEALTH_CHECK = {
    "type": "object",
    "properties": {
        "protocol": {"enum": ["HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS",
                              "MESOS_TCP"]},
        "path": {"type": "string"}, "portIndex": _INT0, "port": _PORT,
        "command": {"type": "object", "required": ["value"],
                    "properties": {"value": {"type": "string", "minLength": 1}}},
        "gracePeriodSeconds": _INT0, "intervalSeconds": {"type": "integer", "minimum": 1},
        "timeoutSeconds": {"type": "integer", "minimum": 1},
        "maxConsecutiveFailures": _INT0, "delaySeconds": _INT0,
        "ignoreHttp1xx": {"type": "boolean"}, "ipProtocol": {"enum": ["IPv4", "IPv6"]},
    },
    "additionalProperties": False,
    "allOf": [{"if": {"properties": {"protocol": {"const": "COMMAND"}}, "required": ["protocol"]},
               "then": {"required": ["command"]}}],
}
_CONSTRAINT = {
    "type": "array", "minItems": 2, "maxItems": 3,
    "prefixItems": [{"type": "string", "minLength": 1},
              {"type": "string", "enum": OPERATORS + [o.lower() for o in OPERATORS]},
              {"type": "string"}],
}
_FETCH = {
    "type": "object", "required": ["uri"], "additionalProperties": False,
    "properties": {"uri": {"type": "string", "minLength": 1}, "extract": {"type": "boolean"},
                   "executable": {"type": "boolean"}, "cache": {"type": "boolean"},
                   "destPath": {"type": "string"}, "outputFile": {"type": "string"}},
}
_READINESS_CHECK = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "protocol": {"enum": ["HTTP", "HTTPS"]},
        "path": {"type": "string"},
        "portName": {"type": "string", "minLength": 1},
        "intervalSeconds": {"type": "number", "exclusiveMinimum": 0},
        "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
        "httpStatusCodesForReady": {"type": "array", "minItems": 1,
                                    "items": {"type": "integer", "minimum": 100,
                                              "maximum": 999}},
        "preserveLastResponse": {"type": "boolean"}}}
_UNREACHABLE = {"oneOf": [
    {"const": "disabled"},
    {"type": "object", "additionalProperties": False,
     "properties": {"inactiveAfterSeconds": _NUM0, "expungeAfterSeconds": _NUM0,
                    "unreachableInactiveAfterSeconds": _NUM0,
                    "unreachableExpungeAfterSeconds": _NUM0}},
]}

APP_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "minLength": 1, "pattern": ID_PATTERN},
        "cmd": {"type": "string", "minLength": 1},
        "args": {"type": "array", "items": {"type": "string"}},
        "user": {"type": "string"},
        "cpus": _NUM0, "mem": _NUM0, "disk": _NUM0, "gpus": _INT0,
        "instances": _INT0,
        "executor": {"type": "string", "pattern": r"^(//cmd)|(/?[^/]+(/[^/]+)*)|$"},
        "container": _CONTAINER,
        "env": {"type": "object", "additionalProperties": {"oneOf": [
            {"type": "string"},
            {"type": "object", "required": ["secret"], "additionalProperties": False,
             "properties": {"secret": {"type": "string"}}}]}},
        "labels": _LABELS,
        "constraints": {"type": "array", "items": _CONSTRAINT},
        "acceptedResourceRoles": {"type": "array", "minItems": 1, "uniqueItems": True,
                                  "items": {"type": "string", "minLength": 1}},
        "role": {"type": "string", "minLength": 1},
        "portDefinitions": {"type": "array", "items": _PORT_DEFINITION},
        "ports": {"type": "array", "items": _PORT},
        "requirePorts": {"type": "boolean"},
        "networks": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"mode": {"enum": ["host", "container/bridge", "container"]},
                           "name": {"type": "string"}, "labels": _LABELS}}},
        "healthChecks": {"type": "array", "items": _HEALTH_CHECK},
        "readinessChecks": {"type": "array", "maxItems": 1, "items": _READINESS_CHECK},
        "dependencies": {"type": "array", "items": {"type": "string", "pattern": ID_PATTERN}},
        "upgradeStrategy": {
            "type": "object", "additionalProperties": False,
            "properties": {"minimumHealthCapacity": {"type": "number", "minimum": 0, "maximum": 1},
                           "maximumOverCapacity": {"type": "number", "minimum": 0, "maximum": 1}}},
        "backoffSeconds": _NUM0,
        "backoffFactor": {"type": "number", "minimum": 1.0},
        "maxLaunchDelaySeconds": _NUM0,
        "killSelection": {"enum": ["YOUNGEST_FIRST", "OLDEST_FIRST"]},
        "unreachableStrategy": _UNREACHABLE,
        "taskKillGracePeriodSeconds": _NUM0,
        "fetch": {"type": "array", "items": _FETCH},
        "uris": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "storeUrls": {"type": "array", "items": {"type": "string"}},
        "secrets": {"type": "object", "maxProperties": 0},
        "residency": {"type": "object"},
        "ipAddress": {"type": ["object", "null"]},
        "taskRateLimit": {"type": ["number", "null"]},
        "version": {"type": "string"},
    },
    "not": {"required": ["cmd", "args"]},
    "allOf": [
        {"not": {"required": ["uris", "fetch"]}},
        {"not": {"required": ["ports", "portDefinitions"]}},
    ],
}

# Read-only keys a client re-sends from a GET (marathon-python's update_app): ignored.
READ_ONLY = frozenset({
    "tasks", "deployments", "tasksRunning", "tasksStaged", "tasksHealthy", "tasksUnhealthy",
    "versionInfo", "lastTaskFailure", "taskStats", "tasksStats", "readinessCheckResults",
})

# Friendlier texts for the schema-level rules that have no field of their own.
ROOT_MESSAGES = {
    "not": "AppDefinition must contain exactly one of 'cmd' or 'args'.",
}
