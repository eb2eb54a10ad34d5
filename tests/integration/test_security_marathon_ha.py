"""HA Marathons serving HTTPS with --http_credentials on a private ZooKeeper: a standby
proxies to the leader over HTTPS, checking the leader's certificate against --ssl_ca, with
the client's credentials passed through; without the CA it refuses to proxy (503)."""
from __future__ import annotations

import pytest
import requests

from mesos_master import local_secure
from tests.helpers import wait_for
from tests.integration.test_marathon_ha import SLEEPER, Marathons

pytestmark = pytest.mark.slow

AUTH = ("ops", "s3cret-marathon-pw")


def test_a_standby_proxies_to_an_https_leader_with_the_clients_credentials(
        marathons: Marathons, tmp_path) -> None:
    files = local_secure.ensure(tmp_path / "work", "127.0.0.1")
    tls = (f"--ssl_cert={files.cert}", f"--ssl_key={files.key}",
           f"--http_credentials={AUTH[0]}:{AUTH[1]}")
    marathons.extra = (*tls, f"--ssl_ca={files.ca}")
    marathons.start()
    marathons.start()

    def get(i: int, path: str, **kw) -> requests.Response:
        return requests.get(f"https://127.0.0.1:{marathons.ports[i]}{path}",
                            verify=str(files.ca), timeout=10, **kw)

    def leader() -> tuple[int] | None:
        for i in range(2):
            r = get(i, "/v2/info", auth=AUTH)
            if r.status_code == 200 and r.json()["elected"]:
                return (i,)
        return None
    (lead,) = wait_for(leader, 30, 0.2, "an elected Marathon")
    standby, blind = 1 - lead, 2
    marathons.extra = tls  # a standby that trusts only the system's CAs, not the leader's
    marathons.start()
    r = requests.post(f"https://127.0.0.1:{marathons.ports[standby]}/v2/apps", json=SLEEPER,
                      auth=AUTH, verify=str(files.ca), timeout=10)
    assert r.status_code == 201, r.text
    assert r.headers["X-Marathon-Leader"] == f"https://127.0.0.1:{marathons.ports[lead]}"
    assert get(standby, "/v2/apps/prod/sleeper", auth=AUTH).json()["app"]["id"] == SLEEPER["id"]
    assert get(standby, "/v2/apps").status_code == 401  # the standby checks credentials too
    r = get(blind, "/v2/apps", auth=AUTH)
    assert r.status_code == 503 and "Could not reach the leader" in r.json()["message"]
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{marathons.ports[standby]}/v2/apps", timeout=5)
    logs = [p.read_text() for p in (tmp_path / "logs").glob("marathon*.log")]
    assert len(logs) == 3 and not [text for text in logs if AUTH[1] in text]
