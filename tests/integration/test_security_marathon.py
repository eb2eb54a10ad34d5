"""Marathon's door: --http_credentials (Basic on the whole API but /ping), the real
marathon-python client with credentials, HTTPS with --ssl_cert/--ssl_key, and Marathon
authenticating to a master that requires it (--mesos_authentication_principal)."""
from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.integration.marathon_helpers import start_marathon
from tests.integration.security_helpers import FW_SECRET, self_signed, write_credentials
from tests.integration.test_marathon_client_compat import client_python
from tests.integration.test_security_http import call

pytestmark = pytest.mark.slow

SMALL = "cpus:1;mem:256;disk:256;ports:[31000-31005]"
CLIENT = r"""
import collections, collections.abc, json, sys
collections.Iterable = collections.abc.Iterable
from marathon import MarathonClient
from marathon.models import MarathonApp
url, user, password = sys.argv[1:4]
out = {}
try:
    MarathonClient(url).list_apps()
    out["anonymous"] = "allowed"
except Exception as e:
    out["anonymous"] = type(e).__name__ + " " + str(getattr(e, "status_code", ""))
client = MarathonClient(url, username=user, password=password)
out["ping"] = client.ping().decode() if isinstance(client.ping(), bytes) else str(client.ping())
out["create"] = client.create_app("auth-app", MarathonApp(cmd="sleep 600", cpus=0.1, mem=16,
                                                          instances=1)).id
out["apps"] = [a.id for a in client.list_apps()]
print(json.dumps(out))
"""


def test_http_credentials_and_the_real_client(cluster, tmp_path: Path):
    creds = write_credentials(tmp_path / "secrets")
    cluster.start_master(f"--credentials={creds['master']}", "--authenticate_frameworks")
    cluster.start_agent(SMALL)
    cluster.wait_agents(1)
    secret_file = tmp_path / "secrets" / "marathon.secret"
    secret_file.write_text(FW_SECRET + "\n")
    marathon = start_marathon(tmp_path, cluster.master_addr, 0,
                              "--http_credentials=ops:op-pw,dev:dev-pw",
                              "--mesos_authentication_principal=fw",
                              f"--mesos_authentication_secret_file={secret_file}")
    try:
        base = marathon.field("http")
        assert call(f"{base}/ping")[0] == 200
        for path in ("/v2/apps", "/v2/info", "/v2/deployments", "/v2/tasks", "/v2/queue", "/"):
            status, headers, _ = call(base + path)
            assert status == 401, path
            assert headers["WWW-Authenticate"] == 'Basic realm="Mesosphere"', path
            assert call(base + path, ("ops", "wrong"))[0] == 401, path
            assert call(base + path, ("ops", "op-pw"))[0] == 200, path
        state = wait_for(lambda: (s := cluster.state())["frameworks"] and s, 30,
                         what="Marathon subscribed")
        assert [f["principal"] for f in state["frameworks"]] == ["fw"]
        r = subprocess.run([str(client_python()), "-I", "-c", CLIENT, base, "dev", "dev-pw"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["anonymous"].startswith("MarathonHttpError") and "401" in out["anonymous"]
        assert out["create"] == "/auth-app" and out["apps"] == ["/auth-app"]
        info = json.loads(call(f"{base}/v2/info", ("ops", "op-pw"))[2])
        assert "op-pw" not in json.dumps(info) and FW_SECRET not in json.dumps(info)
        assert FW_SECRET not in (tmp_path / "logs" / "marathon.log").read_text()
    finally:
        marathon.stop()


def test_marathon_https(cluster, tmp_path: Path):
    cert, key = self_signed(tmp_path)
    cluster.start_master()
    marathon = start_marathon(tmp_path, cluster.master_addr, 0, f"--ssl_cert={cert}",
                              f"--ssl_key={key}")
    try:
        base = marathon.field("http")
        assert base.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(cert))
        assert call(f"{base}/v2/info", context=ctx)[0] == 200
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            call(base.replace("https://", "http://") + "/v2/info")
    finally:
        marathon.stop()
