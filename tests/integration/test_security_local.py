"""`mesos-local --secure`: everything with CURVE, authentication and TLS, and the printed
tour works with the printed credentials; no secret in any output or log."""
from __future__ import annotations

import json
import os
import shlex
import signal
import ssl
import subprocess
from pathlib import Path

import pytest

from mesos_common.daemons import kill_task_processes, python_module
from tests.helpers import search, start_mesos_local, wait_for
from tests.integration.test_security_http import call

pytestmark = pytest.mark.slow

SMALL = "cpus:1;mem:256;disk:256;ports:[31000-31005]"


def test_mesos_local_secure_tour(tmp_path: Path):
    proc, out = start_mesos_local("--secure", "--num_agents=1", "--port=0",
                                  f"--work_dir={tmp_path}", f"--resources={SMALL}")
    rest = ""
    try:
        assert "ready" in out, out
        secure = tmp_path / "secure"
        creds = json.loads((secure / "credentials.json").read_text())["credentials"]
        secrets = [c["secret"] for c in creds]
        operator = next(c["secret"] for c in creds if c["principal"] == "operator")
        master = search(r"master (https://\S+) ", out).group(1)
        ctx = ssl.create_default_context(cafile=str(secure / "ca.pem"))
        assert call(f"{master}/master/state", context=ctx)[0] == 401

        def state():
            return json.loads(call(f"{master}/master/state", ("operator", operator),
                                   context=ctx)[2])
        s = wait_for(lambda: (s := state()) and len(s["slaves"]) == 1 and s["frameworks"]
                     and s, 60, what="the agent and Marathon")
        assert s["slaves"][0]["principal"] == "agent"
        assert [f["principal"] for f in s["frameworks"]] == ["marathon"]
        tour = next(line for line in out.splitlines() if "mesos-execute" in line)
        env_part, command = tour.split("try  ", 1)[1].split(" mesos-execute ", 1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOS_")}
        env.update(dict([env_part.split("=", 1)]))
        run = subprocess.run(python_module("frameworks.examples.execute",
                                           *shlex.split(command)),
                             capture_output=True, text=True, timeout=90, env=env)
        assert run.returncode == 0 and "TASK_FINISHED" in run.stdout, run.stdout + run.stderr
        marathon = search(r"(https://\S+)/v2/apps", out).group(1)
        assert call(f"{marathon}/v2/apps", context=ctx)[0] == 401
        # Marathon names no user: its task runs as the agents' --default_user, nobody.
        app = json.dumps({"id": "hello", "cmd": "id -un > whoami; sleep 600", "mem": 16,
                          "cpus": 0.1}).encode()
        assert call(f"{marathon}/v2/apps", ("operator", operator), "POST", app,
                    context=ctx)[0] == 201
        who = wait_for(lambda: [p.read_text().strip() for p in tmp_path.glob(
            "agent1/slaves/*/frameworks/*/executors/hello*/runs/*/whoami") if p.read_text()],
            60, what="the app's task to say who it runs as")
        assert set(who) == {"nobody"}
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        kill_task_processes(tmp_path)
    texts = [out, rest, run.stdout, run.stderr]
    texts += [p.read_text() for p in (tmp_path / "logs").glob("*.log")]
    assert not [s for s in secrets for t in texts if s in t]
