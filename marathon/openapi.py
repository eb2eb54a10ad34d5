"""The OpenAPI 3.1 document of the Marathon v2 API this package serves (`GET
/v2/openapi.json`). The app definition is marathon/schema.py's own JSON Schema (3.1 takes
JSON Schema 2020-12 as is), so what the document admits is what the API validates; the
paths are the API's routes (marathon/http/). Answers are described by status and type only.
"""
from __future__ import annotations

import copy
import functools
from typing import Any

from marathon.schema import APP_SCHEMA

JSON = "application/json"
_ANY_OBJECT = {"type": "object"}
_ERROR = {"description": "a Marathon error: `message` and, for bad input, `details`",
          "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema or _ANY_OBJECT}}}


def _op(summary: str, ok: dict[str, dict[str, Any]], *, params: tuple[str, ...] = (),
        query: tuple[tuple[str, dict[str, Any]], ...] = (), body: str | None = None,
        errors: tuple[str, ...] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {
        **ok, **{code: _ERROR for code in errors},
        "401": {"description": "--http_credentials is set and the request has none that match"},
        "503": {"description": "no leader, or it is changing: retry"}}}
    parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string",
                                                                         "minLength": 1}}
                  for p in params]
    parameters += [{"name": q, "in": "query", "required": False, "schema": s} for q, s in query]
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": {
            "$ref": f"#/components/schemas/{body}"}}}}
    return op


_FORCE = ("force", {"type": "boolean"})
_EMBED = ("embed", {"type": "string"})
_DEPLOY = {"200": _answer("the deployment started"), "201": _answer("created; its deployment")}


def _paths() -> dict[str, Any]:
    app, group = ("app_id",), ("group_id",)
    changes = ("400", "409", "422")
    return {
        "/ping": {"get": {"summary": "liveness", "responses": {
            "200": {"description": "pong", "content": {"text/plain": {"schema": {
                "type": "string"}}}}}}},
        "/v2/info": {"get": _op("this Marathon and its configuration", {"200": _answer("info")})},
        "/v2/leader": {"get": _op("the leader", {"200": _answer("the leader")}, errors=("404",))},
        "/v2/apps": {
            "get": _op("all apps", {"200": _answer("the apps")},
                       query=(("cmd", {"type": "string"}), ("id", {"type": "string"}),
                              ("label", {"type": "string"}), _EMBED)),
            "post": _op("create an app", _DEPLOY, body="App", errors=changes, query=(_FORCE,))},
        "/v2/apps/{app_id}": {
            "get": _op("one app", {"200": _answer("the app")}, params=app, query=(_EMBED,),
                       errors=("404",)),
            "put": _op("replace or create an app", _DEPLOY, params=app, body="App",
                       query=(_FORCE,), errors=changes),
            "delete": _op("destroy an app", _DEPLOY, params=app, query=(_FORCE,),
                          errors=("404", "409"))},
        "/v2/apps/{app_id}/restart": {
            "post": _op("restart an app's tasks", _DEPLOY, params=app, query=(_FORCE,),
                        errors=("404", "409"))},
        "/v2/apps/{app_id}/versions": {
            "get": _op("an app's versions", {"200": _answer("versions")}, params=app,
                       errors=("404",))},
        "/v2/apps/{app_id}/tasks": {
            "get": _op("an app's tasks", {"200": _answer("tasks")}, params=app,
                       errors=("404",)),
            "delete": _op("kill an app's tasks", {"200": _answer("killed")}, params=app,
                          query=(("scale", {"type": "boolean"}), ("host", {"type": "string"}),
                                 ("wipe", {"type": "boolean"}), _FORCE),
                          errors=("404", "409"))},
        "/v2/groups": {
            "get": _op("the root group", {"200": _answer("the group tree")}, query=(_EMBED,)),
            "post": _op("create groups and apps", _DEPLOY, body="Group", query=(_FORCE,),
                        errors=changes)},
        "/v2/groups/{group_id}": {
            "get": _op("a group", {"200": _answer("the group")}, params=group,
                       query=(_EMBED,), errors=("404", "422")),
            "delete": _op("destroy a group", _DEPLOY, params=group, query=(_FORCE,),
                          errors=("404", "409", "422"))},
        "/v2/tasks": {"get": _op("all tasks", {"200": _answer("tasks")},
                                 query=(("status", {"type": "string"}),))},
        "/v2/tasks/delete": {
            "post": _op("kill tasks by id", {"200": _answer("killed")}, body="TaskIds",
                        query=(("scale", {"type": "boolean"}), ("wipe", {"type": "boolean"}),
                               _FORCE), errors=("400", "409", "422"))},
        "/v2/deployments": {"get": _op("running deployments", {"200": _answer("deployments", {
            "type": "array"})})},
        "/v2/deployments/{deployment_id}": {
            "delete": _op("cancel or roll back a deployment", _DEPLOY,
                          params=("deployment_id",), query=(_FORCE,), errors=("404",))},
        "/v2/queue": {"get": _op("the launch queue", {"200": _answer("the queue")})},
    }


def _app_schema() -> dict[str, Any]:
    schema = copy.deepcopy(APP_SCHEMA)
    schema.pop("$schema", None)  # the document's dialect (3.1: JSON Schema 2020-12)
    return schema


@functools.cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Marathon v2 API", "version": "1.10.26",
                 "description": "The Marathon REST API subset this package serves."},
        "paths": _paths(),
        "components": {
            "schemas": {
                "App": _app_schema(),
                "Group": {"type": "object", "properties": {
                    "id": {"type": "string"},
                    "apps": {"type": "array", "items": {"$ref": "#/components/schemas/App"}},
                    "groups": {"type": "array", "items": {"type": "object"}},
                    "dependencies": {"type": "array", "items": {"type": "string"}}}},
                "TaskIds": {"type": "object", "required": ["ids"], "properties": {
                    "ids": {"type": "array", "items": {"type": "string"}}}},
                "Error": {"type": "object", "properties": {
                    "message": {"type": "string"}, "details": {"type": "array"}}},
            },
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}, {}],
    }
