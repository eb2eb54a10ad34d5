"""Contract tests for tasks, deployments, groups, queue, events and event subscriptions."""
from __future__ import annotations

import asyncio
import json

from tests.helpers import wait_for_async
from tests.unit.marathon.conftest import add_task
from tests.unit.marathon.test_api_apps import CLIENT_TASK_KEYS, TRIVIAL

CLIENT_GROUP_KEYS = {"apps", "dependencies", "groups", "id", "pods", "version"}
CLIENT_DEPLOYMENT_KEYS = {"affectedApps", "currentActions", "currentStep", "id", "steps",
                          "totalSteps", "version", "affectedPods"}
CLIENT_QUEUE_KEYS = {"app", "overdue", "count", "delay", "since", "processedOffersSummary",
                     "lastUnusedOffers"}


def _running_app(api, svc, n=3):
    api.post("/v2/apps", dict(TRIVIAL, instances=n))
    tasks = add_task(svc, "/test-trivial-app", n)
    svc.tick()  # the deployment completes: n running tasks
    assert not svc.state.deployments
    return tasks


def test_app_tasks_list_and_kill(api, svc):
    tasks = _running_app(api, svc)
    status, body, _ = api.get("/v2/apps//test-trivial-app/tasks")
    assert status == 200 and len(body["tasks"]) == 3
    assert all(set(t) <= CLIENT_TASK_KEYS for t in body["tasks"])
    assert api.get("/v2/apps/nope/tasks")[0] == 404
    # single kill without scale: the task comes back, the app keeps 3 instances
    status, body, _ = api.delete(f"/v2/apps/test-trivial-app/tasks/{tasks[0].id}"
                                 "?scale=False&wipe=False")
    assert status == 200 and body["task"]["id"] == tasks[0].id
    assert (tasks[0].id, "agent-1") in svc.driver.named("kill_task")
    assert svc.state.apps["/test-trivial-app"]["instances"] == 3
    # with scale: a deployment result, one instance fewer
    status, body, _ = api.delete(f"/v2/apps/test-trivial-app/tasks/{tasks[1].id}?scale=True")
    assert status == 200 and set(body) == {"deploymentId", "version"}
    assert svc.state.apps["/test-trivial-app"]["instances"] == 2
    assert api.delete("/v2/apps/test-trivial-app/tasks/nope.instance-x")[0] == 404
    status, body, _ = api.delete("/v2/apps/test-trivial-app/tasks?scale=true&wipe=true")
    assert status == 400 and "scale and wipe" in body["message"]


def test_kill_many_by_host(api, svc):
    tasks = _running_app(api, svc)
    tasks[0].host = "other"
    status, body, _ = api.delete("/v2/apps/test-trivial-app/tasks?host=other")
    assert status == 200 and [t["id"] for t in body["tasks"]] == [tasks[0].id]
    status, body, _ = api.delete("/v2/apps/test-trivial-app/tasks?scale=true&force=true")
    assert status == 200 and "deploymentId" in body
    assert svc.state.apps["/test-trivial-app"]["instances"] == 1  # one was already being killed


def test_all_tasks_status_filter_and_delete(api, svc):
    tasks = _running_app(api, svc)
    tasks[2].state = "TASK_STAGING"
    assert len(api.get("/v2/tasks")[1]["tasks"]) == 3
    assert len(api.get("/v2/tasks?status=running")[1]["tasks"]) == 2
    assert len(api.get("/v2/tasks?status[]=staging&status[]=RUNNING")[1]["tasks"]) == 3
    for t in api.get("/v2/tasks")[1]["tasks"]:
        assert t["servicePorts"] == [10000] and set(t) <= CLIENT_TASK_KEYS
    status, body, _ = api.post("/v2/tasks/delete?scale=False", {"ids": [tasks[0].id]})
    assert status == 200 and [t["id"] for t in body["tasks"]] == [tasks[0].id]
    status, body, _ = api.post("/v2/tasks/delete", {"ids": ["garbage"]})
    assert status == 400 and "Invalid task id 'garbage'" in body["message"]
    unknown = "test-trivial-app.instance-5b8f4a2e-e3a1-11ea-9f34-0242ac110002._app.1"
    status, body, _ = api.post("/v2/tasks/delete", {"ids": [unknown]})
    assert status == 200 and body["tasks"] == []  # valid but unknown ids are skipped
    status, body, _ = api.post("/v2/tasks/delete?scale=true", {"ids": [tasks[1].id]})
    assert status == 200 and "deploymentId" in body
    assert svc.state.apps["/test-trivial-app"]["instances"] == 2


def test_deployments_list_cancel_and_force(api, svc):
    _, app, _ = api.post("/v2/apps", TRIVIAL)
    deps = api.get("/v2/deployments")[1]
    assert len(deps) == 1 and set(deps[0]) <= CLIENT_DEPLOYMENT_KEYS
    d = deps[0]
    assert d["affectedApps"] == ["/test-trivial-app"] and d["totalSteps"] == 2
    assert d["steps"][0]["actions"] == [{"action": "StartApplication", "app": "/test-trivial-app"}]
    assert d["currentStep"] == 2  # the start step is done at once
    # cancel with rollback: a new deployment that removes the new app (done at once: no tasks)
    status, body, _ = api.delete(f"/v2/deployments/{d['id']}")
    assert status == 200 and body["deploymentId"] != d["id"]
    assert "/test-trivial-app" not in svc.state.apps and api.get("/v2/deployments")[1] == []
    # a scale that cannot finish (no offers), cancelled with rollback: back to 2 instances
    _running_app(api, svc, 2)
    _, body, _ = api.put("/v2/apps/test-trivial-app", {"instances": 4})
    status, rb, _ = api.delete(f"/v2/deployments/{body['deploymentId']}")
    assert status == 200 and svc.state.apps["/test-trivial-app"]["instances"] == 2
    assert api.get("/v2/deployments")[1] == []
    # force: dropped without rollback
    _, body, _ = api.put("/v2/apps/test-trivial-app", {"instances": 5})
    status, body2, _ = api.delete(f"/v2/deployments/{body['deploymentId']}?force=true")
    assert status == 202 and body2 is None
    assert api.get("/v2/deployments")[1] == []
    assert svc.state.apps["/test-trivial-app"]["instances"] == 5
    assert api.delete("/v2/deployments/nope")[:2] == (
        404, {"message": "DeploymentPlan nope does not exist"})


def test_deployment_finishes_when_tasks_reach_the_target(api, svc):
    _running_app(api, svc, 2)
    api.put("/v2/apps/test-trivial-app", {"instances": 3})
    assert len(api.get("/v2/deployments")[1]) == 1
    assert svc.state.wants == {"/test-trivial-app": 1}
    add_task(svc, "/test-trivial-app", 1)
    svc.tick()
    assert api.get("/v2/deployments")[1] == []


def test_groups(api, svc):
    status, body, _ = api.post("/v2/groups", {"id": "/prod", "apps": [
        {"id": "web", "cmd": "sleep 1", "instances": 2}],
        "groups": [{"id": "db", "apps": [{"id": "pg", "cmd": "sleep 2"}]}]})
    assert status == 201 and "deploymentId" in body
    assert {"/prod/web", "/prod/db/pg"} <= set(svc.state.apps)
    root = api.get("/v2/groups")[1]
    assert root["id"] == "/" and set(root) <= CLIENT_GROUP_KEYS
    prod = root["groups"][0]
    assert prod["id"] == "/prod" and [a["id"] for a in prod["apps"]] == ["/prod/web"]
    assert prod["groups"][0]["id"] == "/prod/db"
    assert prod["groups"][0]["apps"][0]["id"] == "/prod/db/pg"
    assert api.get("/v2/groups//prod/db")[1]["apps"][0]["id"] == "/prod/db/pg"
    assert api.post("/v2/groups", {"id": "/prod"})[0] == 409
    assert api.get("/v2/groups/nope")[:2] == (404, {"message": "Group '/nope' does not exist"})
    status, body, _ = api.put("/v2/groups/prod?force=true", {"scaleBy": 2})
    assert status == 200 and svc.state.apps["/prod/web"]["instances"] == 4
    assert svc.state.apps["/prod/db/pg"]["instances"] == 2
    status, body, _ = api.post("/v2/groups", {"id": "/bad", "apps": [{"id": "/elsewhere/x",
                                                                       "cmd": "s"}]})
    assert status == 422 and "not child of" in body["details"][0]["errors"][0]
    status, body, _ = api.post("/v2/groups", {"id": "/bad2", "apps": [{"id": "x", "cpus": -1,
                                                                        "cmd": "s"}]})
    assert status == 422 and body["details"][0]["path"] == "/apps(0)/cpus"
    assert "/bad2/x" not in svc.state.apps
    status, body, _ = api.delete("/v2/groups/prod?force=true")
    assert status == 200 and not [a for a in svc.state.apps if a.startswith("/prod/")]
    assert api.delete("/v2/groups/prod")[0] == 404


def test_put_group_replaces_its_apps(api, svc):
    api.post("/v2/groups", {"id": "/g", "apps": [{"id": "a", "cmd": "s a"},
                                                 {"id": "b", "cmd": "s b"}]})
    status, _, _ = api.put("/v2/groups/g?force=true", {"id": "/g", "apps": [
        {"id": "a", "cmd": "s a2"}, {"id": "c", "cmd": "s c"}]})
    assert status == 200
    assert sorted(a for a in svc.state.apps if a.startswith("/g/")) == ["/g/a", "/g/c"]
    assert svc.state.apps["/g/a"]["cmd"] == "s a2"


def test_queue_and_delay_reset(api, svc):
    assert api.get("/v2/queue")[1] == {"queue": []}
    api.post("/v2/apps", dict(TRIVIAL, instances=2))
    (item,) = api.get("/v2/queue")[1]["queue"]
    assert set(item) <= CLIENT_QUEUE_KEYS and item["count"] == 2
    assert item["app"]["id"] == "/test-trivial-app"
    assert set(item["delay"]) == {"timeLeftSeconds", "overdue"}
    assert "lastUnusedOffers" in api.get("/v2/queue?embed=lastUnusedOffers")[1]["queue"][0]
    assert api.delete("/v2/queue//test-trivial-app/delay")[0] == 204
    assert api.delete("/v2/queue/nope/delay")[0] == 404


def test_event_subscriptions(api):
    assert api.get("/v2/eventSubscriptions")[1] == {"callbackUrls": []}
    status, body, _ = api.post("/v2/eventSubscriptions?callbackUrl=http://localhost:9/cb")
    assert status == 200 and body["eventType"] == "subscribe_event"
    assert api.get("/v2/eventSubscriptions")[1] == {"callbackUrls": ["http://localhost:9/cb"]}
    status, body, _ = api.delete("/v2/eventSubscriptions?callbackUrl=http://localhost:9/cb")
    assert status == 200 and body["eventType"] == "unsubscribe_event"
    assert api.post("/v2/eventSubscriptions?callbackUrl=nope")[0] == 422


def test_sse_stream_frames_and_filter(api, svc):
    async def read_events(query: str, n: int) -> list[dict]:
        resp = await api.client.get("/v2/events" + query,
                                    headers={"Accept": "text/event-stream"})
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        got: list[dict] = []
        event_line = None
        while len(got) < n:
            line = (await asyncio.wait_for(resp.content.readline(), 5)).decode()
            if line.startswith("event: "):
                event_line = line[7:].strip()
            elif line.startswith("data: "):
                ev = json.loads(line[6:])
                assert ev["eventType"] == event_line and "timestamp" in ev
                got.append(ev)
        resp.close()
        return got

    async def scenario(query: str, n: int) -> list[dict]:
        await wait_for_async(lambda: svc.state.streams == 0, what="the last stream gone")
        reader = asyncio.ensure_future(read_events(query, n))
        await wait_for_async(lambda: svc.state.streams, what="the stream attached")
        await api.client.post("/v2/apps", data=json.dumps(dict(TRIVIAL, id=f"e{n}")),
                              headers={"Content-Type": "application/json"})
        return await reader

    events = api.run(scenario("", 4))
    kinds = [e["eventType"] for e in events]
    assert kinds[0] == "event_stream_attached"
    assert "deployment_info" in kinds and "group_change_success" in kinds
    info = next(e for e in events if e["eventType"] == "deployment_info")
    assert {"original", "target", "id", "steps", "version"} <= set(info["plan"])
    assert info["currentStep"]["actions"]
    only = api.run(scenario("?event_type=api_post_event&event_type=deployment_info", 3))
    assert {e["eventType"] for e in only} == {"api_post_event", "deployment_info"}
    assert api.get("/v2/events", headers={"Accept": "application/json"})[0] == 405


def test_callback_subscribers_get_events_posted(api, svc):
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from marathon.subscribers import deliver

    async def scenario():
        got: list[dict] = []

        async def callback(request):
            got.append(await request.json())
            return web.Response()
        app = web.Application()
        app.router.add_post("/cb", callback)
        server = TestServer(app)
        await server.start_server()
        svc.state.subscriptions.append(str(server.make_url("/cb")))
        task = asyncio.ensure_future(deliver(svc))
        await asyncio.sleep(0.05)
        await api.client.post("/v2/apps", data=json.dumps(TRIVIAL),
                              headers={"Content-Type": "application/json"})
        for _ in range(100):
            if any(e["eventType"] == "api_post_event" for e in got):
                break
            await asyncio.sleep(0.02)
        task.cancel()
        await server.close()
        return got

    got = api.run(scenario())
    assert any(e["eventType"] == "api_post_event" and e["appDefinition"]["id"] ==
               "/test-trivial-app" for e in got), got


def test_group_dry_run_deploys_nothing(api, svc):
    api.post("/v2/groups", {"id": "/g", "apps": [{"id": "a", "cmd": "s a", "instances": 1}]})
    status, body, _ = api.put("/v2/groups/g?dryRun=true", {"id": "/g", "apps": [
        {"id": "a", "cmd": "s a", "instances": 3}, {"id": "b", "cmd": "s b"}]})
    assert status == 200
    assert body["steps"] == [{"actions": [{"action": "StartApplication", "app": "/g/b"}]},
                             {"actions": [{"action": "ScaleApplication", "app": "/g/a"},
                                          {"action": "ScaleApplication", "app": "/g/b"}]}]
    assert "/g/b" not in svc.state.apps and svc.state.apps["/g/a"]["instances"] == 1


def test_group_versions_and_rollback(api, svc):
    _, body, _ = api.post("/v2/groups", {"id": "/r", "apps": [{"id": "a", "cmd": "s 1"}]})
    v1 = body["version"]
    api.put("/v2/groups/r?force=true", {"id": "/r", "apps": [{"id": "a", "cmd": "s 2"},
                                                             {"id": "b", "cmd": "s b"}]})
    versions = api.get("/v2/groups/r/versions")[1]
    assert v1 in versions and len(versions) == 2 and versions == sorted(versions, reverse=True)
    # the client's form (PUT .../versions/<ts>) and Marathon's ({"version": ts}) both roll back
    status, body, _ = api.put(f"/v2/groups//r/versions/{v1}?force=True")
    assert status == 200 and "deploymentId" in body
    assert svc.state.apps["/r/a"]["cmd"] == "s 1" and "/r/b" not in svc.state.apps
    api.put("/v2/groups/r?force=true", {"id": "/r", "apps": [{"id": "a", "cmd": "s 3"}]})
    assert api.put("/v2/groups/r?force=true", {"version": v1})[0] == 200
    assert svc.state.apps["/r/a"]["cmd"] == "s 1"
    assert api.put("/v2/groups/r", {"version": "1999-01-01T00:00:00.000Z"})[0] == 404
    assert api.get("/v2/groups/nope/versions")[0] == 404
