"""Per-principal framework rate limits (`--rate_limits`, Mesos's format) as token buckets.

`{"limits": [{"principal": "p", "qps": 10.0, "capacity": 100}], "aggregate_default_qps": ..,
"aggregate_default_capacity": ..}`. A principal with a `qps` may send that many messages per
second on average and `capacity` at once (default: one second's worth, at least one); a
message beyond that is refused (the master answers ProtocolError) rather than queued, so a
flooding framework costs a refusal, not memory. A limit without `qps` is unlimited. Principals
not listed share one bucket of the aggregate defaults, when given. Pure: the caller passes
`now`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import define, frozen

from mesos_common.auth.errors import AuthConfigError

_DEFAULT = object()  # the shared bucket of principals without a limit of their own


@frozen
class Limit:
    qps: float | None  # None: unlimited
    capacity: float

    @classmethod
    def make(cls, qps: Any, capacity: Any, where: str) -> Limit:
        if qps is not None and (not isinstance(qps, (int, float)) or isinstance(qps, bool)
                                or qps <= 0):
            raise AuthConfigError(f"{where}: qps must be a positive number")
        if capacity is not None and (not isinstance(capacity, int) or isinstance(capacity, bool)
                                     or capacity < 1):
            raise AuthConfigError(f"{where}: capacity must be a positive integer")
        if qps is None:
            return cls(None, 0.0)
        return cls(float(qps), float(capacity) if capacity is not None else max(1.0, float(qps)))


@define
class Bucket:
    limit: Limit
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        qps = self.limit.qps
        if qps is None:
            return True
        if now > self.at:
            self.tokens = min(self.limit.capacity, self.tokens + (now - self.at) * qps)
            self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@frozen
class RateLimits:
    limits: Mapping[str, Limit] = {}
    aggregate: Limit | None = None


class RateLimiter:
    """Buckets by principal (created on first use, full)."""

    def __init__(self, config: RateLimits) -> None:
        self.config = config
        self._buckets: dict[object, Bucket] = {}

    def allow(self, principal: str | None, now: float) -> bool:
        limit = self.config.limits.get(principal) if principal is not None else None
        key: object = principal
        if limit is None:
            limit, key = self.config.aggregate, _DEFAULT
            if limit is None:
                return True
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(limit, limit.capacity, now)
        return bucket.take(now)


def parse_rate_limits(doc: Any) -> RateLimits:
    if not isinstance(doc, Mapping):
        raise AuthConfigError("rate_limits: expected a JSON object")
    unknown = set(doc) - {"limits", "aggregate_default_qps", "aggregate_default_capacity"}
    if unknown:
        raise AuthConfigError(f"rate_limits: unknown field(s) {sorted(unknown)}")
    items = doc.get("limits", [])
    if not isinstance(items, list):
        raise AuthConfigError("rate_limits.limits: expected a list")
    limits: dict[str, Limit] = {}
    for i, item in enumerate(items):
        where = f"rate_limits.limits[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("principal"), str):
            raise AuthConfigError(f"{where}: expected an object with a principal")
        if set(item) - {"principal", "qps", "capacity"}:
            raise AuthConfigError(f"{where}: unknown field(s) "
                                  f"{sorted(set(item) - {'principal', 'qps', 'capacity'})}")
        if item["principal"] in limits:
            raise AuthConfigError(f"{where}: principal {item['principal']!r} given twice")
        limits[item["principal"]] = Limit.make(item.get("qps"), item.get("capacity"), where)
    aggregate = None
    if "aggregate_default_qps" in doc:
        aggregate = Limit.make(doc["aggregate_default_qps"],
                               doc.get("aggregate_default_capacity"), "rate_limits.aggregate")
    elif "aggregate_default_capacity" in doc:
        raise AuthConfigError("rate_limits: aggregate_default_capacity needs "
                              "aggregate_default_qps")
    return RateLimits(limits, aggregate)


