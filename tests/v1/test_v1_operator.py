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
