"""Operator policy: role weights and quotas, durable before they take effect; and an
operator's teardown of a framework (Mesos' POST /master/teardown).

The HTTP layer parses a request body with `parse_weights` / `parse_quota` (pure; a bad body
gives an error string for a 400) and feeds the resulting request event to the core; the core
writes `UpdateWeights` / `UpdateQuota` to the registry and hands the values to the allocator
only once `PersistDone` says they are durable. A restarted master gives the allocator what the
registry holds before anything else happens.
"""
from __future__ import annotations

import math
from typing import Any

from attrs import frozen

from mesos_common import messages as m
from mesos_common.resources import ResourceError, Resources
from mesos_master.core_base import EventTable
from mesos_master.core_frameworks import FrameworkHandlers
from mesos_master.registry.base import MarkGone, UpdateQuota, UpdateWeights


@frozen
class UpdateWeightsRequest:
    weights: tuple[tuple[str, float], ...]


@frozen
class TeardownRequest:
    """An operator's POST /master/teardown (authorized by the HTTP layer)."""

    framework_id: str


@frozen
class MarkGoneRequest:
    """An operator's MARK_AGENT_GONE: the agent will never come back (validated by the HTTP
    layer: the id is admitted or unreachable)."""

    agent_id: str


@frozen
class UpdateQuotaRequest:
    role: str
    guarantee: tuple[tuple[str, float], ...]  # empty: remove the quota


def _role_error(role: Any) -> str | None:
    if not isinstance(role, str) or not role:
        return f"role must be a non-empty string, got {role!r}"
    if role == "*":
        return "role '*' cannot have a weight or a quota"
    try:
        Resources.parse("cpus:1", default_role=role)
    except ResourceError:
        return f"invalid role {role!r}"
    return None


def parse_weights(body: Any) -> UpdateWeightsRequest | str:
    """Mesos' PUT /weights body: `[{"role": "ads", "weight": 2.0}, ...]`."""
    if not isinstance(body, list) or not body:
        return "expected a non-empty JSON list of {\"role\": ..., \"weight\": ...}"
    out: dict[str, float] = {}
    for item in body:
        if not isinstance(item, dict) or set(item) - {"role", "weight"}:
            return f"invalid weight entry {item!r}: want {{\"role\", \"weight\"}}"
        error = _role_error(item.get("role"))
        if error:
            return error
        w = item.get("weight")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) \
                or w <= 0:
            return f"weight of role {item['role']!r} must be a positive number, got {w!r}"
        out[item["role"]] = float(w)
    return UpdateWeightsRequest(tuple(sorted(out.items())))


def parse_quota(body: Any) -> UpdateQuotaRequest | str:
    """Mesos' POST /quota body: `{"role": "ads", "guarantee": [<resource JSON>...]}`; the
    guarantee may also be Mesos text (`"cpus:4;mem:2048"`). Scalars only, unreserved."""
    if not isinstance(body, dict) or set(body) - {"role", "guarantee", "force"}:
        return "expected a JSON object {\"role\": ..., \"guarantee\": [...]}"
    error = _role_error(body.get("role"))
    if error:
        return error
    raw = body.get("guarantee")
    try:
        if isinstance(raw, str):
            res = Resources.parse(raw)
        elif isinstance(raw, list):
            res = Resources.from_json(raw)
        else:
            return "guarantee must be a list of resources or resource text"
    except ResourceError as e:
        return str(e)
    if res.reserved():
        return "a quota guarantee must not name roles (reservations)"
    q = res.quantities()
    if set(res.names()) - set(q):
        return "a quota guarantee may only hold scalar resources"
    return UpdateQuotaRequest(body["role"], tuple(sorted(q.items())))


class OperatorHandlers(FrameworkHandlers):

    def _apply_registry_policies(self) -> None:
        """Give the allocator the weights and quotas the registry holds."""
        if self.registry.weights:
            self.allocator.update_weights(dict(self.registry.weights))
        for role, guarantee in self.registry.quotas.items():
            self.allocator.set_quota(role, Resources.from_scalars(**guarantee))

    def _on_update_weights(self, req: UpdateWeightsRequest) -> None:
        self._persist(UpdateWeights(req.weights))

    def _on_update_quota(self, req: UpdateQuotaRequest) -> None:
        self._persist(UpdateQuota(req.role, req.guarantee))

    def _on_teardown_request(self, req: TeardownRequest) -> None:
        """Tell the framework (as Mesos does), then kill its tasks and forget it."""
        fw = self.frameworks.get(req.framework_id)
        if fw is None:
            return
        self._log("info", f"framework {fw.id} torn down by the operator")
        if fw.peer is not None and fw.connected:
            self._send(fw.peer, m.Error("Framework removed"))
        self._remove_framework(fw)

    def _on_mark_gone_request(self, req: MarkGoneRequest) -> None:
        if req.agent_id in self.registry.admitted or req.agent_id in self.registry.unreachable:
            self._persist(MarkGone(req.agent_id, self.now))

    def _policy_persisted(self, op: UpdateWeights | UpdateQuota, ok: bool) -> None:
        if not ok:
            self._log("error", f"registry write {op} failed; not applied")
            return
        if isinstance(op, UpdateWeights):
            self.allocator.update_weights(dict(op.weights))
            self._log("info", f"role weights updated: {dict(op.weights)}")
        else:
            guarantee = Resources.from_scalars(**dict(op.guarantee)) if op.guarantee else None
            self.allocator.set_quota(op.role, guarantee)
            self._log("info", f"quota of role {op.role}: {guarantee!r}")
        self._request_allocation()


#: The operator requests handled here (mesos_master/core.py composes the master's table).
EVENTS: EventTable[OperatorHandlers] = {
    UpdateWeightsRequest: OperatorHandlers._on_update_weights,
    UpdateQuotaRequest: OperatorHandlers._on_update_quota,
    TeardownRequest: OperatorHandlers._on_teardown_request,
    MarkGoneRequest: OperatorHandlers._on_mark_gone_request,
}
