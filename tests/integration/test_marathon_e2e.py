"""Marathon end to end on a real cluster: real master, agents, task processes, HTTP checks.

One app of `python3 -m http.server $PORT0` instances with an HTTP health check is created,
scaled, has a task process killed, is rolled to a new command, survives a kill -9 of
Marathon, and is deleted; each step is checked against the processes and the master.
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time

import pytest

from tests.helpers import wait_for
from tests.integration.marathon_helpers import MarathonApi, http_ok, listener_pid, start_marathon

pytestmark = pytest.mark.slow

AGENT = "cpus:2;mem:2048;disk:1024;ports:[31000-31099]"
WEB = {"id": "/web", "cmd": "python3 -m http.server $PORT0", "cpus": 0.1, "mem": 32,
       "instances": 3,
       "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
                         "intervalSeconds": 1, "timeoutSeconds": 5,
                         "gracePeriodSeconds": 30, "maxConsecutiveFailures": 3}],
       "upgradeStrategy": {"minimumHealthCapacity": 0.6, "maximumOverCapacity": 0.2}}


def _healthy(api: MarathonApi, n: int, what: str, timeout: float = 60) -> dict:
    def check():
        app = api.app("/web")
        tasks = app["tasks"]
        ok = (app["tasksHealthy"] == n and len(tasks) == n and not app["deployments"]
              and all(t["state"] == "TASK_RUNNING" for t in tasks))
        return app if ok else None
    return wait_for(check, timeout, 0.2, what)


def _framework_tasks(cluster) -> list[dict]:
    fws = [f for f in cluster.state()["frameworks"] if f["name"] == "marathon"]
    return [t for f in fws for t in f["tasks"] if t["state"] in ("TASK_RUNNING", "TASK_STAGING",
                                                                  "TASK_STARTING")]


class HealthWatcher(threading.Thread):
    """Samples the app's healthy count during a rolling restart."""

    def __init__(self, api: MarathonApi) -> None:
        super().__init__(daemon=True)
        self.api, self.stop = api, threading.Event()
        self.samples: list[tuple[int, int]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                app = self.api.app("/web")
                serving = [t for t in app["tasks"]
                           if http_ok(t["host"], t["ports"][0], timeout=5)]
                self.samples.append((app["tasksHealthy"], len(serving)))
            except Exception:
                pass
            time.sleep(0.1)


def test_marathon_keeps_an_app_at_its_declared_state(cluster, tmp_path):
    cluster.start_master()
    cluster.start_agent(AGENT)
    cluster.wait_agents(1)
    marathon = start_marathon(tmp_path, cluster.master_addr)
    port = int(marathon.field("http").rsplit(":", 1)[1])
    api = MarathonApi(marathon.field("http"))
    try:
        status, created = api.call("POST", "/v2/apps", WEB)
        assert status == 201, created
        app = _healthy(api, 3, "3 healthy tasks")
        for t in app["tasks"]:
            assert http_ok(t["host"], t["ports"][0])  # it listens on $PORT0
            assert 31000 <= t["ports"][0] <= 31099 and t["servicePorts"] == [10000]
        assert len(_framework_tasks(cluster)) == 3

        # scale to 5
        assert api.call("PUT", "/v2/apps/web", {"instances": 5})[0] == 200
        app = _healthy(api, 5, "5 healthy tasks")

        # a task process dies: it is replaced
        victim = app["tasks"][0]
        pid = listener_pid(victim["ports"][0])
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        app = wait_for(lambda: (a := api.app("/web")) and victim["id"] not in
                       {t["id"] for t in a["tasks"]} and a["tasksHealthy"] == 5 and a,
                       60, 0.2, "the killed task replaced")
        assert app["lastTaskFailure"]["taskId"] == victim["id"]

        # change cmd: rolling restart, never below minimumHealthCapacity
        before = {t["id"] for t in app["tasks"]}
        watcher = HealthWatcher(api)
        watcher.start()
        status, body = api.call("PUT", "/v2/apps/web",
                                {"cmd": "python3 -m http.server $PORT0 --bind 127.0.0.1"})
        assert status == 200, body
        wait_for(lambda: not api.deployments(), 120, 0.2, "the rolling restart")
        watcher.stop.set()
        watcher.join(5)
        app = _healthy(api, 5, "5 new healthy tasks")
        assert not before & {t["id"] for t in app["tasks"]}
        assert {t["version"] for t in app["tasks"]} == {app["version"]}
        floor = math.ceil(5 * 0.6)
        # pass/fail on what really answered; Marathon's own healthy count (first of each
        # sample) may dip when a probe is slow on a busy machine, which kills nothing
        assert watcher.samples and min(s for _, s in watcher.samples) >= floor, watcher.samples

        # kill -9 Marathon, restart it on the same state: same app, same tasks, no duplicates
        ids = {t["id"] for t in app["tasks"]}
        marathon.kill9()
        marathon = start_marathon(tmp_path, cluster.master_addr, port)
        wait_for(lambda: any(f["name"] == "marathon" and f["connected"]
                             for f in cluster.state()["frameworks"]), 30, 0.2, "re-subscribed")
        # 3 s of reconciliation and control ticks (1 s apart): nothing may replace the tasks
        time.sleep(3)
        app = _healthy(api, 5, "5 healthy tasks after the restart")
        assert {t["id"] for t in app["tasks"]} == ids
        assert {t["id"] for t in _framework_tasks(cluster)} == ids
        assert len(api.call("GET", "/v2/apps/web/versions")[1]["versions"]) == 3

        # delete: every task is killed
        ports = [t["ports"][0] for t in app["tasks"]]
        assert api.call("DELETE", "/v2/apps/web")[0] == 200
        wait_for(lambda: not _framework_tasks(cluster) and not api.deployments(), 60, 0.2,
                 "all tasks killed")
        assert api.call("GET", "/v2/apps/web")[0] == 404
        assert wait_for(lambda: not any(http_ok("127.0.0.1", p) for p in ports), 10)
    finally:
        marathon.stop()


FLAKY = {"id": "/flaky", "cmd": "timeout 6 python3 -m http.server $PORT0; sleep 600",
         "cpus": 0.1, "mem": 32, "instances": 1,
         "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/", "portIndex": 0,
                           "delaySeconds": 1, "intervalSeconds": 1, "timeoutSeconds": 1,
                           "gracePeriodSeconds": 3, "maxConsecutiveFailures": 2}]}


def test_agent_run_health_check_kills_a_task_that_stops_answering_and_marathon_replaces_it(
        cluster, tmp_path):
    """A MESOS_HTTP check is run by the agent, not by Marathon: Marathon puts it into the
    TaskInfo, the agent probes, flips `healthy` in status updates and kills the task when
    it stops answering; Marathon sees healthy, then the kill, and starts a replacement."""
    cluster.start_master()
    cluster.start_agent(AGENT)
    cluster.wait_agents(1)
    marathon = start_marathon(tmp_path, cluster.master_addr)
    api = MarathonApi(marathon.field("http"))
    status, created = api.call("POST", "/v2/apps", FLAKY)
    assert status == 201, created
    first = wait_for(lambda: (a := api.app("/flaky")) and a["tasksHealthy"] == 1
                     and a["tasks"][0]["id"], 60, 0.2, "the task healthy by the agent's check")
    # the server stops after 6 s; two failed probes later the agent kills the task
    replaced = wait_for(lambda: (a := api.app("/flaky")) and a["tasks"]
                        and first not in {t["id"] for t in a["tasks"]} and a, 60, 0.2,
                        "the unhealthy task killed and replaced")
    assert replaced["tasks"][0]["id"] != first
    state = cluster.state()
    [ended] = [t for f in state["frameworks"] for t in f["completed_tasks"] if t["id"] == first]
    healthy = [s.get("healthy") for s in ended["statuses"] if s["state"] == "TASK_RUNNING"]
    assert ended["state"] == "TASK_KILLED" and True in healthy and healthy[-1] is False
