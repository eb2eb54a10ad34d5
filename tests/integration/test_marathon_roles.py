"""acceptedResourceRoles on a real cluster: Marathon in role `ads` is offered an agent
statically reserved to `ads` and an unreserved one; an app accepting `ads` lands only on
the reserved agent, one accepting `*` never uses the reserved resources."""
from __future__ import annotations

import pytest

from mesos_common.daemons import free_port
from tests.conftest import Cluster
from tests.helpers import wait_for
from tests.integration.marathon_helpers import MarathonApi

pytestmark = pytest.mark.slow


def _ports() -> str:
    return ",".join(f"{p}-{p}" for p in sorted({free_port() for _ in range(4)}))


def test_accepted_resource_roles_pick_the_reserved_agent(cluster: Cluster) -> None:
    cluster.start_master()
    cluster.start_agent(f"cpus(ads):1;mem(ads):256;disk(ads):64;ports(ads):[{_ports()}]")
    cluster.start_agent(f"cpus:1;mem:256;disk:64;ports:[{_ports()}]")
    cluster.wait_agents(2)
    marathon = cluster.start_marathon(0, "--mesos_role=ads", "--scale_apps_interval=0.5",
                                      "--decline_offer_duration=1secs")
    api = MarathonApi(marathon.field("http"))
    assert api.call("GET", "/v2/info")[1]["marathon_config"]["mesos_role"] == "ads"
    for aid, roles in (("/on-ads", ["ads"]), ("/on-star", ["*"])):
        status, body = api.call("POST", "/v2/apps", {
            "id": aid, "cmd": "sleep 600", "cpus": 0.2, "mem": 16, "instances": 3,
            "acceptedResourceRoles": roles})
        assert status == 201, body
    wait_for(lambda: not api.deployments(), 60, 0.2, "both apps running")

    agents = cluster.state()["slaves"]
    (reserved_id,) = [a["id"] for a in agents if "ads" in a["reserved_resources"]]
    tasks = [t for fw in cluster.state()["frameworks"] for t in fw["tasks"]]
    assert len(tasks) == 6 and all(t["state"] == "TASK_RUNNING" for t in tasks)
    for t in tasks:
        assert (t["slave_id"] == reserved_id) == t["id"].startswith("on-ads."), t
    # the reserved agent's resources went to the ads app only, the other agent's to *
    (used,) = [a["used_resources"]["cpus"] for a in agents if a["id"] == reserved_id]
    assert used == pytest.approx(0.6)
