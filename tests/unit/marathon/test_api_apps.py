"""Contract tests for /v2/apps, versions, info, ping, leader, metrics (reference §1, §3)."""
from __future__ import annotations

import re

from tests.unit.marathon.conftest import add_task

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# Keys marathon-python 0.13.0 can parse back (reference §1.4); anything else is a TypeError.
CLIENT_APP_KEYS = set("""acceptedResourceRoles args backoffFactor backoffSeconds cmd constraints
container cpus dependencies deployments disk env executor healthChecks id role instances
killSelection labels lastTaskFailure maxLaunchDelaySeconds mem ports requirePorts storeUrls
taskRateLimit tasks tasksRunning tasksStaged tasksHealthy taskKillGracePeriodSeconds
tasksUnhealthy upgradeStrategy unreachableStrategy uris user version versionInfo ipAddress
fetch taskStats readinessChecks readinessCheckResults secrets portDefinitions residency gpus
networks""".split())
CLIENT_TASK_KEYS = set("""appId healthCheckResults host id ports servicePorts slaveId stagedAt
startedAt version ipAddresses state localVolumes region zone role""".split())
CLIENT_CONTAINER_KEYS = {"docker", "type", "portMappings", "volumes"}
CLIENT_PORT_MAPPING_KEYS = {"name", "containerPort", "hostPort", "servicePort", "protocol",
                            "labels"}
TRIVIAL = {"cmd": "sleep 3600", "cpus": 0.1, "id": "test-trivial-app", "instances": 5, "mem": 16}
COMPLEX = {
    "backoffFactor": 2, "backoffSeconds": 1, "cmd": "/bin/true",
    "container": {"docker": {
        "forcePullImage": False, "image": "localhost/fake_docker_url", "network": "BRIDGE",
        "parameters": [{"key": "add-host", "value": "google-public-dns-a.google.com:8.8.8.8"}],
        "portMappings": [{"containerPort": 8888, "hostPort": 0, "name": "myport",
                          "protocol": "tcp"}], "privileged": False},
        "type": "DOCKER",
        "volumes": [{"containerPath": "/etc/stuff", "hostPath": "/etc/stuff", "mode": "RO"}]},
    "cpus": 0.25, "healthChecks": [{"gracePeriodSeconds": 3, "intervalSeconds": 10,
                                    "maxConsecutiveFailures": 3, "path": "/health",
                                    "portIndex": 0, "protocol": "HTTP", "timeoutSeconds": 10}],
    "id": "test-complex-app", "instances": 1, "mem": 30, "uris": ["file:///root/.dockercfg"]}


def test_create_answers_201_with_the_app_and_headers(api):
    status, app, headers = api.post("/v2/apps", TRIVIAL)
    assert status == 201
    assert app["id"] == "/test-trivial-app" and app["instances"] == 5 and app["mem"] == 16
    assert set(app) <= CLIENT_APP_KEYS, set(app) - CLIENT_APP_KEYS
    assert app["tasksRunning"] == 0 and len(app["deployments"]) == 1
    assert headers["Location"] == "/v2/apps/test-trivial-app"
    assert headers["Marathon-Deployment-Id"] == app["deployments"][0]["id"]
    assert app["portDefinitions"] == [{"port": 10000, "name": "default", "protocol": "tcp"}]
    assert TS.match(app["version"])


def test_complex_docker_app_is_normalised_to_client_parseable_keys(api):
    status, app, _ = api.post("/v2/apps", COMPLEX)
    assert status == 201
    assert set(app) <= CLIENT_APP_KEYS
    assert set(app["container"]) <= CLIENT_CONTAINER_KEYS
    pm = app["container"]["portMappings"][0]
    assert set(pm) <= CLIENT_PORT_MAPPING_KEYS
    assert pm["hostPort"] == 0 and pm["containerPort"] == 8888 and pm["servicePort"] == 10000
    assert app["networks"] == [{"mode": "container/bridge"}]
    assert "portMappings" not in app["container"]["docker"]
    assert app["fetch"][0]["uri"] == "file:///root/.dockercfg" and "uris" not in app


def test_duplicate_is_409_and_unknown_is_404(api):
    api.post("/v2/apps", TRIVIAL)
    status, body, headers = api.post("/v2/apps", TRIVIAL)
    assert status == 409 and body["message"] == "An app with id [/test-trivial-app] already exists."
    assert headers["Content-Type"].startswith("application/json")
    assert api.get("/v2/apps/nope")[:2] == (404, {"message": "App '/nope' does not exist"})


def test_invalid_definition_is_422_with_details(api):
    status, body, _ = api.post("/v2/apps", {"id": "a", "cmd": "x", "mem": -1,
                                            "upgradeStrategy": {"minimumHealthCapacity": 2}})
    assert status == 422 and body["message"] == "Object is not valid"
    paths = {d["path"]: d["errors"] for d in body["details"]}
    assert set(paths) == {"/mem", "/upgradeStrategy/minimumHealthCapacity"}
    assert all(paths.values())
    status, body, _ = api.post("/v2/apps", {"id": "a"})
    assert status == 422 and body["details"][0]["path"] == "/"
    assert "'cmd' or 'args'" in body["details"][0]["errors"][0]
    status, body, _ = api.post("/v2/apps", {"id": "Bad_Id", "cmd": "x"})
    assert status == 422 and body["details"][0]["path"] == "/id"
    status, body, _ = api.post("/v2/apps", {"id": "a/tasks", "cmd": "xx"})
    assert status == 422 and "reserved" in body["details"][0]["errors"][0]
    status, body, _ = api.post("/v2/apps", {"id": "c", "cmd": "xx",
                                            "constraints": [["hostname", "UNIQUE", "x"]]})
    assert status == 422 and body["details"] == [
        {"path": "/constraints(0)", "errors": ["UNIQUE does not accept a value"]}]
    assert api.get("/v2/apps")[1] == {"apps": []}


def test_unparseable_json_is_400_with_string_details(api):
    status, body, headers = api.call("POST", "/v2/apps", raw="{not json")
    assert status == 400 and body["message"] == "Invalid JSON"
    assert isinstance(body["details"], str) and body["details"]
    assert headers["Content-Type"].startswith("application/json")


def test_double_slashes_and_capitalised_booleans(api, svc):
    api.post("/v2/apps", TRIVIAL)
    assert api.get("/v2/apps//test-trivial-app")[0] == 200
    status, body, _ = api.put("/v2/apps//test-trivial-app?force=False", {"instances": 2})
    assert status == 409 and "locked" in body["message"] and body["deployments"]
    status, body, headers = api.put("/v2/apps//test-trivial-app?force=True", {"instances": 2})
    assert status == 200 and set(body) == {"deploymentId", "version"}
    assert headers["Marathon-Deployment-Id"] == body["deploymentId"]
    assert svc.state.apps["/test-trivial-app"]["instances"] == 2
    assert api.get("/v2/apps//test-trivial-app/versions")[1]["versions"].__len__() == 2


def test_get_always_embeds_tasks_and_counts(api, svc):
    api.post("/v2/apps", TRIVIAL)
    add_task(svc, "/test-trivial-app", 2)
    app = api.get("/v2/apps/test-trivial-app")[1]["app"]
    assert app["tasksRunning"] == 2 and len(app["tasks"]) == 2
    for t in app["tasks"]:
        assert set(t) <= CLIENT_TASK_KEYS
        assert t["appId"] == "/test-trivial-app" and t["servicePorts"] == [10000]
        assert TS.match(t["stagedAt"]) and TS.match(t["startedAt"])
        assert re.match(r"^test-trivial-app\.instance-[0-9a-f-]{36}\._app\.1$", t["id"])
    listed = api.get("/v2/apps")[1]["apps"][0]
    assert "tasks" not in listed and listed["tasksRunning"] == 2
    listed = api.get("/v2/apps?embed=apps.tasks&embed=apps.counts")[1]["apps"][0]
    assert len(listed["tasks"]) == 2


def test_list_filters(api):
    api.post("/v2/apps", {"id": "/prod/web", "cmd": "python3 -m http.server",
                          "labels": {"tier": "web", "env": "prod"}})
    api.post("/v2/apps", {"id": "/prod/db", "cmd": "postgres", "labels": {"tier": "db"}})
    ids = lambda q: [a["id"] for a in api.get("/v2/apps" + q)[1]["apps"]]  # noqa: E731
    assert ids("?cmd=HTTP.server") == ["/prod/web"]
    assert ids("?id=DB") == ["/prod/db"]
    assert ids("?label=tier==web") == ["/prod/web"]
    assert ids("?label=tier!=web") == ["/prod/db"]
    assert ids("?label=tier in (db, cache)") == ["/prod/db"]
    assert ids("?label=env") == ["/prod/web"]
    assert ids("?label=tier,env==prod") == ["/prod/web"]


def test_put_creates_then_updates_and_rolls_back(api, svc):
    status, body, headers = api.put("/v2/apps/new", {"cmd": "sleep 10", "instances": 0})
    assert status == 201 and headers["Location"] == "/v2/apps/new"
    v1 = svc.state.apps["/new"]["version"]
    status, _, _ = api.put("/v2/apps/new?force=true", {"cmd": "sleep 20"})
    assert status == 200
    app = svc.state.apps["/new"]
    assert app["cmd"] == "sleep 20" and app["instances"] == 0  # partial update kept it
    assert app["versionInfo"]["lastConfigChangeAt"] == app["version"]
    status, body, _ = api.put("/v2/apps/new?force=true", {"version": v1, "cmd": "x"})
    assert status == 400 and "may only be combined" in body["message"]
    status, body, _ = api.put("/v2/apps/new?force=true", {"version": "2000-01-01T00:00:00.000Z"})
    assert status == 404 and "does not exist in version" in body["message"]
    assert api.put("/v2/apps/new?force=true", {"version": v1})[0] == 200
    assert svc.state.apps["/new"]["cmd"] == "sleep 10" and svc.state.apps["/new"]["version"] != v1
    versions = api.get("/v2/apps/new/versions")[1]["versions"]
    assert len(versions) == 3 and v1 in versions
    assert api.get(f"/v2/apps/new/versions/{v1}")[1]["cmd"] == "sleep 10"
    assert api.get("/v2/apps/new/versions/2000-01-01T00:00:00.000Z")[0] == 404


def test_put_with_read_only_fields_from_a_get_is_accepted(api):
    api.post("/v2/apps", TRIVIAL)
    app = api.get("/v2/apps/test-trivial-app")[1]["app"]
    app["version"] = None
    app.pop("version")
    app["instances"] = 1
    assert api.put("/v2/apps/test-trivial-app?force=true", app)[0] == 200


def test_update_scale_only_keeps_config_version(api, svc):
    api.post("/v2/apps", TRIVIAL)
    before = svc.state.apps["/test-trivial-app"]["versionInfo"]["lastConfigChangeAt"]
    api.put("/v2/apps/test-trivial-app?force=true", {"instances": 7})
    vi = svc.state.apps["/test-trivial-app"]["versionInfo"]
    assert vi["lastConfigChangeAt"] == before and vi["lastScalingAt"] != before


def test_patch_and_put_many(api, svc):
    assert api.call("PATCH", "/v2/apps/missing", {"instances": 1})[0] == 404
    api.post("/v2/apps", TRIVIAL)
    assert api.call("PATCH", "/v2/apps/test-trivial-app?force=true", {"instances": 3})[0] == 200
    assert svc.state.apps["/test-trivial-app"]["instances"] == 3
    status, body, _ = api.put("/v2/apps?force=true", [{"id": "a1", "cmd": "sleep 1"},
                                                      {"id": "a2", "cmd": "sleep 2"}])
    assert status == 200 and set(body) == {"deploymentId", "version"}
    assert {"/a1", "/a2"} <= set(svc.state.apps)
    status, body, _ = api.put("/v2/apps", [{"id": "a3", "cmd": "s"}, {"id": "a4", "cpus": -1}])
    assert status == 422 and body["details"][0]["path"].startswith("(1)")
    assert "/a3" not in svc.state.apps


def test_delete_and_restart(api, svc):
    api.post("/v2/apps", TRIVIAL)
    tasks = add_task(svc, "/test-trivial-app", 2)
    status, body, _ = api.post("/v2/apps/test-trivial-app/restart?force=true")
    assert status == 200 and "deploymentId" in body
    version_info = svc.state.apps["/test-trivial-app"]["versionInfo"]
    assert version_info["lastConfigChangeAt"] == body["version"]
    steps = [d for d in api.get("/v2/deployments")[1] if d["id"] == body["deploymentId"]][0]
    assert steps["steps"] == [{"actions": [{"action": "RestartApplication",
                                            "app": "/test-trivial-app"}]}]
    assert api.post("/v2/apps/nope/restart")[0] == 404
    status, body, _ = api.delete("/v2/apps//test-trivial-app?force=True")
    assert status == 200 and "deploymentId" in body
    assert "/test-trivial-app" not in svc.state.apps
    killed = {a[0] for a in svc.driver.named("kill_task")}
    assert {t.id for t in tasks} <= killed
    assert api.delete("/v2/apps/test-trivial-app")[0] == 404


def test_info_ping_leader_metrics(api):
    status, info, _ = api.get("/v2/info")
    assert status == 200 and info["name"] == "marathon" and info["version"] == "1.10.26"
    for key in ("marathon_config", "zookeeper_config", "http_config"):
        assert isinstance(info[key], dict)
    assert set(info) <= {"event_subscriber", "frameworkId", "http_config", "leader",
                         "marathon_config", "name", "version", "elected", "zookeeper_config",
                         "buildref"}
    assert api.get("/ping") [:2] == (200, "pong")
    assert api.get("/ping", headers={"Accept": "text/plain"})[:2] == (200, "pong")
    assert api.get("/v2/leader")[1] == {"leader": info["leader"]}
    assert api.delete("/v2/leader")[1] == {"message": "Leadership abdicated"}
    metrics = api.get("/metrics")[1]
    assert {"counters", "gauges", "histograms", "meters", "timers"} <= set(metrics)


def test_unknown_route_and_method(api):
    status, body, _ = api.get("/v2/nothing")
    assert status == 404 and body["message"]
    status, body, _ = api.call("PATCH", "/v2/deployments")
    assert status == 405 and body["message"]
