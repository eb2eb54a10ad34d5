"""The master does not say when an unreachable agent re-registers (Mesos), so Marathon asks
after the tasks it holds unreachable: the surplus of a healed partition is then seen."""
from __future__ import annotations

from marathon.core_base import UNREACHABLE_RECONCILE_S
from mesos_common import messages as m
from tests.unit.marathon.test_service import make, offer, status


def test_unreachable_tasks_are_reconciled_until_they_are_back():
    svc, clock = make()
    svc.create_app({"id": "/u", "cmd": "sleep 1", "instances": 2, "cpus": 0.1, "mem": 16},
                   False)
    svc.resource_offers(svc.driver, [offer(1)])
    away, other = sorted(svc.state.tasks)
    for tid in (away, other):
        svc.status_update(svc.driver, status(tid, "TASK_RUNNING"))
    svc.status_update(svc.driver, status(away, "TASK_UNREACHABLE"))
    clock.t += UNREACHABLE_RECONCILE_S
    svc.tick()
    assert svc.driver.named("reconcile_tasks") == [([m.ReconcileTask(away, "A1")],)]
    svc.tick()  # not again before the interval
    assert len(svc.driver.named("reconcile_tasks")) == 1
    svc.status_update(svc.driver, status(away, "TASK_RUNNING"))  # the answer: it is back
    clock.t += UNREACHABLE_RECONCILE_S
    svc.tick()
    assert len(svc.driver.named("reconcile_tasks")) == 1  # nothing unreachable to ask after
