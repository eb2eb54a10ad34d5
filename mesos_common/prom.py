"""Prometheus exposition shared by the daemons: a Mesos-style flat snapshot turned into
metric families (labels where the key names a state or a message type), an aiohttp
middleware timing API requests, and the `/metrics` response itself.

Each daemon owns a `CollectorRegistry` (never the process-global one): several daemons can
live in one process (`mesos-local`, tests) and each must answer with its own figures.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Seconds; an API answer is a few ms, a big /master/state a second or more.
REQUEST_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(*parts: str) -> str:
    return _UNSAFE.sub("_", "_".join(p for p in parts if p))


class Families:
    """Builds labelled families keyed by name, so many snapshot keys fold into one family."""

    def __init__(self) -> None:
        self._families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}

    def add(self, kind: str, name: str, doc: str, value: float,
            labels: Mapping[str, str] | None = None) -> None:
        fam = self._families.get(name)
        if fam is None:
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            fam = cls(name, doc, labels=list(labels or ()))
            self._families[name] = fam
        fam.add_metric(list((labels or {}).values()), float(value))

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


# (pattern on a snapshot key, kind, family name template, label) — first match wins.
SnapshotRule = tuple[re.Pattern[str], str, str, str | None]


def rule(pattern: str, kind: str, name: str, label: str | None = None) -> SnapshotRule:
    return re.compile(pattern), kind, name, label


def snapshot_families(snapshot: Mapping[str, float], rules: Iterable[SnapshotRule],
                      prefix: str, families: Families | None = None) -> Families:
    """Every snapshot key becomes a sample: a rule's family (its one group is the label's
    value) or, failing all rules, a gauge named after the key."""
    out = families if families is not None else Families()
    rules = list(rules)
    for key, value in snapshot.items():
        for pattern, kind, name, label in rules:
            match = pattern.fullmatch(key)
            if match:
                labels = {label: match.group(1)} if label else None
                out.add(kind, metric_name(prefix, name), f"Mesos {key}", value, labels)
                break
        else:
            out.add("gauge", metric_name(prefix, key), f"Mesos {key}", value)
    return out


class FunctionCollector:
    """A collector that computes its families at scrape time."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()

    def describe(self) -> list[Metric]:
        return []  # families depend on state: registering must not call collect


def request_histogram(registry: CollectorRegistry, prefix: str) -> Histogram:
    return Histogram(metric_name(prefix, "http_request_duration_seconds"),
                     "Time to answer an HTTP API request (a stream: until it ends)",
                     ["method", "route", "code"], buckets=REQUEST_BUCKETS, registry=registry)


def canonical_route(request: web.Request) -> str:
    """The matched route's template, so ids in paths do not become label values."""
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


def timing_middleware(histogram: Histogram,
                      route_of: Callable[[web.Request], str] = canonical_route) -> Any:
    @web.middleware
    async def timed(request: web.Request, handler: Any) -> web.StreamResponse:
        start = time.perf_counter()
        code = "500"
        try:
            resp = await handler(request)
            code = str(resp.status)
            return resp
        except web.HTTPException as e:
            code = str(e.status)
            raise
        finally:
            histogram.labels(request.method, route_of(request), code).observe(
                time.perf_counter() - start)
    return timed


def exposition(registry: CollectorRegistry) -> web.Response:
    body = generate_latest(registry)
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def wants_json(request: web.Request) -> bool:
    """A client asking for JSON (marathon-python, a browser's fetch) rather than a scraper
    (Prometheus sends text/plain or openmetrics, curl */*)."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/plain" not in accept
