"""Contract of the v1 operator API's calls against a real master (one per call type)."""
from __future__ import annotations

import requests

from mesos_master.api_v1.operator import _GETTERS, _NOT_BUILT

GETS = sorted(_GETTERS)


def _call(addr: str, body: object, path: str = "/api/v1") -> requests.Response:
    return requests.post(f"http://{addr}{path}", json=body, timeout=10)


def test_every_get_call_answers_its_payload_and_changes_apply(cluster) -> None:
    cluster.start_master()
    cluster.start_agent("cpus:2;mem:1024;disk:1024")
    cluster.wait_agents(1)
    addr = cluster.master_addr
    for kind in GETS:
        for path in ("/api/v1", "/api/v1/operator"):
            r = _call(addr, {"type": kind}, path)
            assert r.status_code == 200, (kind, r.text)
            assert r.json()["type"] == kind and kind.lower() in r.json(), kind
    agents = _call(addr, {"type": "GET_AGENTS"}).json()["get_agents"]["agents"]
    assert len(agents) == 1 and agents[0]["agent_info"]["hostname"] == "127.0.0.1"
    metrics = {m["name"]: m["value"]
               for m in _call(addr, {"type": "GET_METRICS"}).json()["get_metrics"]["metrics"]}
    assert metrics["master/cpus_total"] == 2.0
    # Weights and quota: validated, persisted, visible.
    assert _call(addr, {"type": "UPDATE_WEIGHTS", "update_weights": {
        "weight_infos": [{"role": "ads", "weight": 2.5}]}}).status_code == 200
    assert _call(addr, {"type": "GET_WEIGHTS"}).json()["get_weights"]["weight_infos"] == \
        [{"role": "ads", "weight": 2.5}]
    quota = {"type": "SET_QUOTA", "set_quota": {"quota_request": {"role": "ads", "guarantee": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}]}}}
    assert _call(addr, quota).status_code == 200
    infos = _call(addr, {"type": "GET_QUOTA"}).json()["get_quota"]["status"]["infos"]
    assert [i["role"] for i in infos] == ["ads"]
    assert _call(addr, {"type": "REMOVE_QUOTA", "remove_quota": {"role": "ads"}}).status_code \
        == 200
    assert _call(addr, {"type": "GET_QUOTA"}).json()["get_quota"]["status"]["infos"] == []
    # Bad input: a clear 400 (or 501 for a Mesos call not served yet), and the master serves on.
    bad = [("{", 400), ({"type": 3}, 400), ({"type": "NO_SUCH_CALL"}, 400),
           ({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
               {"role": "ads", "weight": -1}]}}, 400),
           ({"type": sorted(_NOT_BUILT)[0]}, 501)]
    for body, status in bad:
        r = (requests.post(f"http://{addr}/api/v1", data=body, timeout=10)
             if isinstance(body, str) else _call(addr, body))
        assert r.status_code == status, (body, r.text)
        assert r.text
    assert _call(addr, {"type": "GET_HEALTH"}).json()["get_health"] == {"healthy": True}


def test_mark_agent_gone_ends_its_tasks_and_refuses_the_id_and_teardown_ends_a_framework(
        cluster) -> None:
    from frameworks.scheduler import SchedulerDriver
    from mesos_common import task_states
    from tests.helpers import TaskHolder, http_json, wait_for

    cluster.start_master("--allocation_interval=100ms")
    cluster.start_agent("cpus:1;mem:512;disk:512")
    cluster.wait_agents(1)
    addr = cluster.master_addr
    agent_id = http_json(f"{cluster.agents[0].field('http')}/state")["id"]
    sched = TaskHolder(count=1, command="sleep 300")
    driver = SchedulerDriver(sched, "gone-test", addr)
    driver.start()
    try:
        wait_for(lambda: sched.states().get("t0") == task_states.RUNNING, 30, what="t0 running")
        cluster.agents[0].kill9()  # so that it comes back with its old id (a live one would be
        gone = {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}}
        assert _call(addr, gone).status_code == 200
        wait_for(lambda: sched.states().get("t0") == task_states.LOST, 20, what="TASK_LOST")
        lost = [u for u in sched.updates if u.state == task_states.LOST]
        assert lost[0].reason == "REASON_AGENT_REMOVED_BY_OPERATOR"
        assert _call(addr, gone).status_code == 200  # marking twice is fine
        assert _call(addr, {"type": "MARK_AGENT_GONE", "mark_agent_gone": {
            "agent_id": {"value": "no-such-agent"}}}).status_code == 400
        # told to shut down and would re-register afresh at once): refused, it joins afresh.
        cluster.start_agent("cpus:1;mem:512;disk:512", index=0)
        state = cluster.wait_agents(1)
        assert [a["id"] for a in state["slaves"]] != [agent_id]
        assert "refused" in (cluster.root / "logs" / "master.log").read_text()
        # TEARDOWN of the framework through the operator API.
        fid = driver.framework_id
        assert _call(addr, {"type": "TEARDOWN", "teardown": {
            "framework_id": {"value": "nope"}}}).status_code == 400
        assert _call(addr, {"type": "TEARDOWN", "teardown": {
            "framework_id": {"value": fid}}}).status_code == 200
        wait_for(lambda: fid in {f["id"] for f in cluster.state()["completed_frameworks"]}, 20,
                 what="the framework torn down")
    finally:
        driver.stop()
