"""Driven by test_marathon_client_compat.py in the real `marathon` client's own virtualenv.

Runs the client's API calls against the server given in argv[1] and prints one JSON object:
step name -> result (or "ERROR: ..."), so the test can say exactly which call broke.
Python >= 3.10 needs the collections.Iterable shim (reference §0.7) before serialising.
"""
import collections
import collections.abc
import json
import sys
import threading
import time
import traceback
from typing import Any

# marathon 0.13.0 on Python >= 3.10; the shim is what the stubs rightly do not have
collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]

# The third-party client, not this repository's `marathon` package that mypy sees
from marathon import MarathonClient  # type: ignore[attr-defined]  # noqa: E402
from marathon.models import MarathonApp, MarathonGroup  # noqa: E402
from marathon.models.app import MarathonHealthCheck  # noqa: E402
from marathon.models.container import (  # noqa
    MarathonContainer,
    MarathonContainerPortMapping,
    MarathonContainerVolume,
    MarathonDockerContainer,
)

client = MarathonClient(sys.argv[1])
results: dict[str, Any] = {}


def step(name, fn):
    try:
        results[name] = fn()
    except Exception as e:  # reported per step
        results[name] = "ERROR: " + repr(e) + " " + traceback.format_exc()[-600:]


def wait_deployed(app_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        app = client.get_app(app_id, embed_tasks=True)
        if not app.deployments and app.tasks_running == app.instances:
            return app
        time.sleep(0.3)
    raise AssertionError(f"deployment of {app_id} did not finish")


events: list[str] = []


def listen():
    try:
        for ev in client.event_stream():
            events.append(ev.event_type)
            if len(events) >= 12:
                return
    except Exception as e:
        events.append("ERROR: " + repr(e))


listener = threading.Thread(target=listen, daemon=True)
listener.start()
time.sleep(0.5)

step("ping", lambda: client.ping().decode())
step("info", lambda: client.get_info().version)
step("leader", lambda: client.get_leader())
step("metrics", lambda: sorted(client.get_metrics()))
step("create", lambda: client.create_app("test-trivial-app", MarathonApp(
    cmd="sleep 3600", mem=16, cpus=0.1, instances=5)).id)
step("deployments", lambda: len(client.list_deployments()))
step("wait", lambda: wait_deployed("test-trivial-app").tasks_running)
step("list_apps", lambda: [a.id for a in client.list_apps()])
step("list_apps_filtered", lambda: [a.id for a in client.list_apps(cmd="sleep", app_id="trivial",
                                                                   embed_tasks=True)])
step("get_app", lambda: (lambda a: [a.id, a.instances, len(a.tasks)])(
    client.get_app("test-trivial-app")))
step("list_tasks", lambda: len(client.list_tasks("test-trivial-app")))
step("list_all_tasks", lambda: len(client.list_tasks()))
step("endpoints", lambda: len(client.list_endpoints()))
step("scale", lambda: client.scale_app("test-trivial-app", instances=3, force=True) and
     wait_deployed("test-trivial-app").instances)
step("scale_delta", lambda: client.scale_app("test-trivial-app", delta=1, force=True) and
     wait_deployed("test-trivial-app").instances)


def update():
    app = client.get_app("test-trivial-app")
    app.cmd = "sleep 3601"
    app.health_checks = [MarathonHealthCheck(protocol="COMMAND", command={"value": "true"})]
    dep = client.update_app("test-trivial-app", app, force=True)
    app = wait_deployed("test-trivial-app")
    return [bool(dep["deploymentId"]), app.cmd]


step("update", update)
step("restart", lambda: bool(client.restart_app("test-trivial-app", force=True)["deploymentId"])
     and wait_deployed("test-trivial-app").tasks_running)


def kill_scale():
    app = client.get_app("test-trivial-app")
    res = client.kill_task("test-trivial-app", app.tasks[0].id, scale=True)
    return [sorted(res), wait_deployed("test-trivial-app").instances]


step("kill_task_scale", kill_scale)


def kill_given():
    app = client.get_app("test-trivial-app", embed_tasks=True)
    ok = client.kill_given_tasks([t.id for t in app.tasks[:2]])
    time.sleep(1)
    return [ok, wait_deployed("test-trivial-app").tasks_running]


step("kill_given_tasks", kill_given)
step("kill_tasks", lambda: len(client.kill_tasks("test-trivial-app")))
step("versions", lambda: len(client.list_versions("test-trivial-app")))
step("get_version", lambda: client.get_version(
    "test-trivial-app", client.list_versions("test-trivial-app")[-1]).id)
step("complex", lambda: client.create_app("test-complex-app", MarathonApp(
    cmd="/bin/true", mem=30, cpus=0.25, instances=1, backoff_seconds=1, backoff_factor=2,
    uris=["file:///root/.dockercfg"],
    container=MarathonContainer(
        type="DOCKER",
        docker=MarathonDockerContainer(
            image="localhost/fake_docker_url", network="BRIDGE",
            port_mappings=[MarathonContainerPortMapping(container_port=8888, host_port=0,
                                                        name="myport", protocol="tcp")],
            parameters=[{"key": "add-host", "value": "google-public-dns-a.google.com:8.8.8.8"}]),
        volumes=[MarathonContainerVolume(container_path="/etc/stuff", host_path="/etc/stuff",
                                         mode="RO")]),
    health_checks=[MarathonHealthCheck(protocol="HTTP", path="/health", port_index=0,
                                       grace_period_seconds=3, interval_seconds=10,
                                       timeout_seconds=10, max_consecutive_failures=3)])).id)
step("get_complex", lambda: client.get_app("test-complex-app").container.docker.image)
step("queue_app", lambda: client.create_app("test-queued-app", MarathonApp(
    cmd="sleep 1", mem=16, cpus=1000, instances=2)).id)
step("queue", lambda: [(q.app.id, q.count) for q in client.list_queue()])
step("reset_delay", lambda: client.reset_delay("test-queued-app") is None)
step("deployments_force_delete", lambda: [client.delete_deployment(d.id, force=True)
                                          for d in client.list_deployments()])
step("create_group", lambda: sorted(client.create_group(MarathonGroup(
    id="/grp", apps=[MarathonApp(id="g1", cmd="sleep 100", mem=16, cpus=0.1, instances=1)]))))
step("list_groups", lambda: [g.id for g in client.list_groups()])
step("get_group", lambda: [a.id for a in client.get_group("/grp").apps])
step("group_deployed", lambda: wait_deployed("/grp/g1").tasks_running)
step("scale_group", lambda: sorted(client.scale_group("/grp", 2)))  # no force: must be idle
step("group_scaled", lambda: client.get_app("/grp/g1").instances)
step("delete_group", lambda: sorted(client.delete_group("/grp", force=True)))
step("subscriptions", lambda: client.create_event_subscription("http://localhost:9/cb")
     and client.list_event_subscriptions())
for app_id in ("test-trivial-app", "test-complex-app", "test-queued-app"):
    step("delete_" + app_id, lambda app_id=app_id: sorted(client.delete_app(app_id, force=True)))
listener.join(20)
results["events"] = events
print(json.dumps(results, default=str))
