"""Operator policy: weights and quota through HTTP -> core -> registry -> allocator."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from mesos_common import effects as fx
from mesos_master.allocator.hierarchical import HierarchicalAllocator
from mesos_master.core_operator import (
    UpdateQuotaRequest,
    UpdateWeightsRequest,
    parse_quota,
    parse_weights,
)
from mesos_master.registry.base import MemoryRegistry, UpdateQuota, UpdateWeights
from mesos_master.server import MasterServer, ServerOptions
from tests.unit.master.harness import Harness, persisted


def _allocator(h: Harness) -> HierarchicalAllocator:
    alloc = h.master.allocator
    assert isinstance(alloc, HierarchicalAllocator)
    return alloc


def test_parse_weights_and_quota_validate_bodies() -> None:
    assert parse_weights([{"role": "b", "weight": 2}, {"role": "a", "weight": 0.5}]) == \
        UpdateWeightsRequest((("a", 0.5), ("b", 2.0)))
    bad: object
    for bad in ({}, [], [{"role": "a"}], [{"role": "a", "weight": 0}],
                [{"role": "*", "weight": 1}], [{"role": "a b", "weight": 1}],
                [{"role": "a", "weight": True}], [{"role": "a", "weight": 1, "x": 2}]):
        assert isinstance(parse_weights(bad), str), bad
    cpus = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}}]
    assert parse_quota({"role": "ads", "guarantee": cpus}) == UpdateQuotaRequest(
        "ads", (("cpus", 2.0),))
    assert parse_quota({"role": "ads", "guarantee": "cpus:1;mem:64"}) == UpdateQuotaRequest(
        "ads", (("cpus", 1.0), ("mem", 64.0)))
    for bad in ([], {"role": "ads"}, {"role": "ads", "guarantee": "cpus:x"},
                {"role": "ads", "guarantee": "cpus(ads):1"},
                {"role": "ads", "guarantee": "ports:[1-2]"}, {"role": "", "guarantee": []}):
        assert isinstance(parse_quota(bad), str), bad


def test_weights_apply_only_once_durable_and_survive_a_restart() -> None:
    h = Harness(auto_persist=False)
    out = h.handle(UpdateWeightsRequest((("ads", 3.0),)))
    (op,) = persisted(out)
    assert op == UpdateWeights((("ads", 3.0),))
    assert _allocator(h).weights() == {}  # not yet durable
    h.registry.apply(op)
    h.handle(fx.PersistDone(op, True))
    assert _allocator(h).weights() == {"ads": 3.0}
    q = UpdateQuota("ads", (("cpus", 2.0),))
    h.registry.apply(q)
    h.handle(fx.PersistDone(q, True))
    h.restart("M2")
    assert _allocator(h).weights() == {"ads": 3.0}
    assert _allocator(h).quotas() == {"ads": {"cpus": 2000}}


def _call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def _exercise(server: MasterServer) -> list[tuple[int, Any]]:
    started = asyncio.Event()
    run = asyncio.create_task(server.run(ready=lambda s: started.set()))
    await asyncio.wait_for(started.wait(), 10)
    base = f"http://127.0.0.1:{server.http_port}"
    calls = [
        ("/weights", "POST", [{"role": "ads", "weight": 2.5}]),
        ("/master/weights", "GET", None),
        ("/weights", "POST", [{"role": "ads", "weight": -1}]),
        ("/master/quota", "POST", {"role": "ads", "guarantee": "cpus:2;mem:128"}),
        ("/quota", "GET", None),
        ("/quota", "POST", {"role": "ads", "guarantee": "ports:[1-5]"}),
        ("/master/roles", "GET", None),
        ("/quota/ads", "DELETE", None),
        ("/quota/ads", "DELETE", None),
        ("/roles", "GET", None),
    ]
    out = []
    for path, method, body in calls:
        out.append(await asyncio.to_thread(_call, base + path, method, body))
    try:
        req = urllib.request.Request(base + "/weights", data=b"{nope", method="POST")
        await asyncio.to_thread(urllib.request.urlopen, req)
    except urllib.error.HTTPError as e:
        out.append((e.code, json.loads(e.read())))
    server.stop()
    await asyncio.wait_for(run, 10)
    return out


def test_operator_endpoints() -> None:
    registry = MemoryRegistry()
    server = MasterServer(ServerOptions(port=0, zmq_port=0, registry="in_memory"),
                          registry=registry, master_id="M")
    (w_ok, w_get, w_bad, q_ok, q_get, q_bad, roles, q_del, q_del2, roles2,
     bad_json) = asyncio.run(_exercise(server))
    assert w_ok == (200, [{"role": "ads", "weight": 2.5}]) and w_get == w_ok
    assert w_bad[0] == 400 and "positive" in w_bad[1]["error"]
    assert q_ok[0] == 200 and q_get == q_ok
    (info,) = q_get[1]["infos"]
    assert info["role"] == "ads" and {r["name"]: r["scalar"]["value"]
                                      for r in info["guarantee"]} == {"cpus": 2.0, "mem": 128.0}
    assert q_bad[0] == 400 and "scalar" in q_bad[1]["error"]
    (ads,) = [r for r in roles[1]["roles"] if r["name"] == "ads"]
    assert ads["weight"] == 2.5 and ads["quota"]["guarantee"] == {"cpus": 2.0, "mem": 128.0}
    assert q_del == (200, {"infos": []})
    assert q_del2[0] == 400 and "no quota" in q_del2[1]["error"]
    (ads,) = [r for r in roles2[1]["roles"] if r["name"] == "ads"]
    assert ads["quota"]["guarantee"] == {}
    assert bad_json[0] == 400 and "invalid JSON" in bad_json[1]["error"]
    assert registry.load().weights == {"ads": 2.5} and registry.load().quotas == {}
