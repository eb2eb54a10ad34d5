"""The ACLs on the master's operator calls (in process): maintenance, drain, deactivate,
reactivate, mark gone, weights and quota through the v1 operator API and the old endpoints;
a refused principal gets 403 and changes nothing, an allowed one makes the change."""
from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.auth.acls import Acls, parse_acls
from mesos_common.auth.http import HttpAuth
from mesos_common.resources import Resources
from mesos_master.auth_config import MasterAuth
from mesos_master.http import make_app
from tests.unit.auth.test_acls import IMPLICIT
from tests.unit.master.test_http_auth import CREDS, _basic, _close, _master, _server

ANY_, NONE_ = {"type": "ANY"}, {"type": "NONE"}
# ops may do everything, dev nothing of the above (nor weights or quota of any role).
ACLS = parse_acls({
    **{a: [{"principals": {"values": ["ops"]}, f: ANY_}, {"principals": ANY_, f: NONE_}]
       for a, f in IMPLICIT.items()},
    "update_weights": [{"principals": {"values": ["dev"]}, "roles": NONE_}],
    "update_quotas": [{"principals": {"values": ["dev"]}, "roles": NONE_}]})
OPS = {"Authorization": _basic("ops", "ops-pw")}
DEV = {"Authorization": _basic("dev", "dev-pw")}
SCHEDULE = {"windows": [{"machine_ids": [{"hostname": "h1"}],
                         "unavailability": {"start": {"nanoseconds": 10**18}}}]}
MACHINES = [{"hostname": "h1"}]


def _call(kind: str, **body: Any) -> str:
    return json.dumps({"type": kind, kind.lower(): body} if body else {"type": kind})


def run(check: Any, acls: Acls = ACLS) -> None:
    """`check(server, client, agent id)` on a master with one agent, `acls` and HTTP
    authentication on."""
    async def main() -> None:
        server = _server(MasterAuth(credentials=CREDS, acls=acls),
                         HttpAuth(credentials=CREDS, readonly=True, readwrite=True))
        server.feed(fx.Received(b"a1", m.RegisterAgent(m.AgentInfo(
            "h1", 5051, Resources.parse("cpus:2;mem:256")))))
        client = TestClient(TestServer(make_app(server)))
        await client.start_server()
        try:
            await check(server, client, next(iter(_master(server).agents)))
            assert server.core_errors == 0
        finally:
            await client.close()
            _close(server)

    asyncio.run(main())


async def _refused_then_done(client: TestClient, path: str, body: str, done: Any) -> None:
    r = await client.post(path, data=body)
    assert r.status == 401
    r = await client.post(path, data=body, headers=DEV)
    assert r.status == 403, await r.text()
    assert "not authorized" in (await r.json())["message"]
    assert not done()
    r = await client.post(path, data=body, headers=OPS)
    assert r.status == 200, await r.text()
    assert done()


def test_maintenance_through_the_old_endpoints() -> None:
    async def check(server: Any, client: TestClient, aid: str) -> None:
        reg = _master(server).registry
        await _refused_then_done(client, "/maintenance/schedule", json.dumps(SCHEDULE),
                                 lambda: bool(reg.schedule))
        await _refused_then_done(client, "/machine/down", json.dumps(MACHINES),
                                 lambda: bool(reg.down))
        for who, windows in ((DEV, []), (OPS, SCHEDULE["windows"])):
            got = await (await client.get("/maintenance/schedule", headers=who)).json()
            assert [w["machine_ids"] for w in got["windows"]] == \
                [w["machine_ids"] for w in windows]
        hidden = await (await client.get("/maintenance/status", headers=DEV)).json()
        shown = await (await client.get("/maintenance/status", headers=OPS)).json()
        assert hidden == {"draining_machines": [], "down_machines": []}
        assert shown["down_machines"] == [{"hostname": "h1"}]
        await _refused_then_done(client, "/master/machine/up", json.dumps(MACHINES),
                                 lambda: not reg.down)

    run(check)


def test_maintenance_through_v1() -> None:
    async def check(server: Any, client: TestClient, aid: str) -> None:
        reg = _master(server).registry
        await _refused_then_done(client, "/api/v1", _call("UPDATE_MAINTENANCE_SCHEDULE",
                                                          schedule=SCHEDULE),
                                 lambda: bool(reg.schedule))
        await _refused_then_done(client, "/api/v1", _call("START_MAINTENANCE",
                                                          machines=MACHINES),
                                 lambda: bool(reg.down))
        hidden_views: list[tuple[str, str, dict[str, Any]]] = [
            ("GET_MAINTENANCE_SCHEDULE", "schedule", {"windows": []}),
            ("GET_MAINTENANCE_STATUS", "status", {"draining_machines": [], "down_machines": []})]
        for kind, field, empty in hidden_views:
            hidden = await (await client.post("/api/v1", data=_call(kind), headers=DEV)).json()
            shown = await (await client.post("/api/v1", data=_call(kind), headers=OPS)).json()
            assert hidden[kind.lower()][field] == empty and shown[kind.lower()][field] != empty
        await _refused_then_done(client, "/api/v1", _call("STOP_MAINTENANCE",
                                                          machines=MACHINES),
                                 lambda: not reg.down)

    run(check)


def test_drain_deactivate_reactivate_and_mark_gone_through_v1() -> None:
    async def check(server: Any, client: TestClient, aid: str) -> None:
        reg = _master(server).registry
        agent = {"agent_id": {"value": aid}}
        await _refused_then_done(client, "/api/v1", _call("DEACTIVATE_AGENT", **agent),
                                 lambda: aid in reg.deactivated)
        await _refused_then_done(client, "/api/v1", _call("REACTIVATE_AGENT", **agent),
                                 lambda: aid not in reg.deactivated)
        await _refused_then_done(client, "/api/v1", _call("DRAIN_AGENT", **agent),
                                 lambda: reg.deactivated.get(aid) is not None)
        await _refused_then_done(client, "/api/v1", _call("MARK_AGENT_GONE", **agent),
                                 lambda: aid in reg.gone)

    run(check)


def test_drain_that_marks_gone_needs_mark_agents_gone_too() -> None:
    acls = parse_acls({"drain_agents": [{"principals": ANY_, "agents": ANY_}],
                       "mark_agents_gone": [{"principals": {"values": ["dev"]},
                                             "agents": NONE_}]})

    async def check(server: Any, client: TestClient, aid: str) -> None:
        body = _call("DRAIN_AGENT", agent_id={"value": aid}, mark_gone=True)
        r = await client.post("/api/v1", data=body, headers=DEV)
        assert r.status == 403 and "mark_agents_gone" in (await r.json())["message"]
        assert aid not in _master(server).registry.deactivated
        r = await client.post("/api/v1", data=body, headers=OPS)
        assert r.status == 200, await r.text()
        assert aid not in _master(server).registry.admitted  # idle: drained and removed

    run(check, acls)


def test_v1_weights_and_quota_follow_the_acls() -> None:
    async def check(server: Any, client: TestClient, aid: str) -> None:
        reg = _master(server).registry
        await _refused_then_done(client, "/api/v1", _call(
            "UPDATE_WEIGHTS", weight_infos=[{"role": "ads", "weight": 2.0}]),
            lambda: reg.weights.get("ads") == 2.0)
        quota = {"role": "ads", "guarantee": [{"name": "cpus", "type": "SCALAR",
                                               "scalar": {"value": 1}}]}
        await _refused_then_done(client, "/api/v1", _call("SET_QUOTA", quota_request=quota),
                                 lambda: "ads" in reg.quotas)
        await _refused_then_done(client, "/api/v1", _call("REMOVE_QUOTA", role="ads"),
                                 lambda: "ads" not in reg.quotas)

    run(check)


def test_without_acls_everything_stays_permitted() -> None:
    async def main() -> None:
        server = _server(MasterAuth(), HttpAuth())
        client = TestClient(TestServer(make_app(server)))
        await client.start_server()
        try:
            r = await client.post("/maintenance/schedule", data=json.dumps(SCHEDULE))
            assert r.status == 200 and _master(server).registry.schedule
            got = await (await client.get("/maintenance/schedule")).json()
            assert got["windows"][0]["machine_ids"] == MACHINES
        finally:
            await client.close()
            _close(server)

    asyncio.run(main())


def test_unreserve_by_the_reserver_principal_through_v1_and_the_old_endpoint() -> None:
    acls = parse_acls({"unreserve_resources": [
        {"principals": {"values": ["ops"]}, "reserver_principals": ANY_},
        {"principals": {"values": ["dev"]}, "reserver_principals": {"values": ["dev"]}},
        {"principals": ANY_, "reserver_principals": NONE_}]})

    async def check(server: Any, client: TestClient, aid: str) -> None:
        cpu = Resources.parse("cpus(web):1")
        form = {"slaveId": aid, "resources": json.dumps(cpu.to_json())}
        v1 = _call("UNRESERVE_RESOURCES", agent_id={"value": aid}, resources=cpu.to_json())
        reg = _master(server).registry
        for path in ("/master/reserve", "/reserve"):  # one cpu reserved by each
            who = OPS if path == "/reserve" else DEV
            assert (await client.post(path, data=form, headers=who)).status == 202
        assert reg.reserved[aid].by_principal() == {"dev": cpu, "ops": cpu}
        r = await client.post("/master/unreserve", data=form)
        assert r.status == 401
        r = await client.post("/master/unreserve", data=form, headers=DEV)  # dev's own
        assert r.status == 202 and reg.reserved[aid].by_principal() == {"ops": cpu}
        for path, body in (("/master/unreserve", form), ("/unreserve", form),
                           ("/api/v1", v1)):
            r = await client.post(path, data=body, headers=DEV)  # only ops' is left
            assert r.status == 403, await r.text()
            assert "reserved by 'ops'" in (await r.json())["message"]
        assert reg.reserved[aid].by_principal() == {"ops": cpu}
        r = await client.post("/api/v1", data=v1, headers=OPS)
        assert r.status == 202 and aid not in reg.reserved
        state = await (await client.get("/master/state", headers=OPS)).json()
        assert state["slaves"][0]["reserved_resources_full"] == {}

    run(check, acls)
