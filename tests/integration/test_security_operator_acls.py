"""Mesos ACLs on the operator calls, on a real master: maintenance, drain, deactivate, mark
gone and unreserve, through the v1 operator API and the old endpoints. A refused principal
gets 403 and changes nothing; an allowed one makes the change."""
from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.integration.security_helpers import write_credentials
from tests.integration.test_security_http import DEV, OPS, call
from tests.unit.auth.test_acls import IMPLICIT

pytestmark = pytest.mark.slow

SMALL = "cpus:2;mem:512;disk:256;ports:[31000-31005]"
ANY_, NONE_ = {"type": "ANY"}, {"type": "NONE"}
# ops may do all of it and undo anyone's reservations; dev may undo only its own.
ACLS = {
    **{a: [{"principals": {"values": ["ops"]}, f: ANY_}, {"principals": ANY_, f: NONE_}]
       for a, f in IMPLICIT.items()},
    "unreserve_resources": [
        {"principals": {"values": ["ops"]}, "reserver_principals": ANY_},
        {"principals": {"values": ["dev"]}, "reserver_principals": {"values": ["dev"]}},
        {"principals": ANY_, "reserver_principals": NONE_}]}


def start(cluster, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    creds = write_credentials(tmp_path / "secrets")
    cluster.start_master(f"--credentials={creds['master']}", "--authenticate_http_readwrite",
                         f"--acls={json.dumps(ACLS)}")
    cluster.start_agent(SMALL)
    base = f"http://{cluster.master_addr}"
    agent = wait_for(lambda: (cluster.state()["slaves"] or [None])[0], 30, what="the agent")
    return base, agent


def v1(base: str, who: Any, kind: str, **body: Any) -> tuple[int, bytes]:
    data = json.dumps({"type": kind, kind.lower(): body} if body else {"type": kind})
    status, _, text = call(f"{base}/api/v1", who, "POST", data.encode())
    return status, text


def refused_then_done(do: Any, done: Any) -> None:
    """401 without credentials, 403 for dev with nothing changed, then done by ops."""
    assert do(None)[0] == 401
    status, text = do(DEV)
    assert status == 403 and b"not authorized" in text, text
    assert not done()
    status, text = do(OPS)
    assert status in (200, 202), text
    wait_for(done, 10, what="the change")


def test_maintenance_drain_deactivate_and_mark_gone(cluster, tmp_path):
    base, agent = start(cluster, tmp_path)
    aid, host = agent["id"], agent["hostname"]
    machines = [{"hostname": host}]
    schedule = {"windows": [{"machine_ids": machines,
                             "unavailability": {"start": {"nanoseconds": 10**18}}}]}

    def post(path: str, doc: Any) -> Any:
        return lambda who: call(base + path, who, "POST", json.dumps(doc).encode())[::2]

    def windows() -> list:
        return json.loads(call(f"{base}/maintenance/schedule", OPS)[2])["windows"]

    def down() -> list:
        return json.loads(call(f"{base}/maintenance/status", OPS)[2])["down_machines"]

    def slave() -> dict:
        return next((a for a in cluster.state()["slaves"] if a["id"] == aid), {})

    # Agents: deactivate, reactivate, drain, mark gone (v1 only, as in Mesos).
    agent_id = {"agent_id": {"value": aid}}
    refused_then_done(lambda who: v1(base, who, "DEACTIVATE_AGENT", **agent_id),
                      lambda: slave().get("deactivated") is True)
    refused_then_done(lambda who: v1(base, who, "REACTIVATE_AGENT", **agent_id),
                      lambda: slave().get("deactivated") is False)
    refused_then_done(lambda who: v1(base, who, "DRAIN_AGENT", **agent_id),
                      lambda: slave().get("drain_info", {}).get("state") == "DRAINED")
    refused_then_done(lambda who: v1(base, who, "MARK_AGENT_GONE", **agent_id),
                      lambda: slave() == {})
    # Maintenance of its machine: the old endpoints, then v1 (up also ends the window).
    refused_then_done(post("/maintenance/schedule", schedule), lambda: bool(windows()))
    assert json.loads(call(f"{base}/maintenance/schedule", DEV)[2])["windows"] == []
    refused_then_done(post("/machine/down", machines), lambda: down() == machines)
    assert json.loads(call(f"{base}/maintenance/status", DEV)[2])["down_machines"] == []
    refused_then_done(post("/machine/up", machines), lambda: down() == [] == windows())
    refused_then_done(lambda who: v1(base, who, "UPDATE_MAINTENANCE_SCHEDULE",
                                     schedule=schedule), lambda: bool(windows()))
    hidden = json.loads(v1(base, DEV, "GET_MAINTENANCE_SCHEDULE")[1])
    assert hidden["get_maintenance_schedule"]["schedule"] == {"windows": []}
    refused_then_done(lambda who: v1(base, who, "START_MAINTENANCE", machines=machines),
                      lambda: down() == machines)
    hidden = json.loads(v1(base, DEV, "GET_MAINTENANCE_STATUS")[1])
    assert hidden["get_maintenance_status"]["status"]["down_machines"] == []
    refused_then_done(lambda who: v1(base, who, "STOP_MAINTENANCE", machines=machines),
                      lambda: down() == [])


def test_unreserve_only_what_the_reserver_principal_allows(cluster, tmp_path):
    base, agent = start(cluster, tmp_path)
    aid = agent["id"]
    cpu = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": "web"}]
    form = urllib.parse.urlencode({"slaveId": aid, "resources": json.dumps(cpu)}).encode()

    def reservers() -> list:
        full = next(a for a in cluster.state()["slaves"] if a["id"] == aid)[
            "reserved_resources_full"]
        return sorted(r["reservations"][-1].get("principal") for r in full.get("web", []))

    assert call(f"{base}/master/reserve", OPS, "POST", form)[0] == 202
    assert call(f"{base}/reserve", DEV, "POST", form)[0] == 202
    assert reservers() == ["dev", "ops"]  # who made each, in /master/state
    agents = json.loads(v1(base, OPS, "GET_AGENTS")[1])["get_agents"]["agents"]
    assert sorted(r["reservations"][-1].get("principal") for r in agents[0]["total_resources"]
                  if r.get("reservations")) == ["dev", "ops"]
    # dev undoes its own cpu; the one left is ops', refused to dev on every door.
    assert call(f"{base}/master/unreserve", None, "POST", form)[0] == 401
    assert call(f"{base}/master/unreserve", DEV, "POST", form)[0] == 202
    assert reservers() == ["ops"]
    status, _, text = call(f"{base}/unreserve", DEV, "POST", form)
    assert status == 403 and b"reserved by 'ops'" in text
    status, text = v1(base, DEV, "UNRESERVE_RESOURCES", agent_id={"value": aid}, resources=cpu)
    assert status == 403 and b"reserved by 'ops'" in text
    assert reservers() == ["ops"]
    status, text = v1(base, OPS, "UNRESERVE_RESOURCES", agent_id={"value": aid}, resources=cpu)
    assert status == 202, text
    assert reservers() == []
