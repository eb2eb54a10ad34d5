"""The master's HTTP app with authentication and ACLs (in process): teardown, weights and
quota refused (403) or done, state filtered, flags redacted."""
from __future__ import annotations

import asyncio
import base64
import json

import zmq.asyncio
from aiohttp.test_utils import TestClient, TestServer

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.auth.acls import parse_acls
from mesos_common.auth.credentials import Credential, Credentials
from mesos_common.auth.http import HttpAuth
from mesos_common.resources import Resources
from mesos_common.transport import RouterTransport
from mesos_master.auth_config import MasterAuth
from mesos_master.core import Master
from mesos_master.http import make_app
from mesos_master.registry.base import MemoryRegistry
from mesos_master.reservations import Reservations
from mesos_master.server import MasterServer, ServerOptions

CREDS = Credentials([Credential("ops", "ops-pw"), Credential("dev", "dev-pw"),
                     Credential("fw", "fw-pw")])
ACLS = parse_acls({
    "teardown_frameworks": [{"principals": {"values": ["ops"]},
                             "framework_principals": {"type": "ANY"}},
                            {"principals": {"type": "ANY"},
                             "framework_principals": {"type": "NONE"}}],
    "update_quotas": [{"principals": {"values": ["dev"]}, "roles": {"type": "NONE"}}],
    "view_frameworks": [{"principals": {"values": ["dev"]}, "users": {"values": ["alice"]}},
                        {"principals": {"values": ["dev"]}, "users": {"type": "NONE"}}]})


def _server(auth: MasterAuth, http: HttpAuth, **kw) -> MasterServer:
    """A master server not run: its core and HTTP app, a ROUTER nobody connects to (call
    inside a running loop: the core's timers go on it)."""
    opts = ServerOptions(port=0, zmq_port=0, registry="in_memory", auth=auth, http_auth=http,
                         **kw)
    server = MasterServer(opts, registry=MemoryRegistry(), master_id="M")
    server.transport = RouterTransport(zmq.asyncio.Context())
    server.master = server._make_master()
    server.feed(fx.Start())
    return server


def _master(server: MasterServer) -> Master:
    assert server.master is not None
    return server.master


def _close(server: MasterServer) -> None:
    server.timers.close()
    assert server.transport is not None
    server.transport.close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_teardown_quota_and_state_by_principal() -> None:
    async def main() -> None:
        server = _server(MasterAuth(credentials=CREDS, acls=ACLS),
                         HttpAuth(credentials=CREDS, readonly=True, readwrite=True),
                         flags={"credentials": "/etc/creds.json"})
        for peer, user in ((b"f1", "alice"), (b"f2", "bob")):
            server.feed(fx.Received(peer, m.Authenticate("fw", "fw-pw")))
            server.feed(fx.Received(peer, m.Subscribe(m.FrameworkInfo(user, user=user))))
        fw_ids = sorted(_master(server).frameworks)
        client = TestClient(TestServer(make_app(server)))
        await client.start_server()
        ops = {"Authorization": _basic("ops", "ops-pw")}
        dev = {"Authorization": _basic("dev", "dev-pw")}
        try:
            r = await client.post("/master/teardown", data={"frameworkId": fw_ids[0]})
            assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="mesos"'
            r = await client.post("/master/teardown", data={"frameworkId": fw_ids[0]}, headers=dev)
            assert r.status == 403 and "teardown_frameworks" in (await r.json())["message"]
            assert fw_ids[0] in _master(server).frameworks
            r = await client.post("/master/teardown", data={"frameworkId": fw_ids[0]}, headers=ops)
            assert r.status == 200 and fw_ids[0] not in _master(server).frameworks
            quota = {"role": "ads", "guarantee": [{"name": "cpus", "type": "SCALAR",
                                                   "scalar": {"value": 1}}]}
            r = await client.post("/master/quota", data=json.dumps(quota), headers=dev)
            assert r.status == 403
            r = await client.post("/master/quota", data=json.dumps(quota), headers=ops)
            assert r.status == 200
            state = await (await client.get("/master/state", headers=dev)).json()
            assert [f["user"] for f in state["frameworks"]] == []  # bob's; alice's is gone
            state = await (await client.get("/master/state", headers=ops)).json()
            assert [f["principal"] for f in state["frameworks"]] == ["fw"]
            flags = await (await client.get("/master/flags", headers=ops)).json()
            assert flags["flags"]["credentials"] == "/etc/creds.json"
            assert (await client.get("/master/info")).status == 200
            assert server.core_errors == 0
        finally:
            await client.close()
            _close(server)

    asyncio.run(main())


def test_v1_subscribe_authenticates_with_basic_credentials() -> None:
    sub = json.dumps({"type": "SUBSCRIBE", "subscribe": {
        "framework_info": {"name": "v1", "user": "alice"}}})

    async def main() -> None:
        server = _server(MasterAuth(credentials=CREDS, authenticate_frameworks=True),
                         HttpAuth(credentials=CREDS))
        client = TestClient(TestServer(make_app(server)))
        await client.start_server()

        async def first_record(headers: dict[str, str]) -> bytes:
            r = await client.post("/api/v1/scheduler", data=sub, headers={
                "Content-Type": "application/json", **headers})
            assert r.status == 200
            return await asyncio.wait_for(r.content.readany(), 5)

        try:
            refused = await first_record({})
            assert b"ERROR" in refused and b"authentication required" in refused
            assert not _master(server).frameworks
            assert b"SUBSCRIBED" in await first_record({"Authorization": _basic("fw", "fw-pw")})
            assert [f.info.principal for f in _master(server).frameworks.values()] == ["fw"]
            assert server.core_errors == 0
        finally:
            await client.close()
            server.v1.close()
            _close(server)

    asyncio.run(main())


def test_v1_teardown_and_reservations_follow_the_acls() -> None:
    acls = parse_acls({
        "teardown_frameworks": [{"principals": {"values": ["ops"]},
                                 "framework_principals": {"type": "ANY"}},
                                {"principals": {"type": "ANY"},
                                 "framework_principals": {"type": "NONE"}}],
        "reserve_resources": [{"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}},
                              {"principals": {"type": "ANY"}, "roles": {"type": "NONE"}}]})

    async def main() -> None:
        server = _server(MasterAuth(credentials=CREDS, acls=acls),
                         HttpAuth(credentials=CREDS, readonly=True, readwrite=True))
        server.feed(fx.Received(b"f1", m.Authenticate("fw", "fw-pw")))
        server.feed(fx.Received(b"f1", m.Subscribe(m.FrameworkInfo("alice", user="alice"))))
        server.feed(fx.Received(b"a1", m.RegisterAgent(m.AgentInfo(
            "h1", 5051, Resources.parse("cpus:2;mem:256")))))
        [fid], [aid] = list(_master(server).frameworks), list(_master(server).agents)
        client = TestClient(TestServer(make_app(server)))
        await client.start_server()
        ops = {"Authorization": _basic("ops", "ops-pw")}
        dev = {"Authorization": _basic("dev", "dev-pw")}
        reserve = json.dumps({"type": "RESERVE_RESOURCES", "reserve_resources": {
            "agent_id": {"value": aid},
            "resources": Resources.parse("cpus(web):1").to_json()}})
        teardown = json.dumps({"type": "TEARDOWN", "teardown": {"framework_id": {"value": fid}}})
        try:
            for body in (reserve, teardown):
                r = await client.post("/api/v1", data=body, headers=dev)
                assert r.status == 403, await r.text()
            assert not _master(server).agents[aid].reserved and fid in _master(server).frameworks
            r = await client.post("/api/v1", data=reserve, headers=ops)
            assert r.status == 202 and _master(server).registry.reserved[aid] == \
                Reservations.of({"ops": Resources.parse("cpus(web):1")})  # ops is the reserver
            r = await client.post("/api/v1", data=teardown, headers=ops)
            assert r.status == 200 and fid not in _master(server).frameworks
            assert server.core_errors == 0
        finally:
            await client.close()
            _close(server)

    asyncio.run(main())
