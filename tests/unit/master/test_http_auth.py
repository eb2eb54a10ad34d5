"""The master's HTTP app with authentication and ACLs (in process): teardown, weights and
quota refused (403) or done, state filtered, flags redacted."""
from __future__ import annotations

import asyncio
import base64
import json

from aiohttp.test_utils import TestClient, TestServer

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.auth.acls import parse_acls
from mesos_common.auth.credentials import Credential, Credentials
from mesos_common.auth.http import HttpAuth
from mesos_master.auth_config import MasterAuth
from mesos_master.http import make_app
from mesos_master.registry.base import MemoryRegistry
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


def _server() -> MasterServer:
    opts = ServerOptions(port=0, zmq_port=0, registry="in_memory",
                         auth=MasterAuth(credentials=CREDS, acls=ACLS),
                         http_auth=HttpAuth(credentials=CREDS, readonly=True, readwrite=True),
                         flags={"credentials": "/etc/creds.json"})
    server = MasterServer(opts, registry=MemoryRegistry(), master_id="M")
    server.master = server._make_master()
    server.feed(fx.Start())
    return server


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_teardown_quota_and_state_by_principal() -> None:
    server = _server()
    for peer, user in ((b"f1", "alice"), (b"f2", "bob")):
        server.master.handle(fx.Received(peer, m.Authenticate("fw", "fw-pw")), 1.0)
        server.master.handle(fx.Received(peer, m.Subscribe(m.FrameworkInfo(user, user=user))),
                             1.0)
    fw_ids = sorted(server.master.frameworks)

    async def main() -> None:
        client = TestClient(TestServer(make_app(server)))
        await client.start_server()
        ops = {"Authorization": _basic("ops", "ops-pw")}
        dev = {"Authorization": _basic("dev", "dev-pw")}
        try:
            r = await client.post("/master/teardown", data={"frameworkId": fw_ids[0]})
            assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="mesos"'
            r = await client.post("/master/teardown", data={"frameworkId": fw_ids[0]}, headers=dev)
            assert r.status == 403 and "teardown_frameworks" in (await r.json())["message"]
            assert fw_ids[0] in server.master.frameworks
            r = await client.post("/master/teardown", data={"frameworkId": fw_ids[0]}, headers=ops)
            assert r.status == 200 and fw_ids[0] not in server.master.frameworks
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
        finally:
            await client.close()

    asyncio.run(main())
