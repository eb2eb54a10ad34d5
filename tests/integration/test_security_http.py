"""The HTTP door: Basic authentication on master and agent (401, 200, 403 for ACLs), 413
for an oversized body, HTTPS with --ssl_cert/--ssl_key (and plain HTTP to it failing), and
no secret in any endpoint or log."""
from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mesos_common.daemons import python_module, spawn
from tests.helpers import wait_for
from tests.integration.security_helpers import (
    AGENT_SECRET,
    DEV_SECRET,
    OPS_SECRET,
    grep_secrets,
    self_signed,
    write_credentials,
)

pytestmark = pytest.mark.slow

SMALL = "cpus:1;mem:256;disk:256;ports:[31000-31005]"
ACLS = {"update_weights": [{"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}},
                           {"principals": {"type": "ANY"}, "roles": {"type": "NONE"}}],
        "get_endpoints": [{"principals": {"values": ["dev"]}, "paths": {"type": "NONE"}}]}


def call(url: str, auth: tuple[str, str] | None = None, method: str = "GET",
         body: bytes | None = None, context: ssl.SSLContext | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


OPS = ("ops", OPS_SECRET)
DEV = ("dev", DEV_SECRET)


def test_master_and_agent_basic_auth_acls_and_413(cluster, tmp_path: Path):
    creds = write_credentials(tmp_path / "secrets")
    cluster.start_master(f"--credentials={creds['master']}", "--authenticate_http_readonly",
                         "--authenticate_http_readwrite", f"--acls={json.dumps(ACLS)}")
    agent = cluster.start_agent(SMALL, f"--http_credentials={creds['master']}",
                                "--authenticate_http_readonly",
                                "--authenticate_http_readwrite")
    base = f"http://{cluster.master_addr}"
    # Peers still find the master, and the agent registers: /master/info stays open.
    assert call(f"{base}/master/info")[0] == 200
    assert call(f"{base}/health")[0] == 200
    wait_for(lambda: len(json.loads(call(f"{base}/master/state", OPS)[2])["slaves"]) == 1, 30,
             what="the agent registered")
    for path in ("/master/state", "/metrics/snapshot", "/master/flags", "/master/tasks",
                 "/master/roles", "/master/quota"):
        status, headers, _ = call(base + path)
        assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="mesos"', path
        assert call(base + path, ("ops", "wrong"))[0] == 401, path
        assert call(base + path, OPS)[0] == 200, path
    body = json.dumps([{"role": "ads", "weight": 2.0}]).encode()
    assert call(f"{base}/master/weights", method="PUT", body=body)[0] == 401
    assert call(f"{base}/master/weights", DEV, "PUT", body)[0] == 403  # update_weights ACL
    assert call(f"{base}/master/weights", OPS, "PUT", body)[0] == 200
    assert call(f"{base}/metrics/snapshot", DEV)[0] == 403  # get_endpoints ACL
    assert call(f"{base}/master/state", DEV)[0] == 200
    status, _, text = call(f"{base}/master/weights", OPS, "PUT", b"[" + b" " * (2 << 20) + b"]")
    assert status == 413 and b"exceeded" in text
    agent_base = agent.field("http")
    for path in ("/state", "/monitor/statistics", "/files/browse?path=/"):
        assert call(agent_base + path)[0] == 401, path
        assert call(agent_base + path, OPS)[0] != 401, path  # /files: its own 403 outside sandboxes
    assert call(agent_base + "/health")[0] == 200
    texts = {p.name: p.read_text() for p in (tmp_path / "logs").glob("*.log")}
    for path in ("/master/state", "/master/flags", "/metrics/snapshot", "/master/info"):
        texts[path] = call(base + path, OPS)[2].decode()
    texts["agent /state"] = call(agent_base + "/state", OPS)[2].decode()
    assert not grep_secrets(texts)
    assert AGENT_SECRET not in texts["/master/flags"]


def test_https_answers_and_plain_http_fails(cluster, tmp_path: Path):
    cert, key = self_signed(tmp_path)
    master = cluster.start_master(f"--ssl_cert={cert}", f"--ssl_key={key}")
    assert master.field("http").startswith("https://")
    ctx = ssl.create_default_context(cafile=str(cert))
    base = f"https://{cluster.master_addr}"
    assert call(f"{base}/master/info", context=ctx)[0] == 200
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        call(f"http://{cluster.master_addr}/master/info")
    # An agent finds the HTTPS master (CA from LIBPROCESS_SSL_CA_FILE) and serves HTTPS too.
    env_before = os.environ.get("LIBPROCESS_SSL_CA_FILE")
    os.environ["LIBPROCESS_SSL_CA_FILE"] = str(cert)
    try:
        work = tmp_path / "tls-agent"
        agent = spawn("tls-agent", python_module(
            "mesos_agent", f"--master=https://{cluster.master_addr}", "--ip=127.0.0.1",
            "--port=0", f"--work_dir={work}", f"--resources={SMALL}", f"--ssl_cert={cert}",
            f"--ssl_key={key}"), tmp_path / "logs" / "tls-agent.log", "mesos-agent: listening")
    finally:
        if env_before is None:
            os.environ.pop("LIBPROCESS_SSL_CA_FILE", None)
        else:
            os.environ["LIBPROCESS_SSL_CA_FILE"] = env_before
    cluster.agents.append(agent)
    cluster.agent_dirs.append(work)
    wait_for(lambda: len(json.loads(call(f"{base}/master/state", context=ctx)[2])["slaves"])
             == 1, 30, what="the agent registered over an HTTPS detection")
    agent_url = agent.field("http")
    assert agent_url.startswith("https://")
    assert call(f"{agent_url}/state", context=ctx)[0] == 200
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        call(agent_url.replace("https://", "http://") + "/state")
