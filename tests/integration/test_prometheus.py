"""`GET /metrics` of the master, an agent and Marathon in the Prometheus text format: each
parses with prometheus_client's parser and carries the named series, with labels where the
snapshot folds a state or a role into a key; the Grafana dashboard only names series that
these endpoints expose."""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import http_json, wait_for
from tests.integration.marathon_helpers import MarathonApi

DASHBOARD = Path(__file__).parents[2] / "packaging" / "grafana" / "corral.json"


def scrape(base: str) -> dict[str, list]:
    """Family name -> samples (name, labels, value), as Prometheus would read them."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    found = [v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in
                                                          labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    from tests.conftest import Cluster
    c = Cluster(tmp_path_factory.mktemp("prom"))
    try:
        c.start_master()
        agent = c.start_agent("cpus:2;mem:512;disk:256;ports:[31000-31010]")
        marathon = c.start_marathon(0, "--scale_apps_interval=0.5")
        c.wait_agents(1)
        api = MarathonApi(marathon.field("http"))
        status, body = api.call("POST", "/v2/apps", {"id": "/prom/sleepy", "cmd": "sleep 600",
                                                     "cpus": 0.25, "mem": 32, "instances": 2})
        assert status == 201, body
        wait_for(lambda: api.app("/prom/sleepy")["tasksRunning"] == 2, 60, 0.2, "2 running")
        http_json(f"http://{c.master_addr}/master/state")  # a timed API request
        snapshot = http_json(f"http://{c.master_addr}/metrics/snapshot")
        yield {"master": scrape(f"http://{c.master_addr}"), "agent": scrape(agent.field("http")),
               "marathon": scrape(marathon.field("http")), "snapshot": snapshot,
               "marathon_json": api.call("GET", "/metrics")[1]}
    finally:
        c.stop()


def test_master_series(scraped):
    m, snap = scraped["master"], scraped["snapshot"]
    assert value(m, "mesos_master_tasks", state="running") == snap["master/tasks_running"] == 2
    assert value(m, "mesos_master_cpus", kind="total") == snap["master/cpus_total"] == 2
    assert value(m, "mesos_master_cpus", kind="used") == snap["master/cpus_used"] == 0.5
    assert value(m, "mesos_master_mem_megabytes", kind="total") == 512
    assert value(m, "mesos_master_agents", state="active") == 1
    assert value(m, "mesos_master_messages_total", type="launch_tasks") >= 1
    assert value(m, "mesos_master_task_terminations_total", state="finished") == 0
    assert value(m, "mesos_allocator_allocation_runs_total") >= 1
    assert value(m, "mesos_master_framework_tasks", framework="marathon", state="running") == 2
    assert value(m, "mesos_master_role_allocated_cpus", role="*") >= 0.5
    assert value(m, "mesos_master_elected") == 1
    assert value(m, "mesos_master_event_loop_lag_ms") >= 0  # a runtime figure
    # every snapshot figure is somewhere in the exposition
    assert len(snap) <= sum(len(v) for k, v in m.items() if not k.endswith(("_bucket",
                                                                            "_created")))
    for name in ("mesos_master_allocation_run_seconds", "mesos_master_launch_latency_seconds"):
        assert value(m, f"{name}_count") >= 1, name
    assert value(m, "mesos_master_offer_to_accept_seconds_count", decision="accept") >= 1
    assert any(lab["route"] == "/master/state" and lab["code"] == "200" and v >= 1
               for lab, v in m["mesos_master_http_request_duration_seconds_count"])


def test_agent_series(scraped):
    a = scraped["agent"]
    assert value(a, "mesos_agent_cpus", kind="total") == 2
    assert value(a, "mesos_agent_cpus", kind="used") == 0.5
    assert value(a, "mesos_agent_tasks", framework="marathon", state="running") == 2
    assert value(a, "mesos_agent_registered") == 1


def test_marathon_series(scraped):
    mt, js = scraped["marathon"], scraped["marathon_json"]
    assert value(mt, "marathon_apps_active") == js["gauges"]["apps.active"]["value"] == 1
    assert value(mt, "marathon_tasks_active") == 2
    assert value(mt, "marathon_app_instances", app="/prom/sleepy") == 2
    assert value(mt, "marathon_app_tasks", app="/prom/sleepy", state="running") == 2
    assert value(mt, "marathon_offers_processed_total") >= 1
    assert value(mt, "marathon_leader") == 1
    assert any(lab["route"] == "/v2/apps" and lab["method"] == "POST"
               for lab, _ in mt["marathon_http_request_duration_seconds_count"])


def test_grafana_dashboard_names_exposed_series(scraped):
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8
    known = {n for d in ("master", "agent", "marathon") for n in scraped[d]}
    for expr in exprs:
        series = set(re.findall(r"\b(?:mesos|marathon)_\w+", re.sub(r"\{[^}]*\}", "", expr)))
        assert series, expr
        assert series <= known, (expr, series - known)
