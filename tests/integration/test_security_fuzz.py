"""Fuzzing a master with authentication on: 10,000 generated ZeroMQ frames from
unauthenticated peers (garbage, wrong credentials, registrations) and 10,000 generated HTTP
requests leave it serving: no 5xx, nobody registered without a credential, an authenticated
agent still registers, no traceback and no secret in its log."""
from __future__ import annotations

import base64
import http.client
import json
from pathlib import Path

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mesos_common import codec
from mesos_common import messages as m
from mesos_common.resources import Resources
from tests.helpers import wait_for
from tests.integration.security_helpers import (
    AGENT_SECRET,
    OPS_SECRET,
    grep_secrets,
    write_credentials,
)
from tests.integration.test_master_protocol import _frames
from tests.integration.test_security_http import call

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=10_000, database=None, deadline=None, derandomize=True,
                phases=[Phase.generate], suppress_health_check=list(HealthCheck))
_info = m.AgentInfo("fuzz", 1, Resources.parse("cpus:1;mem:64"))
_auth_frames = st.builds(
    lambda p, s, reg: [codec.encode(m.Authenticate(p, s)), codec.encode(reg)],
    st.sampled_from(["agent", "fw", "ops", "", "x" * 300]), st.text(max_size=40),
    st.sampled_from([m.RegisterAgent(_info), m.Subscribe(m.FrameworkInfo("fuzz")),
                     m.ReregisterAgent("some-id", _info), m.Heartbeat()]))
_bad_auth = st.builds(lambda p, s: [msgpack.packb({"type": "Authenticate", "v": 1,
                                                   "principal": p, "secret": s})],
                      st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.binary(max_size=10)),
                      st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.text(max_size=5)))

_methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"])
_paths = st.one_of(
    st.sampled_from(["/master/state", "/master/flags", "/metrics/snapshot", "/master/weights",
                     "/master/quota", "/master/teardown", "/master/tasks?limit=-1",
                     "/master/tasks?limit=x", "/master/quota/ads", "/master/info", "/health",
                     "/files/read?path=../../etc/passwd", "/state?jsonp=x(", "/nope"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz/._-%?=&0123456789", max_size=40)
    .map(lambda p: "/" + p))
_auths = st.one_of(
    st.none(), st.just("Basic " + base64.b64encode(f"ops:{OPS_SECRET}".encode()).decode()),
    st.just("Basic " + base64.b64encode(b"ops:wrong").decode()),
    st.text(max_size=30).map(lambda t: "Basic " + t), st.just("Basic ===="))
_bodies = st.one_of(st.just(b""), st.binary(max_size=200),
                    st.sampled_from([b'[{"role": "ads", "weight": 2}]', b'{"role": "x"}',
                                     b"frameworkId=nope", b"[]", b"{}"]))


def test_fuzzed_frames_and_requests_leave_the_master_serving(cluster, tmp_path: Path):
    creds = write_credentials(tmp_path / "secrets")
    cluster.start_master(f"--credentials={creds['master']}", "--authenticate_agents",
                         "--authenticate_frameworks", "--authenticate_http_readonly",
                         "--authenticate_http_readwrite",
                         '--acls={"update_weights": [{"principals": {"type": "ANY"}, '
                         '"roles": {"values": ["ads"]}}]}')
    ctx = zmq.Context()
    socks = []
    try:
        for i in range(4):
            s = ctx.socket(zmq.DEALER)
            s.linger = 0
            s.identity = f"fuzz-{i}".encode()
            s.connect(cluster.master.field("zmq"))
            socks.append(s)
        sent = [0]

        @FUZZ
        @given(st.integers(0, 3), st.one_of(_frames, _auth_frames, _bad_auth))
        def throw(which: int, frames: list[bytes]) -> None:
            socks[which].send_multipart(frames)
            sent[0] += 1

        throw()
        assert sent[0] == 10_000
        for s in socks:
            while s.poll(300):
                s.recv_multipart()
    finally:
        ctx.destroy(linger=0)

    base = f"http://{cluster.master_addr}"
    statuses: dict[int, int] = {}
    conn = http.client.HTTPConnection(cluster.ip, cluster.master_port, timeout=10)

    @FUZZ
    @given(_methods, _paths, _auths, _bodies)
    def request(method: str, path: str, auth: str | None, body: bytes) -> None:
        headers = {} if auth is None else {"Authorization": auth}
        if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            body = b""
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            resp.read()
        except (http.client.HTTPException, OSError, ValueError):
            conn.close()  # a request http.client refuses to send; the next one reconnects
            return
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        assert resp.status < 500 or resp.status == 503, (method, path, resp.status)

    try:
        request()
    finally:
        conn.close()
    assert statuses.get(401, 0) > 0 and statuses.get(200, 0) > 0, statuses

    assert cluster.master.alive() and call(f"{base}/health")[0] == 200
    ops = ("ops", OPS_SECRET)
    assert json.loads(call(f"{base}/master/state", ops)[2])["slaves"] == []
    assert json.loads(call(f"{base}/master/state", ops)[2])["frameworks"] == []
    cluster.start_agent("cpus:1;mem:128", f"--credential={creds['agent']}")
    wait_for(lambda: len(json.loads(call(f"{base}/master/state", ops)[2])["slaves"]) == 1,
             30, what="an authenticated agent after the fuzzing")
    log = cluster.master.log_path.read_text()
    assert "Traceback" not in log and "master core failed" not in log, log[-3000:]
    assert not grep_secrets({"master.log": log}), "a secret in the master's log"
    assert AGENT_SECRET not in log
