"""`corral` against a real `mesos-local` (master, two agents, Marathon, dockerd): every command
in table and --json form, `task log --follow`, `--wait` that succeeds and one cancelled from
another process, a Compose stack deployed, edited and removed, and bad input refused.

One cluster serves the whole module; each test uses its own app names and removes what it
made. The `corral` console script runs as a user would run it (a subprocess)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import pytest

from mesos_agent.containerizer.docker import LABEL_AGENT
from mesos_agent.main import build_parser
from mesos_common.daemons import free_port, kill_task_processes, python_module
from tests.helpers import http_json, search, start_mesos_local, wait_for
from tests.integration.marathon_helpers import MarathonApi, http_ok

pytestmark = pytest.mark.slow
CORRAL = str(Path(sys.executable).with_name("corral"))
IMAGE = "corral/busybox:test"


class Local:
    """The running mesos-local and a way to run `corral` against it."""

    def __init__(self, root: Path, out: str) -> None:
        self.root = root
        self.master = search(r"mesos-local: master (http://\S+) ", out).group(1)
        self.marathon = search(r"mesos-local: marathon (http://\S+) ", out).group(1)
        self.api = MarathonApi(self.marathon)
        self.env = dict(os.environ, CORRAL_MASTER=self.master, CORRAL_MARATHON=self.marathon,
                        XDG_CONFIG_HOME=str(root / "config"), COLUMNS="200")

    def run(self, *args: str, input: str | None = None, code: int = 0,
            timeout: float = 120) -> subprocess.CompletedProcess:
        p = subprocess.run([CORRAL, *args], env=self.env, input=input, capture_output=True,
                           text=True, timeout=timeout)
        assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
        return p

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    @contextmanager
    def background(self, *args: str) -> Iterator[subprocess.Popen]:
        """`corral ARGS` running beside the test (killed if the test leaves it running)."""
        proc = subprocess.Popen([CORRAL, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def app(self, app_id: str) -> dict[str, Any]:
        return self.api.app(app_id)

    def no_deployments(self) -> bool:
        return self.api.deployments() == []


def _docker_env() -> dict[str, str]:
    """Agents that run Docker tasks: the default if it has docker already, else asked for."""
    default = build_parser().get_default("_default_containerizers")
    env = dict(os.environ)
    if default != "auto" and "docker" not in default.split(","):
        env["MESOS_CONTAINERIZERS"] = "mesos,docker"
    return env


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Iterator[Local]:
    # A work dir the tasks' user (`nobody` by default) can pass through (pytest's are 0700).
    root = Path(tempfile.mkdtemp(prefix="corral-cli-"))
    root.chmod(0o711)
    proc, out = start_mesos_local("--num_agents=2", "--port=0", f"--work_dir={root}",
                                  env=_docker_env())
    engine = docker.from_env()
    try:
        assert "ready" in out, out
        yield Local(root, out)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        for agent in sorted(root.glob("agent*")):
            kill_task_processes(agent)
            for c in engine.containers.list(all=True, filters={
                    "label": f"{LABEL_AGENT}={os.path.abspath(agent)}"}):
                c.remove(force=True)
        engine.close()
        shutil.rmtree(root, ignore_errors=True)


def _write(path: Path, doc: Any) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def _free_published_port() -> int:
    """A port in the first agent's range (mesos-local splits 31000-32000) nobody listens on."""
    for port in range(31400, 31000, -1):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 31000-31400")


# ---------------------------------------------------------------------- master side


def test_cluster_agent_framework_queue_commands(local: Local):
    state = http_json(local.master + "/master/state")
    summary = local.json("cluster")
    assert summary["agents"] == 2 and summary["leader"] == state["leader"]
    assert summary["resources"]["total"]["cpus"] == sum(a["resources"]["cpus"]
                                                        for a in state["slaves"])
    table = local.run("cluster").stdout
    assert state["leader"] in table and "2 active of 2" in table
    down = f"127.0.0.1:{free_port()}"  # a master list: the one that answers leads
    listed = local.run("--master", f"{down},{local.master.removeprefix('http://')}", "cluster")
    assert state["leader"] in listed.stdout
    err = local.run("--master", down, "cluster", code=1).stderr.strip()
    assert err == f"corral: error: cannot reach the master at http://{down}: connection refused"

    agents = local.json("agent", "list")
    assert sorted(a["id"] for a in agents) == sorted(a["id"] for a in state["slaves"])
    listing = local.run("agent", "list").stdout
    assert all(a["id"] in listing for a in agents)
    one = agents[0]
    assert local.json("agent", "show", one["id"]) == one
    shown = local.run("agent", "show", one["id"])
    assert f"{one['hostname']}:{one['port']}" in shown.stdout

    fws = local.json("framework", "list")
    assert [f["name"] for f in fws] == ["marathon"]
    assert fws[0]["id"] in local.run("framework", "list").stdout

    assert local.json("queue") == local.api.call("GET", "/v2/queue")[1]["queue"]
    assert local.run("queue").stdout == "the launch queue is empty\n"
    assert local.json("deployment", "list") == local.api.deployments()
    root = local.json("group", "list")
    assert root["id"] == "/"
    assert local.run("group", "list").stdout.splitlines()[1].startswith("/ ")
    shown = local.json("config", "show")
    assert shown["master"] == {"value": local.master, "from": "CORRAL_MASTER"}


def test_framework_teardown_kills_its_tasks(local: Local):
    host = local.master.removeprefix("http://")
    proc = subprocess.Popen(python_module("frameworks.examples.execute", f"--master={host}",
                                          "--name=held", "--command=sleep 600",
                                          "--framework_name=teardown-me"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        fw = wait_for(lambda: [f for f in local.json("framework", "list")
                               if f["name"] == "teardown-me" and f["tasks"]], 60, 0.5,
                      "the framework's task running")[0]
        assert local.json("task", "show", "held")["state"] == "TASK_RUNNING"
        out = local.run("framework", "teardown", fw["id"])
        assert fw["id"] in out.stdout
        assert fw["id"] not in [f["id"] for f in local.json("framework", "list")]
        done = [f for f in local.json("framework", "list", "--all") if f["id"] == fw["id"]]
        assert done and "completed" in local.run("framework", "list", "--all").stdout
        assert "held" not in [t["id"] for t in local.json("task", "list", "--all")]
        assert [t["state"] for t in done[0]["completed_tasks"]] == ["TASK_KILLED"]
        err = local.run("framework", "teardown", fw["id"], code=1).stderr
        assert err.startswith("corral: error: POST ") and "No framework found" in err
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


# ---------------------------------------------------------------------- apps and tasks


@pytest.mark.timeout(600)
def test_app_lifecycle_every_command(local: Local, tmp_path: Path):
    spec = {"id": "/life", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 2}
    out = local.run("app", "add", _write(tmp_path / "a.json", spec), "--wait")
    assert "finished" in out.stderr
    assert local.app("life")["tasksRunning"] == 2
    assert any(a["id"] == "/life" for a in local.json("app", "list"))
    assert re.search(r"/life\s+2/2", local.run("app", "list").stdout)
    shown = local.json("app", "show", "life")
    assert shown["id"] == "/life" and len(shown["tasks"]) == 2
    assert "sleep 600" in local.run("app", "show", "/life").stdout

    local.run("app", "update", "life", "-", "--wait", input=json.dumps({"cmd": "sleep 601"}))
    assert local.app("life")["cmd"] == "sleep 601"
    versions = local.json("app", "version", "list", "life")["versions"]
    assert len(versions) == 2 and versions[0] in local.run("app", "version", "list",
                                                           "life").stdout
    local.run("app", "rollback", "life", "--wait")
    assert local.app("life")["cmd"] == "sleep 600"
    before = {t["id"] for t in local.app("life")["tasks"]}
    local.run("app", "restart", "life", "--wait")
    after = {t["id"] for t in local.app("life")["tasks"]}
    assert len(after) == 2 and not before & after

    tasks = local.json("task", "list", "--app", "life")
    assert sorted(t["id"] for t in tasks) == sorted(after)
    listing = local.run("task", "list", "--app", "/life", "--state", "running").stdout
    assert all(t in listing for t in after)
    tid = sorted(after)[0]
    agent = local.json("task", "show", tid)["slave_id"]
    assert tid in [t["id"] for t in local.json("task", "list", "--agent", agent)]
    assert tid in local.run("task", "show", tid).stdout
    files = local.json("task", "ls", tid)
    assert {f["path"].rsplit("/", 1)[-1] for f in files} >= {"stdout", "stderr"}
    assert "stdout" in local.run("task", "ls", tid).stdout
    local.run("task", "download", tid, "stdout", "-o", str(tmp_path / "got"))
    assert (tmp_path / "got").exists()

    local.run("app", "kill", "life", tid, "--scale", "--wait")
    assert local.app("life")["instances"] == 1
    assert tid in [t["id"] for t in local.json("task", "list", "--all", "--app", "life")]
    local.run("app", "scale", "life", "0", "--wait")

    group = {"id": "/grp", "apps": [{"id": "one", "cmd": "sleep 600", "cpus": 0.1,
                                     "mem": 16, "instances": 1}]}
    local.run("group", "add", _write(tmp_path / "g.json", group), "--wait")
    assert [a["id"] for a in local.json("group", "show", "grp")["apps"]] == ["/grp/one"]
    assert "/grp/one" in local.run("group", "show", "/grp").stdout
    assert "/grp" in local.run("group", "list").stdout
    local.run("group", "remove", "grp", "--wait")
    local.run("app", "remove", "life", "--wait")
    assert local.api.call("GET", "/v2/apps/life")[0] == 404
    err = local.run("app", "show", "life", code=1).stderr.strip()
    assert err == f"corral: error: GET {local.marathon}/v2/apps/life: 404 App '/life' " \
                  "does not exist"
    bad = local.run("app", "add", "-", input=json.dumps({"id": "/bad", "cmd": "x", "cpus": -1}),
                    code=1).stderr.strip()
    assert bad.startswith("corral: error: POST ") and "/cpus" in bad and "\n" not in bad


def test_task_log_follow_prints_a_later_line_and_ends_with_the_task(local: Local, tmp_path):
    cmd = ("echo early; while [ ! -f go ]; do sleep 0.1; done; echo late-line; "
           "sleep 0.5; exit 0")
    local.run("app", "add", _write(tmp_path / "l.json", {
        "id": "/logger", "cmd": cmd, "cpus": 0.1, "mem": 16, "instances": 1,
        "backoffSeconds": 600}))
    try:
        task = wait_for(lambda: [t for t in local.json("task", "list", "--app", "logger")
                                 if t["state"] == "TASK_RUNNING"], 60, 0.3, "running")[0]
        with local.background("task", "log", task["id"], "--follow") as follower:
            assert follower.stdout is not None
            first = follower.stdout.readline()
            assert first == "early\n"
            sandbox = local.json("task", "ls", task["id"])[0]["path"].rsplit("/", 1)[0]
            Path(sandbox, "go").touch()
            rest, err = follower.communicate(timeout=60)
        assert follower.returncode == 0, err
        assert rest == "late-line\n"
        assert local.run("task", "log", task["id"], "--lines", "1").stdout == "late-line\n"
        assert local.run("task", "log", task["id"], "--stderr").returncode == 0
    finally:
        local.run("app", "remove", "logger", "--wait")


def test_scale_wait_exits_0_when_healthy_and_1_when_cancelled(local: Local, tmp_path):
    local.run("app", "add", _write(tmp_path / "w.json", {
        "id": "/web", "cmd": "python3 -m http.server $PORT0", "cpus": 0.3,
        "mem": 32, "instances": 1,
        "healthChecks": [{"protocol": "HTTP", "intervalSeconds": 1, "gracePeriodSeconds": 30}]}),
        "--wait")
    try:
        out = local.run("app", "scale", "web", "3", "--wait")
        assert "3/3 healthy" in out.stderr and "finished" in out.stderr
        app = local.app("web")
        assert app["tasksHealthy"] == 3
        assert all(http_ok(t["host"], t["ports"][0]) for t in app["tasks"])

        # 10 x 0.3 cpus do not fit the two agents: the deployment waits until cancelled.
        with local.background("app", "scale", "web", "10", "--wait") as waiting:
            dep = wait_for(lambda: local.api.deployments(), 30, 0.2, "the deployment")[0]
            time.sleep(1)
            assert waiting.poll() is None
            local.run("deployment", "rollback", dep["id"])  # "another shell"
            _, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 1, err
        assert f"corral: error: deployment {dep['id']} failed: canceled" in err
        wait_for(local.no_deployments, 60, 0.3, "the rollback done")
        assert local.app("web")["instances"] == 3

        local.run("app", "scale", "web", "10")
        dep = wait_for(lambda: local.api.deployments(), 30, 0.2, "the deployment")[0]
        with local.background("deployment", "watch", dep["id"]) as watcher:
            time.sleep(1)
            assert [d["id"] for d in local.json("deployment", "list")] == [dep["id"]]
            assert dep["id"] in local.run("deployment", "list").stdout
            local.run("deployment", "stop", dep["id"])
            _, err = watcher.communicate(timeout=60)
        assert watcher.returncode == 1 and "failed: canceled" in err
    finally:
        local.run("app", "remove", "web", "--force", "--wait")


# ---------------------------------------------------------------------- Compose stacks


COMPOSE = """
services:
  web:
    image: corral/busybox:test
    command: ["sh", "-c", "mkdir -p /www && echo hello-stack > /www/index.html &&
              exec httpd -f -p 80 -h /www"]
    ports: ["{port}:80"]
    environment: {{GREETING: "{greeting}"}}
    restart: always
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      timeout: 10s
      retries: 5
  worker:
    image: corral/busybox:test
    command: sh -c "while true; do echo working; sleep 1; done"
    depends_on: [web]
    deploy:
      replicas: 2
      resources: {{limits: {{cpus: "0.1", memory: 32M}}}}
    healthcheck:
      test: ["CMD-SHELL", "true"]
      interval: 1s
"""


def _healthy(local: Local, app_id: str) -> bool:
    a = local.app(app_id)
    return a["tasksHealthy"] == a["instances"] > 0


@pytest.mark.timeout(600)
def test_compose_stack_deploy_edit_and_remove(local: Local, tmp_path: Path):
    port = _free_published_port()
    f = tmp_path / "docker-compose.yml"
    f.write_text(COMPOSE.format(port=port, greeting="hi"))
    try:
        out = local.run("stack", "deploy", "-c", str(f), "demo", "--wait", timeout=240)
        assert "warning: ignoring keys Corral cannot honour: services.web.restart" in out.stderr
        assert _healthy(local, "demo/web") and _healthy(local, "demo/worker")
        assert local.app("demo/worker")["instances"] == 2
        assert local.app("demo/worker")["dependencies"] == ["/demo/web"]
        wait_for(lambda: http_ok("127.0.0.1", port), 30, 0.3, "the published port")
        assert [s["name"] for s in local.json("stack", "ls")] == ["demo"]
        assert re.search(r"demo\s+2", local.run("stack", "ls").stdout)
        services = local.json("stack", "services", "demo")
        assert sorted(a["id"] for a in services) == ["/demo/web", "/demo/worker"]
        table = local.run("stack", "services", "demo").stdout
        assert f"{port}->80/tcp" in table and re.search(r"worker\s+corral/busybox:test\s+2/2",
                                                        table)

        web, worker = local.app("demo/web"), local.app("demo/worker")
        f.write_text(COMPOSE.format(port=port, greeting="hello"))
        out = local.run("stack", "deploy", "-c", str(f), "demo", "--wait", timeout=300)
        assert "updating /demo/web; unchanged /demo/worker" in out.stderr
        web2, worker2 = local.app("demo/web"), local.app("demo/worker")
        assert web2["env"] == {"GREETING": "hello"} and web2["version"] != web["version"]
        assert not {t["id"] for t in web["tasks"]} & {t["id"] for t in web2["tasks"]}
        assert worker2["version"] == worker["version"]
        assert {t["id"] for t in worker2["tasks"]} == {t["id"] for t in worker["tasks"]}
        assert _healthy(local, "demo/web")
        again = local.run("stack", "deploy", "-c", str(f), "demo")
        assert "stack demo is up to date" in again.stderr
    finally:
        local.run("stack", "rm", "demo", "--wait", "--force", timeout=240)
    assert local.api.call("GET", "/v2/groups/demo")[0] == 404
    assert local.json("stack", "ls") == []
    assert not [a for a in local.json("app", "list") if a["id"].startswith("/demo/")]
    assert local.run("stack", "rm", "demo", code=1).stderr.strip() == \
        "corral: error: no stack 'demo'"


@pytest.mark.parametrize("text,flags,message", [
    ("services:\n  web:\n    image: i\n    colour: red\n", ["--strict"],
     "keys Corral cannot honour (--strict): services.web.colour"),
    ("services:\n  web:\n    command: x\n", [],
     "service 'web', key 'image': missing (Corral runs images; 'build' is not supported)"),
    ("services:\n  web:\n    image: i\n    ports: ['31000:80:90']\n", [],
     "service 'web', key 'ports[0]': bad port spec '31000:80:90'"),
    ("services:\n  web:\n    image: i\n  ports: [80\n", [],
     "bad.yml:5:1: YAML does not parse"),
])
def test_bad_compose_input_is_one_line_and_deploys_nothing(local: Local, tmp_path: Path, text,
                                                           flags, message):
    f = tmp_path / "bad.yml"
    f.write_text(text)
    err = local.run("stack", "deploy", *flags, "-c", str(f), "bad", code=1).stderr
    line, = err.strip().splitlines()
    assert line.startswith("corral: error: ") and message in line, line
    assert local.api.call("GET", "/v2/groups/bad")[0] == 404
    assert not [d for d in local.api.deployments()
                if any(a.startswith("/bad/") for a in d["affectedApps"])]
