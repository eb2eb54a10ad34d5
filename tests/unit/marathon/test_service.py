"""The service's scheduler side with a fake driver and clock: offers, updates, backoff, recovery."""
from __future__ import annotations

import pytest

from marathon.server import MarathonServer
from marathon.store import MemoryStore, SQLiteStore
from mesos_common import messages as m
from mesos_common.resources import Resources
from tests.unit.marathon.conftest import FakeDriver


class Clock:
    def __init__(self) -> None:
        self.t = 1_600_000_000.0

    def __call__(self) -> float:
        return self.t


def make(store=None):
    clock = Clock()
    svc = MarathonServer(store or MemoryStore(), clock=clock)
    svc.driver = FakeDriver()
    return svc, clock


def offer(i=1, res="cpus:1;mem:512;ports:[31000-31010]"):
    return m.Offer(id=f"o{i}", framework_id="F", agent_id=f"A{i}", hostname=f"h{i}",
                   resources=Resources.parse(res))


def status(task_id, state, agent="A1", message=""):
    return m.TaskStatus(task_id=task_id, state=state, agent_id=agent, message=message)


def test_offers_launch_wanted_instances_then_decline_and_suppress():
    svc, _ = make()
    svc.create_app({"id": "/web", "cmd": "sleep 100", "cpus": 0.25, "mem": 32,
                    "instances": 3}, False)
    assert svc.state.wants == {"/web": 3}
    svc.resource_offers(svc.driver, [offer(1)])
    ((offer_id, tasks),) = svc.driver.named("launch_tasks")
    assert offer_id == "o1" and len(tasks) == 3
    assert all(t.command.environment["MARATHON_APP_ID"] == "/web" for t in tasks)
    assert len(svc.state.tasks) == 3
    assert all(t.state == "TASK_STAGING" for t in svc.state.tasks.values())
    svc.tick()
    svc.resource_offers(svc.driver, [offer(2)])
    assert svc.driver.named("decline_offer") == [("o2", svc.options.decline_seconds)]
    assert svc.driver.named("suppress_offers") == [()]
    for t in tasks:
        svc.status_update(svc.driver, status(t.task_id, "TASK_RUNNING"))
    assert not svc.state.deployments
    # scaling up revives offers
    svc.update_app("/web", {"instances": 4}, False)
    assert svc.driver.named("revive_offers") == [()]


def test_failed_tasks_are_replaced_after_a_growing_delay():
    svc, clock = make()
    svc.create_app({"id": "/crash", "cmd": "exit 1", "cpus": 0.1, "mem": 16, "instances": 1,
                    "backoffSeconds": 10, "backoffFactor": 2}, False)
    svc.resource_offers(svc.driver, [offer(1)])
    (tid,) = list(svc.state.tasks)
    svc.status_update(svc.driver, status(tid, "TASK_FAILED", message="exit 1"))
    assert tid not in svc.state.tasks and svc.state.last_failures["/crash"]["taskId"] == tid
    assert svc.state.wants == {}  # delayed
    (item,) = svc.queue(False)
    assert item["delay"]["timeLeftSeconds"] == 10 and item["delay"]["overdue"] is False
    clock.t += 10
    svc.tick()
    assert svc.state.wants == {"/crash": 1}
    svc.resource_offers(svc.driver, [offer(1)])
    (tid2,) = list(svc.state.tasks)
    svc.status_update(svc.driver, status(tid2, "TASK_FAILED"))
    assert svc.state.backoffs["/crash"].until == clock.t + 20
    svc.reset_delay("/crash")
    assert svc.state.wants == {"/crash": 1}


def test_unknown_running_task_is_killed_and_registration_reconciles():
    svc, _ = make()
    svc.create_app({"id": "/a", "cmd": "sleep 1", "instances": 1, "cpus": 0.1, "mem": 16},
                   False)
    svc.resource_offers(svc.driver, [offer(1)])
    svc.status_update(svc.driver, status("stranger.instance-1", "TASK_RUNNING"))
    assert ("stranger.instance-1", "A1") in svc.driver.named("kill_task")
    svc.registered(svc.driver, "F1", {})
    explicit, implicit = svc.driver.named("reconcile_tasks")
    assert [r.task_id for r in explicit[0]] == list(svc.state.tasks) and implicit == ([],)
    assert svc.state.framework_id == "F1"


def test_a_new_service_on_the_same_store_recovers_everything(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    svc, _ = make(store)
    svc.create_app({"id": "/a", "cmd": "sleep 1", "instances": 2, "cpus": 0.1, "mem": 16},
                   False)
    svc.update_app("/a", {"cmd": "sleep 2"}, True)
    svc.resource_offers(svc.driver, [offer(1)])
    svc.registered(svc.driver, "F1", {})
    store.close()
    again, _ = make(SQLiteStore(tmp_path / "m.db"))
    assert again.state.apps == svc.state.apps and again.state.versions == svc.state.versions
    assert set(again.state.tasks) == set(svc.state.tasks) and again.state.framework_id == "F1"
    assert set(again.state.deployments) == set(svc.state.deployments)
    assert again.framework_info().id == "F1"
    again.tick()
    assert again.state.wants == {}  # its tasks are known: no duplicate launches


def _one_away(app_id: str, inactive: float, expunge: float, **app):
    """An app of one instance whose task ran and is now unreachable: (svc, clock, task id)."""
    svc, clock = make()
    svc.create_app(dict({"id": app_id, "cmd": "sleep 1", "instances": 1, "cpus": 0.1,
                         "mem": 16, "unreachableStrategy": {
                             "inactiveAfterSeconds": inactive,
                             "expungeAfterSeconds": expunge}}, **app), False)
    svc.resource_offers(svc.driver, [offer(1)])
    (tid,) = list(svc.state.tasks)
    svc.status_update(svc.driver, status(tid, "TASK_RUNNING"))
    svc.status_update(svc.driver, status(tid, "TASK_UNREACHABLE"))
    return svc, clock, tid


@pytest.mark.parametrize("selection", ["YOUNGEST_FIRST", "OLDEST_FIRST"])
def test_unreachable_tasks_are_replaced_and_the_extra_killed_when_they_return(selection):
    svc, clock, tid = _one_away("/u", 60, 600, killSelection=selection)
    assert svc.state.wants == {}  # not yet: it may come back
    clock.t += 60
    svc.tick()
    assert svc.state.wants == {"/u": 1}
    svc.resource_offers(svc.driver, [offer(2)])
    (replacement,) = [t for t in svc.state.tasks if t != tid]
    svc.status_update(svc.driver, status(replacement, "TASK_RUNNING", agent="A2"))
    svc.status_update(svc.driver, status(tid, "TASK_RUNNING"))  # it is back: one too many
    killed = [a[0] for a in svc.driver.named("kill_task")]
    assert killed == [replacement if selection == "YOUNGEST_FIRST" else tid]


def test_unreachable_tasks_are_expunged_after_expunge_after_seconds():
    svc, clock, tid = _one_away("/x", 10, 30)
    clock.t += 10
    svc.tick()
    assert tid in svc.state.tasks and svc.state.wants == {"/x": 1}
    clock.t += 20
    svc.tick()
    assert tid not in svc.state.tasks  # forgotten; killed should it ever come back
    assert [a[0] for a in svc.driver.named("kill_task")] == [tid]


def test_disabled_unreachable_strategy_waits():
    svc, clock = make()
    svc.create_app({"id": "/d", "cmd": "sleep 1", "instances": 1, "cpus": 0.1, "mem": 16,
                    "unreachableStrategy": "disabled"}, False)
    svc.resource_offers(svc.driver, [offer(1)])
    (tid,) = list(svc.state.tasks)
    svc.status_update(svc.driver, status(tid, "TASK_UNREACHABLE"))
    clock.t += 10_000
    svc.tick()
    assert svc.state.wants == {} and tid in svc.state.tasks


def test_deferred_offers_wait_in_the_backlog_and_stale_ones_are_dropped():
    svc, clock = make()
    svc.deferred = True
    woken = []
    svc.on_backlog = lambda: woken.append(1)
    svc.create_app({"id": "/b", "cmd": "sleep 1", "cpus": 0.1, "mem": 16, "instances": 4},
                   False)
    svc.resource_offers(svc.driver, [offer(1), offer(2)])
    assert woken and not svc.driver.named("launch_tasks") and len(svc.state.offer_backlog) == 2
    assert svc.place_backlog(lambda: False) is False  # all matched
    assert len(svc.driver.named("launch_tasks")) == 1 and len(svc.state.tasks) == 4
    assert svc.driver.named("decline_offer") == [("o2", 5.0)]  # nothing left to place
    svc.update_app("/b", {"instances": 6}, True)
    svc.resource_offers(svc.driver, [offer(3)])
    svc.offer_rescinded(svc.driver, "o3")
    svc.resource_offers(svc.driver, [offer(4)])
    clock.t += 31
    assert svc.place_backlog(lambda: False) is False
    assert len(svc.state.tasks) == 4  # o3 was rescinded, o4 went stale: neither used


def test_dropped_launches_over_invalid_offers_do_not_delay_the_app():
    svc, _ = make()
    svc.create_app({"id": "/d", "cmd": "sleep 1", "cpus": 0.1, "mem": 16, "instances": 1},
                   False)
    svc.resource_offers(svc.driver, [offer(1)])
    (tid,) = svc.state.tasks
    svc.status_update(svc.driver, m.TaskStatus(tid, "TASK_DROPPED", agent_id="A1",
                                               reason="REASON_INVALID_OFFERS"))
    assert "/d" not in svc.state.backoffs and svc.state.wants == {"/d": 1}
    svc.resource_offers(svc.driver, [offer(2)])
    (tid,) = svc.state.tasks
    svc.status_update(svc.driver, status(tid, "TASK_FAILED", agent="A2"))
    assert svc.state.backoffs["/d"].failures == 1  # a task that ran and failed does
def test_a_lost_revive_is_repeated_while_tasks_wait_and_no_offer_comes():
    svc, clock = make()
    svc.create_app({"id": "/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 16,
                    "instances": 1}, False)
    svc.tick()
    svc.resource_offers(svc.driver, [offer(1, "cpus:0.01;mem:1")])  # does not fit
    svc.tick()
    assert svc.driver.named("revive_offers") == []  # not suppressed, and offers do come
    clock.t += 9
    svc.tick()
    assert svc.driver.named("revive_offers") == []
    clock.t += 2  # no offer for 11 s: the master may not know we want offers
    svc.tick()
    assert svc.driver.named("revive_offers") == [()]
    svc.tick()
    assert svc.driver.named("revive_offers") == [()]  # once per interval, not per tick
    svc.resource_offers(svc.driver, [offer(2)])
    svc.tick()
    clock.t += 30  # nothing waits any more: no revive
    svc.tick()
    assert svc.driver.named("revive_offers") == [()]


def test_an_unknown_unreachable_task_is_not_killed_again_and_again():
    svc, _ = make()
    svc.status_update(svc.driver, status("gone.instance-1._app.1", "TASK_UNREACHABLE"))
    assert svc.driver.named("kill_task") == []  # the master would answer UNREACHABLE again
    svc.status_update(svc.driver, status("gone.instance-1._app.1", "TASK_RUNNING"))
    assert svc.driver.named("kill_task") == [("gone.instance-1._app.1", "A1")]  # it is back


def test_tasks_are_reconciled_every_reconcile_interval():
    svc, clock = make()
    svc.options.reconcile_interval = 30.0
    svc.tick()
    assert svc.driver.named("reconcile_tasks") == []
    clock.t += 31
    svc.tick()
    assert svc.driver.named("reconcile_tasks") == [([],)]  # implicit: no task known yet
    svc.tick()
    assert len(svc.driver.named("reconcile_tasks")) == 1


def test_a_kill_is_sent_again_while_the_task_lives_on():
    svc, clock = make()
    svc.create_app({"id": "/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 16,
                    "instances": 1}, False)
    svc.resource_offers(svc.driver, [offer(1)])
    ((_, (task,)),) = svc.driver.named("launch_tasks")
    svc.status_update(svc.driver, status(task.task_id, "TASK_RUNNING"))
    svc.scale_app("/web", 0, False)
    assert len(svc.driver.named("kill_task")) == 1
    clock.t += 5
    svc.tick()
    assert len(svc.driver.named("kill_task")) == 1  # give the first Kill its time
    clock.t += 6
    svc.tick()
    assert svc.driver.named("kill_task") == [(task.task_id, "A1")] * 2  # it was lost
    svc.status_update(svc.driver, status(task.task_id, "TASK_KILLED"))
    clock.t += 60
    svc.tick()
    assert len(svc.driver.named("kill_task")) == 2 and not svc.state.deployments


def test_tasks_being_killed_are_killed_again_after_a_restart():
    store = MemoryStore()
    svc, clock = make(store)
    svc.create_app({"id": "/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 16,
                    "instances": 1}, False)
    svc.resource_offers(svc.driver, [offer(1)])
    ((_, (task,)),) = svc.driver.named("launch_tasks")
    svc.status_update(svc.driver, status(task.task_id, "TASK_RUNNING"))
    svc.delete_app("/web", False)  # its Kill is lost with the process
    again, _ = make(store)
    again.tick()
    assert again.driver.named("kill_task") == [(task.task_id, "A1")]
