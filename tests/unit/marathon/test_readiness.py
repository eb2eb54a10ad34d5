"""readinessChecks: validation and defaults, and a rolling restart held by the core until
the new tasks' readiness results say ready (the probes themselves are runtime IO)."""
from __future__ import annotations

import pytest

from marathon import views
from marathon.model import ValidationFailed, validate
from marathon.readiness import check_port
from tests.unit.marathon.test_service import make, offer, status

APP = {"id": "/r", "cmd": "sleep 100", "instances": 2, "cpus": 0.1, "mem": 16,
       "portDefinitions": [{"port": 0, "name": "http"}],
       "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
       "readinessChecks": [{"portName": "http", "path": "/ready", "intervalSeconds": 1,
                            "timeoutSeconds": 0.5, "preserveLastResponse": True}]}


def test_readiness_check_defaults_and_port_name():
    app = validate({"id": "/r", "cmd": "x", "portDefinitions": [{"name": "http-api"}],
                    "readinessChecks": [{}]})
    assert app["readinessChecks"] == [{
        "name": "readinessCheck", "protocol": "HTTP", "path": "/", "portName": "http-api",
        "intervalSeconds": 30, "timeoutSeconds": 10, "httpStatusCodesForReady": [200],
        "preserveLastResponse": False}]


@pytest.mark.parametrize("rc, words", [
    ({"portName": "nope"}, "must name a port"),
    ({"portName": "http", "intervalSeconds": 5, "timeoutSeconds": 5}, "less than"),
    ({"portName": "http", "protocol": "TCP"}, "TCP"),
])
def test_bad_readiness_checks_are_refused(rc, words):
    with pytest.raises(ValidationFailed) as e:
        validate({"id": "/r", "cmd": "x", "portDefinitions": [{"name": "http"}],
                  "readinessChecks": [rc]})
    assert words in str(e.value.details)


def _running(svc, n_offer):
    svc.resource_offers(svc.driver, [offer(n_offer)])
    for tid, t in svc.state.tasks.items():
        if t.state == "TASK_STAGING":
            svc.status_update(svc.driver, status(tid, "TASK_RUNNING", agent=t.agent_id))


def test_rolling_restart_waits_for_ready_new_tasks():
    svc, clock = make()
    svc.create_app(APP, False)
    _running(svc, 1)
    first = set(svc.state.tasks)
    for tid in first:  # the first deployment also waits for them
        assert svc.state.deployments
        svc.readiness_result(tid, True, {"name": "readinessCheck", "lastResponse": None})
    assert not svc.state.deployments
    _, d = svc.update_app("/r", {"cmd": "sleep 200"})
    _running(svc, 2)  # maximumOverCapacity 1: two new tasks, running but not ready
    new = set(svc.state.tasks) - first
    assert len(new) == 2
    assert not any(svc.state.tasks[t].killing for t in first)  # held: nothing ready yet
    late = sorted(new)[0]
    svc.readiness_result(late, False, {"name": "readinessCheck", "lastResponse": {
        "status": 503, "contentType": "text/plain", "body": "warming"}})
    (action,) = views.deployment_json(svc.state, svc.state.deployments[d.id])["currentActions"]
    assert action["readinessCheckResults"] == [{
        "name": "readinessCheck", "taskId": late, "ready": False,
        "lastResponse": {"status": 503, "contentType": "text/plain", "body": "warming"}}]
    assert not any(svc.state.tasks[t].killing for t in first)
    svc.readiness_result(late, True, {"name": "readinessCheck", "lastResponse": None})
    assert sum(svc.state.tasks[t].killing for t in first) == 1  # one old task may go now
    svc.readiness_result(sorted(new)[1], True, {"name": "readinessCheck", "lastResponse": None})
    assert all(svc.state.tasks[t].killing for t in first)
    for tid in first:
        svc.status_update(svc.driver, status(tid, "TASK_KILLED"))
    assert d.id not in svc.state.deployments


def test_check_port_by_name():
    app = validate(dict(APP, portDefinitions=[{"name": "a"}, {"name": "http"}]))
    svc, _ = make()
    svc.create_app(dict(APP, portDefinitions=[{"name": "a"}, {"name": "http"}]), False)
    svc.resource_offers(svc.driver, [offer(1)])
    t = next(iter(svc.state.tasks.values()))
    assert check_port(app, t, app["readinessChecks"][0]) == t.ports[1]
