"""Mesos ACLs (the local authorizer): a pure function of (principal, action, object).

The document is Mesos's `--acls` JSON: `{"permissive": bool, "<action>": [rule, ...]}`, each
rule `{"principals": Entity, "<object field>": Entity}` and each Entity `{"values": [..]}` or
`{"type": "ANY" | "NONE"}`. Rules are tried in order; the first whose subject and object both
*match* decides, by whether both *allow*; when none matches, `permissive` (default true)
decides. A request without a principal (unauthenticated) is the ANY subject, and an action
without an object (e.g. "may this principal view any framework at all") the ANY object, with
Mesos's match and allow matrices:

    request \\ rule   SOME           NONE          ANY
    SOME              subset/subset  match/deny    match/allow
    NONE              -              match/allow   -
    ANY               -              match/deny    match/allow
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from mesos_common.auth.errors import AuthConfigError

SOME, ANY, NONE = "SOME", "ANY", "NONE"

# action -> the rule's object field (Mesos's names)
ACTIONS: dict[str, str] = {
    "register_frameworks": "roles",
    "run_tasks": "users",
    "teardown_frameworks": "framework_principals",
    "update_quotas": "roles",
    "update_weights": "roles",
    "reserve_resources": "roles",
    "unreserve_resources": "reserver_principals",
    "get_endpoints": "paths",
    "view_frameworks": "users",
    "view_tasks": "users",
    "view_roles": "roles",
    # Operator calls on machines and agents: Mesos gives their object implicitly (the
    # request's object is always ANY), so a rule's object decides only as ANY or NONE.
    "update_maintenance_schedules": "machines",
    "get_maintenance_schedules": "machines",
    "start_maintenances": "machines",
    "stop_maintenances": "machines",
    "get_maintenance_statuses": "machines",
    "drain_agents": "agents",
    "deactivate_agents": "agents",
    "reactivate_agents": "agents",
    "mark_agents_gone": "agents",
}


@frozen
class Entity:
    type: str = SOME
    values: frozenset[str] = frozenset()

    @classmethod
    def of(cls, value: str | None) -> Entity:
        """A request entity: one value, or ANY when there is none."""
        return cls(ANY) if value is None else cls(SOME, frozenset((value,)))


def _matches(request: Entity, rule: Entity) -> bool:
    if request.type == NONE:
        return rule.type == NONE
    if request.type == ANY:
        return rule.type in (ANY, NONE)
    if rule.type in (ANY, NONE):
        return True
    return request.values <= rule.values


def _allows(request: Entity, rule: Entity) -> bool:
    if request.type == NONE:
        return rule.type == NONE
    if request.type == ANY:
        return rule.type == ANY
    if rule.type == ANY:
        return True
    if rule.type == NONE:
        return False
    return request.values <= rule.values


@frozen
class Rule:
    subjects: Entity
    objects: Entity


@frozen
class Acls:
    """Parsed `--acls`; `Acls()` allows everything (permissive, no rules)."""

    permissive: bool = True
    rules: Mapping[str, tuple[Rule, ...]] = {}

    @property
    def empty(self) -> bool:
        return self.permissive and not any(self.rules.values())

    def allowed(self, principal: str | None, action: str, obj: str | None) -> bool:
        """May `principal` (None: unauthenticated) do `action` on `obj` (None: any)?"""
        if action not in ACTIONS:
            raise ValueError(f"unknown ACL action {action!r}")
        subject, target = Entity.of(principal), Entity.of(obj)
        for rule in self.rules.get(action, ()):
            if _matches(subject, rule.subjects) and _matches(target, rule.objects):
                return _allows(subject, rule.subjects) and _allows(target, rule.objects)
        return self.permissive


def _entity(doc: Any, where: str) -> Entity:
    if not isinstance(doc, Mapping):
        raise AuthConfigError(f"{where}: expected {{\"values\": [...]}} or {{\"type\": ...}}")
    unknown = set(doc) - {"values", "type"}
    if unknown:
        raise AuthConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    kind = doc.get("type", SOME)
    if kind not in (SOME, ANY, NONE):
        raise AuthConfigError(f"{where}: type must be SOME, ANY or NONE, not {kind!r}")
    values = doc.get("values", [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise AuthConfigError(f"{where}: values must be a list of strings")
    if kind != SOME and values:
        raise AuthConfigError(f"{where}: values go with type SOME only")
    return Entity(kind, frozenset(values))


def parse_acls(doc: Any) -> Acls:
    if not isinstance(doc, Mapping):
        raise AuthConfigError("acls: expected a JSON object")
    permissive = doc.get("permissive", True)
    if not isinstance(permissive, bool):
        raise AuthConfigError("acls: permissive must be true or false")
    rules: dict[str, tuple[Rule, ...]] = {}
    for action, items in doc.items():
        if action == "permissive":
            continue
        field = ACTIONS.get(action)
        if field is None:
            raise AuthConfigError(f"acls: unknown action {action!r} (known: "
                                  f"{', '.join(sorted(ACTIONS))})")
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise AuthConfigError(f"acls.{action}: expected a list of rules")
        parsed = []
        for i, item in enumerate(items):
            where = f"acls.{action}[{i}]"
            if not isinstance(item, Mapping) or set(item) != {"principals", field}:
                raise AuthConfigError(f"{where}: expected exactly 'principals' and '{field}'")
            parsed.append(Rule(_entity(item["principals"], f"{where}.principals"),
                               _entity(item[field], f"{where}.{field}")))
        rules[action] = tuple(parsed)
    return Acls(permissive, rules)


