"""/master/state-summary and the Prometheus families, computed from the core's state, and
the runtime's histogram bookkeeping (offer to accept, launch latency, allocation runs)."""
from __future__ import annotations

import json
import time

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_master import views, views_summary
from mesos_master.core import ALLOCATE_TIMER, Master
from mesos_master.metrics import MasterMetrics, state_families

from .harness import Harness, command_task
from .test_views import _cluster


def test_state_summary_counts_tasks_without_listing_them() -> None:
    h, aid, fid = _cluster()
    summary = views_summary.state_summary(h.master, h.now + 5)
    json.dumps(summary)
    agents = {a["id"]: a for a in summary["slaves"]}
    assert agents[aid]["TASK_RUNNING"] == 1 and agents[aid]["framework_ids"] == [fid]
    assert agents[aid]["seconds_since_heartbeat"] >= 5
    assert agents[aid]["used_resources"]["cpus"] == 1.5
    (fw,) = summary["frameworks"]
    assert fw["TASK_RUNNING"] == 1 and fw["slave_ids"] == [aid] and fw["roles"] == ["*"]
    assert "tasks" not in fw and "offers" not in fw
    assert sum(a["offered_resources"].get("cpus", 0) for a in agents.values()) == 2.0


def _samples(fams) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in fams for s in f.samples}


def test_families_carry_the_snapshot_with_labels() -> None:
    h, aid, fid = _cluster()
    snap = views.metrics(h.master, h.now)
    got = _samples(state_families(h.master, {"master/event_loop_lag_ms": 1.5}, h.now))
    assert got[("mesos_master_tasks", (("state", "running"),))] == snap["master/tasks_running"]
    assert got[("mesos_master_cpus", (("kind", "total"),))] == snap["master/cpus_total"]
    assert got[("mesos_master_cpus", (("kind", "offered"),))] == 2.0
    assert got[("mesos_master_task_terminations_total", (("state", "failed"),))] == 0
    assert got[("mesos_master_framework_tasks", (("framework", "fw"), ("framework_id", fid),
                                                 ("state", "running")))] == 1
    assert got[("mesos_master_role_allocated_cpus", (("role", "*"),))] >= 1.5
    assert got[("mesos_master_event_loop_lag_ms", ())] == 1.5  # a runtime figure, as a gauge
    # every snapshot key became one sample (resource kinds, labelled families, plain gauges)
    plain = {k for k in got if not k[0].startswith(("mesos_master_role_",
                                                         "mesos_master_framework_"))}
    assert len(plain) == len(snap) + 1 + 4  # + the runtime figure + offered per resource


class _Service:
    def __init__(self, h: Harness) -> None:
        self.master: Master | None = h.master
        self.leading = True

    def runtime_metrics(self) -> dict[str, float]:
        return {}


def test_runtime_histograms() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    prom = MasterMetrics(_Service(h))
    started = time.perf_counter()
    prom.handled(fx.TimerFired(ALLOCATE_TIMER), started)
    offers = h.offers()
    prom.sent(m.Offers(tuple(offers)))
    accept = m.Accept(fid, (offers[0].id,), (m.Operation("LAUNCH", (command_task("t1", aid),)),))
    prom.handled(fx.Received(b"fw1", accept), started)
    prom.handled(fx.Received(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING))),
                 started)
    prom.handled(fx.Received(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING))),
                 started)  # a second RUNNING (a retry) is not a second launch
    text = generate_latest(prom.registry).decode()
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for f in text_string_to_metric_families(text) for s in f.samples}
    assert got[("mesos_master_allocation_run_seconds_count", ())] == 1
    assert got[("mesos_master_offer_to_accept_seconds_count", (("decision", "accept"),))] == 1
    assert got[("mesos_master_launch_latency_seconds_count", ())] == 1
    assert got[("mesos_master_tasks", (("state", "staging"),))] == 0  # state families too
