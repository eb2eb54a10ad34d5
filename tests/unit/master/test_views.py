"""/master/state and /metrics/snapshot shapes computed from the core's state."""
from __future__ import annotations

import json

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_master import views

from .harness import Harness, agent_info, command_task

TOP_KEYS = {"version", "build_date", "build_time", "build_user", "start_time", "elected_time",
            "id", "pid", "hostname", "capabilities", "activated_slaves", "deactivated_slaves",
            "unreachable_slaves", "leader", "leader_info", "flags", "slaves",
            "recovered_slaves", "frameworks", "completed_frameworks", "orphan_tasks",
            "unregistered_frameworks"}


def _cluster() -> tuple[Harness, str, str]:
    h = Harness()
    aid = h.register_agent(b"a1")
    h.register_agent(b"a2", agent_info("h2", "cpus:2;mem:1024;cpus(web):1;mem(web):100"))
    fid = h.subscribe(b"fw1", user="alice")
    offers = {o.agent_id: o for o in h.offers()}
    h.launch(b"fw1", fid, offers[aid], [command_task("t1", aid, "cpus:1.5;mem:256")],
             refuse_seconds=60)
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.RUNNING, uuid=b"u" * 16)))
    return h, aid, fid


def test_state_json_shape() -> None:
    h, aid, fid = _cluster()
    state = views.state_json(h.master, h.now, {"port": "5050"})
    json.dumps(state)  # serialisable as is
    assert TOP_KEYS <= state.keys()
    assert state["activated_slaves"] == 2.0 and state["flags"] == {"port": "5050"}
    assert state["leader_info"]["id"] == "M" and state["pid"] == "master@127.0.0.1:5050"
    slaves = {s["id"]: s for s in state["slaves"]}
    s1 = slaves[aid]
    assert s1["resources"]["cpus"] == 4.0 and s1["resources"]["ports"] == "[31000-31099]"
    assert s1["used_resources"]["cpus"] == 1.5 and s1["used_resources"]["gpus"] == 0.0
    assert s1["attributes"] == {"rack": "r1"} and s1["pid"] == "slave(1)@h1:5051"
    assert s1["containerizers"] == ["docker", "mesos"]
    assert s1["active"] is True and "registered_time" in s1
    s2 = [s for s in slaves.values() if s["id"] != aid][0]
    assert s2["reserved_resources"] == {"web": {"cpus": 1.0, "gpus": 0.0, "mem": 100.0,
                                                "disk": 0.0}}
    assert s2["unreserved_resources"]["cpus"] == 2.0
    assert s2["offered_resources"]["cpus"] == 2.0  # offered (unreserved only, role "*")
    (fw,) = state["frameworks"]
    assert fw["id"] == fid and fw["user"] == "alice" and fw["active"] and fw["connected"]
    assert fw["role"] == "*" and fw["used_resources"]["cpus"] == 1.5
    (task,) = fw["tasks"]
    assert (task["id"], task["state"], task["slave_id"], task["executor_id"]) == (
        "t1", ts.RUNNING, aid, "")
    assert [s["state"] for s in task["statuses"]] == [ts.STAGING, ts.RUNNING]
    assert [o["slave_id"] for o in fw["offers"]] == [s2["id"]]


def test_metrics_totals_equal_sum_over_agents() -> None:
    h, aid, fid = _cluster()
    snap = views.metrics(h.master, h.now + 10)
    assert all(isinstance(v, float) for v in snap.values())
    assert snap["master/cpus_total"] == 4.0 + 3.0
    assert snap["master/mem_total"] == 4096.0 + 1124.0
    assert snap["master/cpus_used"] == 1.5
    assert abs(snap["master/cpus_percent"] - 1.5 / 7.0) < 1e-9
    assert snap["master/slaves_active"] == 2.0 and snap["master/frameworks_active"] == 1.0
    assert snap["master/tasks_running"] == 1.0 and snap["master/tasks_staging"] == 0.0
    assert snap["master/slave_registrations"] == 2.0
    assert snap["master/outstanding_offers"] == 1.0
    assert snap["master/valid_status_updates"] == 1.0
    assert snap["master/messages_launch_tasks"] == 1.0
    assert snap["master/messages_register_framework"] == 1.0
    assert snap["master/elected"] == 1.0 and snap["master/uptime_secs"] >= 10.0
    assert snap["allocator/mesos/allocation_runs"] >= 1.0
    for key in ("master/cpus_revocable_total", "master/tasks_finished", "master/tasks_error",
                "master/slaves_unreachable", "master/frameworks_disconnected",
                "master/dropped_messages", "master/gpus_used", "master/disk_percent"):
        assert key in snap
    h.recv(b"a1", m.StatusUpdate(fid, m.TaskStatus("t1", ts.FINISHED, uuid=b"v" * 16)))
    snap = views.metrics(h.master, h.now)
    assert snap["master/tasks_finished"] == 1.0 and snap["master/cpus_used"] == 0.0
