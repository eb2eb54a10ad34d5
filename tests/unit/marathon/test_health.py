"""Health checks: real probes against local servers, and the kill-after-N-failures rule."""
from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestServer

from marathon.health import probe
from mesos_common.daemons import free_port
from tests.unit.marathon.conftest import add_task


def test_http_and_tcp_probes_against_real_sockets():
    async def go():
        async def ok(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def bad(request: web.Request) -> web.Response:
            return web.Response(status=500)
        app = web.Application()
        app.router.add_get("/ok", ok)
        app.router.add_get("/bad", bad)
        server = TestServer(app)
        await server.start_server()
        port = server.port
        assert port is not None
        try:
            return [await probe({"protocol": "HTTP", "path": "/ok"}, "127.0.0.1", port),
                    await probe({"protocol": "HTTP", "path": "/bad"}, "127.0.0.1", port),
                    await probe({"protocol": "TCP"}, "127.0.0.1", port),
                    await probe({"protocol": "TCP", "timeoutSeconds": 1}, "127.0.0.1",
                                free_port())]
        finally:
            await server.close()
    ok, bad, tcp, closed = asyncio.run(go())
    assert ok == (True, "") and tcp == (True, "")
    assert bad == (False, "HTTP 500")
    assert closed[0] is False and closed[1]


def test_unhealthy_task_is_killed_after_max_consecutive_failures(api, svc):
    api.post("/v2/apps", {"id": "/h", "cmd": "x y", "instances": 1,
                          "healthChecks": [{"protocol": "HTTP", "gracePeriodSeconds": 0,
                                            "maxConsecutiveFailures": 3}]})
    (t,) = add_task(svc, "/h")
    svc.health_result(t.id, 0, True, "")
    assert api.get("/v2/apps/h")[1]["app"]["tasksHealthy"] == 1
    for _ in range(2):
        svc.health_result(t.id, 0, False, "HTTP 500")
    assert not t.killing
    app = api.get("/v2/apps/h")[1]["app"]
    assert app["tasksUnhealthy"] == 1
    (result,) = app["tasks"][0]["healthCheckResults"]
    assert result["alive"] is False and result["consecutiveFailures"] == 2
    svc.health_result(t.id, 0, False, "HTTP 500")
    assert t.killing and (t.id, t.agent_id) in svc.driver.named("kill_task")


def test_failures_in_the_grace_period_do_not_count(api, svc):
    api.post("/v2/apps", {"id": "/g", "cmd": "x y", "instances": 1,
                          "healthChecks": [{"protocol": "TCP", "gracePeriodSeconds": 300,
                                            "maxConsecutiveFailures": 1}]})
    (t,) = add_task(svc, "/g")
    svc.health_result(t.id, 0, False, "refused")
    assert not t.killing and t.health[0].consecutive_failures == 0


def test_group_star_lists_the_apps_under_a_group(api, svc):
    api.post("/v2/apps", {"id": "/grp/a", "cmd": "x y"})
    api.post("/v2/apps", {"id": "/grp/sub/b", "cmd": "x y"})
    api.post("/v2/apps", {"id": "/other", "cmd": "x y"})
    status, body, _ = api.get("/v2/apps//grp/*")
    assert status == 200 and [a["id"] for a in body["*"]] == ["/grp/a", "/grp/sub/b"]


def test_agent_run_check_results_show_in_health_check_results():
    from marathon import views
    from mesos_common import messages as m
    from tests.unit.marathon.test_service import make, offer
    svc, clock = make()
    svc.create_app({"id": "/m", "cmd": "sleep 100", "cpus": 0.1, "mem": 16,
                    "portDefinitions": [{"port": 0}],
                    "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/"}]}, False)
    svc.resource_offers(svc.driver, [offer(1)])
    (tid,) = svc.state.tasks

    def update(healthy, message=""):
        clock.t += 1
        svc.status_update(svc.driver, m.TaskStatus(task_id=tid, state="TASK_RUNNING",
                                                   agent_id="A1", healthy=healthy,
                                                   message=message))
        return views.task_json(svc.state, svc.state.tasks[tid])["healthCheckResults"]

    assert update(None) == []  # no verdict yet
    (ok,) = update(True)
    assert ok["alive"] is True and ok["firstSuccess"] and ok["consecutiveFailures"] == 0
    assert ok["taskId"] == tid and ok["lastFailure"] is None
    (bad,) = update(False, "GET http://127.0.0.1:31000/ returned 500")
    assert bad["alive"] is False and bad["consecutiveFailures"] == 1
    assert bad["lastFailureCause"] == "GET http://127.0.0.1:31000/ returned 500"
    assert bad["firstSuccess"] == ok["firstSuccess"] and bad["lastFailure"]
    app = views.app_info(svc.state, svc.state.apps["/m"], set())
    assert (app["tasksHealthy"], app["tasksUnhealthy"]) == (0, 1)
