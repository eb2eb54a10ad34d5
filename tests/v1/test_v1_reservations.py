"""Dynamic reservations against real daemons: a ZeroMQ SDK framework and a pymesos one reserve
from offers and get the reservation back in later offers of their role; the reservation
survives a master restart (SQLite registry) and an agent restart (its checkpoint); UNRESERVE
gives it back to `*`; the operator reserves and unreserves (v1 and /master/reserve)."""
from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from frameworks.scheduler import Scheduler, SchedulerDriver
from frameworks.tasks import reserve, unreserve
from mesos_common import messages as m
from mesos_common.resources import Resources
from tests.helpers import http_json, wait_for
from tests.v1.pymesos_env import pymesos_python

AGENT = "cpus:2;mem:512;disk:256"
WEB = Resources.parse("cpus(web):1;mem(web):128")
SCRIPT = Path(__file__).with_name("pymesos_reserve.py")
FAST = ("--allocation_interval=100ms", "--agent_ping_timeout=0.5secs",
        "--max_agent_ping_timeouts=4")


class Reserver(Scheduler):
    """Reserves WEB on its first offer; `unreserving` makes it hand back what it holds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reserved_offers: list[Resources] = []
        self.asked = False
        self.unreserving = False

    def resource_offers(self, driver, offers):
        for o in offers:
            mine = o.resources.reserved("web")
            with self.lock:
                if mine:
                    self.reserved_offers.append(mine)
                if not self.asked and not mine:
                    self.asked = True
                    driver.accept_offers([o.id], [reserve("cpus:1;mem:128", "web")], 0)
                elif self.unreserving and mine:
                    driver.accept_offers([o.id], [unreserve(mine)], 0)
                else:
                    driver.decline_offer([o.id], refuse_seconds=0.2)


def _reserved(cluster) -> dict:
    """The master's and the agent's view of the agent's reservations by role."""
    [agent] = cluster.state()["slaves"]
    return {"master": agent["reserved_resources"],
            "agent": http_json(f"{cluster.agents[0].field('http')}/state")["reserved_resources"]}


def _has_web(cluster, cpus: float) -> bool:
    views = _reserved(cluster)
    return all(v.get("web", {}).get("cpus", 0.0) == cpus for v in views.values())


@pytest.mark.slow
def test_sdk_reservation_survives_master_and_agent_restarts_and_unreserve_frees_it(cluster):
    cluster.start_master(*FAST)
    cluster.start_agent(AGENT)
    cluster.wait_agents(1)
    info = m.FrameworkInfo(name="reserver", roles=("web",), failover_timeout=300)
    sched = Reserver()
    driver = SchedulerDriver(sched, info, cluster.master_addr)
    driver.start()
    try:
        wait_for(lambda: WEB in sched.reserved_offers, 30, what="an offer with the reservation")
        wait_for(lambda: _has_web(cluster, 1.0), 10, what="the reservation on master and agent")
    finally:
        driver.stop(failover=True)
    # A restarted master (same work dir) knows it from its registry; then the agent restarts.
    cluster.master.stop()
    cluster.start_master(*FAST)
    cluster.wait_agents(1)
    assert _has_web(cluster, 1.0), _reserved(cluster)
    cluster.agents[0].stop()
    cluster.start_agent(AGENT, index=0)
    wait_for(lambda: cluster.state()["slaves"] and _has_web(cluster, 1.0), 30,
             what="the restarted agent with its reservation")
    # The framework comes back, is offered its reservation and unreserves it.
    sched = Reserver()
    sched.asked = sched.unreserving = True
    driver = SchedulerDriver(sched, info, cluster.master_addr)
    driver.start()
    try:
        wait_for(lambda: sched.reserved_offers, 30, what="the reservation offered again")
        wait_for(lambda: _reserved(cluster) == {"master": {}, "agent": {}}, 20,
                 what="the resources back to *")
    finally:
        driver.stop()


def _v1(addr: str, body: dict) -> requests.Response:
    return requests.post(f"http://{addr}/api/v1", json=body, timeout=10)


def test_operator_reserves_and_unreserves_through_v1_and_the_http_endpoints(cluster) -> None:
    cluster.start_master()
    cluster.start_agent(AGENT)
    cluster.wait_agents(1)
    addr = cluster.master_addr
    [agent] = cluster.state()["slaves"]
    res = Resources.parse("cpus(ops):1;mem(ops):64").to_json()
    call = {"agent_id": {"value": agent["id"]}, "resources": res}
    assert _v1(addr, {"type": "RESERVE_RESOURCES", "reserve_resources": call}).status_code == 202
    wait_for(lambda: _reserved(cluster)["agent"].get("ops", {}).get("cpus") == 1.0, 10,
             what="the agent told of the reservation")
    assert cluster.state()["slaves"][0]["reserved_resources"]["ops"]["mem"] == 64.0
    too_much = {**call, "resources": Resources.parse("cpus(ops):5").to_json()}
    assert _v1(addr, {"type": "RESERVE_RESOURCES", "reserve_resources": too_much}
               ).status_code == 409
    assert _v1(addr, {"type": "UNRESERVE_RESOURCES", "unreserve_resources": too_much}
               ).status_code == 409
    assert _v1(addr, {"type": "RESERVE_RESOURCES", "reserve_resources": {
        **call, "resources": Resources.parse("cpus:1").to_json()}}).status_code == 400
    assert _v1(addr, {"type": "UNRESERVE_RESOURCES", "unreserve_resources": call}
               ).status_code == 202
    wait_for(lambda: _reserved(cluster) == {"master": {}, "agent": {}}, 10, what="unreserved")
    # Mesos' form-encoded endpoints.
    form = {"slaveId": agent["id"], "resources": json.dumps(res)}
    r = requests.post(f"http://{addr}/master/reserve", data=form, timeout=10)
    assert r.status_code == 202, r.text
    assert cluster.state()["slaves"][0]["reserved_resources"]["ops"]["cpus"] == 1.0
    r = requests.post(f"http://{addr}/master/unreserve", data=form, timeout=10)
    assert r.status_code == 202, r.text
    assert cluster.state()["slaves"][0]["reserved_resources"] == {}
    assert requests.post(f"http://{addr}/master/reserve", data={"slaveId": agent["id"]},
                         timeout=10).status_code == 400


@pytest.mark.slow
def test_pymesos_reserves_from_an_offer_and_unreserves(cluster) -> None:
    py = pymesos_python()
    cluster.start_master("--allocation_interval=100ms")
    cluster.start_agent(AGENT)
    cluster.wait_agents(1)
    out = subprocess.run([str(py), "-I", str(SCRIPT), cluster.master_addr, "60"],
                         capture_output=True, text=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"], (result, out.stderr[-3000:])
    assert result["reserved"] == [["cpus", 1.0], ["mem", 64.0]]
    assert _reserved(cluster) == {"master": {}, "agent": {}}


def test_pymesos_operator_client_reserves_unreserves_and_marks_the_agent_gone(cluster) -> None:
    py = pymesos_python()
    cluster.start_master()
    cluster.start_agent(AGENT)
    cluster.wait_agents(1)
    out = subprocess.run([str(py), "-I", str(Path(__file__).with_name(
        "pymesos_operator_reserve.py")), cluster.master_addr], capture_output=True, text=True,
        timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "before": ["*"], "reserved": ["*", "ops"], "unreserved": ["*"], "gone_listed": False}
