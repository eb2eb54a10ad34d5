"""Marathon and an agent the master wants back (inverse offer: drain or maintenance): the
instances there are replaced elsewhere before they are killed, within the health capacity."""
from __future__ import annotations

from mesos_common import messages as m
from tests.unit.marathon.test_service import make, offer, status


def _app(svc, capacity: float, over: float = 1.0) -> list[str]:
    svc.create_app({"id": "/d", "cmd": "sleep 100", "instances": 2, "cpus": 0.1, "mem": 16,
                    "upgradeStrategy": {"minimumHealthCapacity": capacity,
                                        "maximumOverCapacity": over}}, False)
    svc.resource_offers(svc.driver, [offer(1)])
    tids = sorted(svc.state.tasks)
    for tid in tids:
        svc.status_update(svc.driver, status(tid, "TASK_RUNNING"))
    return tids


def test_instances_on_a_wanted_agent_are_replaced_before_they_are_killed():
    svc, _ = make()
    old = _app(svc, capacity=1.0, over=0.0)
    svc.inverse_offers(svc.driver, [m.InverseOffer("io1", "F", "A1", "h1", 100.0)])
    assert all(svc.state.tasks[t].draining for t in old)
    assert not svc.driver.named("kill_task")  # full capacity: nothing may die yet
    svc.resource_offers(svc.driver, [offer(2)])
    ((_, launched),) = svc.driver.named("launch_tasks")[1:]
    assert len(launched) == 1  # maximumOverCapacity 0: one over at a time
    svc.tick()
    assert not svc.driver.named("kill_task")  # the replacement is not running yet
    svc.status_update(svc.driver, status(launched[0].task_id, "TASK_RUNNING", agent="A2"))
    svc.tick()
    (killed,) = svc.driver.named("kill_task")
    assert killed[0] in old
    svc.status_update(svc.driver, status(killed[0], "TASK_KILLED"))
    svc.resource_offers(svc.driver, [offer(3)])
    ((_, second),) = svc.driver.named("launch_tasks")[2:]
    svc.status_update(svc.driver, status(second[0].task_id, "TASK_RUNNING", agent="A3"))
    svc.tick()
    (last,) = [k for k in svc.driver.named("kill_task") if k[0] != killed[0]]
    assert not svc.driver.named("accept_inverse_offers")  # one still runs there
    svc.status_update(svc.driver, status(last[0], "TASK_KILLED"))
    svc.tick()
    assert svc.driver.named("accept_inverse_offers") == [(["io1"],)]
    assert len([t for t in svc.state.tasks.values() if t.running]) == 2
    assert all(t.agent_id != "A1" for t in svc.state.tasks.values())


def test_a_lower_health_capacity_lets_a_drained_instance_go_at_once():
    svc, _ = make()
    old = _app(svc, capacity=0.5)
    svc.inverse_offers(svc.driver, [m.InverseOffer("io1", "F", "A1", "h1", 100.0)])
    assert len(svc.driver.named("kill_task")) == 1 and svc.driver.named("kill_task")[0][0] in old


def test_offers_of_an_agent_in_a_maintenance_window_are_declined_until_it_ends():
    svc, clock = make()
    svc.create_app({"id": "/w", "cmd": "sleep 100", "instances": 1, "cpus": 0.1, "mem": 16},
                   False)
    svc.inverse_offers(svc.driver, [m.InverseOffer("io9", "F", "A1", "h1", clock.t, 60.0)])
    svc.tick()  # nothing of ours runs there: the inverse offer is accepted at once
    assert svc.driver.named("accept_inverse_offers") == [(["io9"],)]
    svc.resource_offers(svc.driver, [offer(1)])
    assert not svc.driver.named("launch_tasks") and svc.driver.named("decline_offer")
    clock.t += 61  # the window is over
    svc.tick()
    svc.resource_offers(svc.driver, [offer(1)])
    assert len(svc.driver.named("launch_tasks")) == 1
