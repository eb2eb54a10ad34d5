"""CURVE on the transports (real sockets on loopback), the ZAP decision, key choice, and the
small security helpers (flag redaction, Basic parsing)."""
from __future__ import annotations

import asyncio
import base64
import logging

import pytest
import zmq
import zmq.asyncio
import zmq.auth

from mesos_common import messages as m
from mesos_common.auth.credentials import Credential, Credentials
from mesos_common.auth.flags import HIDDEN, redacted
from mesos_common.auth.http import basic_principal
from mesos_common.curve import (
    CurveError,
    PeerSecurity,
    ensure_master_cert,
    load_public_cert,
    load_secret_cert,
)
from mesos_common.leader import MasterInfo, parse_master_spec
from mesos_common.resources import Resources
from mesos_common.transport import DealerTransport, RouterTransport
from mesos_common.zap import ZapHandler, decide


async def _send_until_up(dealer: DealerTransport, msg) -> None:
    for _ in range(200):
        if dealer.send(msg):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never connected")


def test_curve_round_trip_with_authenticate_first(tmp_path):
    public_path, secret_path = ensure_master_cert(str(tmp_path))
    keys = load_secret_cert(secret_path)
    assert ensure_master_cert(str(tmp_path)) == (public_path, secret_path)  # made once

    async def main():
        ctx = zmq.asyncio.Context()
        zap = ZapHandler(ctx)
        router = RouterTransport(ctx, curve_keys=keys)
        endpoint = router.bind("tcp://127.0.0.1:0")
        zap_task = asyncio.ensure_future(zap.run())
        security = PeerSecurity.from_flags(public_path, Credential("agent", "pw"))
        dealer = DealerTransport(ctx, security=security)
        dealer.connect(endpoint)
        try:
            info = m.AgentInfo("h", 1, Resources.parse("cpus:1"))
            await _send_until_up(dealer, m.RegisterAgent(info))
            first = await asyncio.wait_for(router.recv(), 5)
            second = await asyncio.wait_for(router.recv(), 5)
            assert first[1] == m.Authenticate("agent", "pw")
            assert second[1] == m.RegisterAgent(info)
            dealer.send(m.Heartbeat())  # not a registration: no Authenticate before it
            assert (await asyncio.wait_for(router.recv(), 5))[1] == m.Heartbeat()
            assert zap.counts["allowed"] == 1
        finally:
            zap_task.cancel()
            dealer.close()
            router.close()
            zap.close()
            ctx.destroy(linger=0)

    asyncio.run(main())


def test_zap_decisions():
    key = b"k" * 32
    reply, ok = decide([b"1.0", b"7", b"corral", b"127.0.0.1", b"id", b"CURVE", key])
    assert ok and reply[:4] == [b"1.0", b"7", b"200", b"OK"]
    assert decide([b"1.0", b"7", b"", b"a", b"id", b"NULL"]) == (
        [b"1.0", b"7", b"400", b"CURVE required", b"", b""], False)
    assert decide([b"x"])[0][2] == b"500"
    assert decide([b"2.0", b"7", b"", b"a", b"id", b"CURVE", key])[0][2] == b"500"


def test_key_choice_pinned_or_published(tmp_path, caplog):
    public, _ = zmq.auth.create_certificates(str(tmp_path), "m")
    pinned = PeerSecurity.from_flags(public, None)
    other = zmq.curve_keypair()[0].decode()
    with caplog.at_level(logging.WARNING):
        assert pinned.server_key(other, "src") == pinned.master_public_key
    assert "other than --master_public_key" in caplog.text
    caplog.clear()
    trusting = PeerSecurity()
    with caplog.at_level(logging.WARNING):
        assert trusting.server_key(other, "src") == other.encode()
        assert trusting.server_key(other, "src") == other.encode()
    assert caplog.text.count("trusting the CURVE key") == 1
    assert trusting.server_key(None, "src") is None


def test_flags_redacted_and_basic_parsing():
    shown = redacted({"credentials": "/etc/creds.json", "acls": '{"permissive": false}',
                      "secret": "pw", "credential": '{"principal": "a", "secret": "b"}'})
    assert shown == {"credentials": "/etc/creds.json", "acls": '{"permissive": false}',
                     "secret": HIDDEN, "credential": HIDDEN}
    creds = Credentials([Credential("ops", "pw:with:colons")])
    token = base64.b64encode(b"ops:pw:with:colons").decode()
    assert basic_principal(f"Basic {token}", creds) == "ops"
    for bad in (None, "", "Bearer x", "Basic !!!", "Basic \u00e9t\u00e9",
                "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
                "Basic " + base64.b64encode(b"ops").decode(),
                "Basic " + base64.b64encode(b"ops:nope").decode()):
        assert basic_principal(bad, creds) is None


@pytest.mark.parametrize("text", ["not a cert", ""])
def test_bad_certificates_are_clear(tmp_path, text):
    bad = tmp_path / "bad.key"
    bad.write_text(text)
    with pytest.raises(CurveError):
        load_public_cert(str(bad))


def test_master_info_carries_the_published_key_and_https_specs_parse():
    base = {"id": "M", "hostname": "h", "ip": "1.2.3.4", "port": 5050,
            "zmq_endpoint": "tcp://1.2.3.4:5049", "version": "1"}
    assert MasterInfo.from_json(base).curve_public_key is None
    assert MasterInfo.from_json({**base, "zmq_curve_public_key": "k" * 40}).curve_public_key \
        == "k" * 40
    assert parse_master_spec("https://a:5050,https://b:5051") == [("a", 5050), ("b", 5051)]
