"""Mesos ACLs on a real cluster: a role the principal may not use is refused, a task as
root without the ACL is TASK_ERROR / REASON_TASK_UNAUTHORIZED, view_tasks filters
/master/state by who asks."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from frameworks.scheduler import SchedulerDriver
from mesos_common import messages as m
from mesos_common import task_states
from mesos_common.daemons import python_module
from tests.helpers import TaskHolder, wait_for
from tests.integration.security_helpers import DEV_SECRET, FW_SECRET, OPS_SECRET, write_credentials
from tests.integration.test_security_http import call

pytestmark = pytest.mark.slow

SMALL = "cpus:2;mem:512;disk:256;ports:[31000-31005]"
ANY_, NONE_ = {"type": "ANY"}, {"type": "NONE"}
ACLS = {
    "register_frameworks": [{"principals": {"values": ["fw"]}, "roles": {"values": ["dev"]}},
                            {"principals": {"values": ["fw"]}, "roles": NONE_}],
    "run_tasks": [{"principals": {"values": ["ops"]}, "users": ANY_},
                  {"principals": NONE_, "users": {"values": ["root"]}}],
    "view_tasks": [{"principals": {"values": ["ops"]}, "users": ANY_},
                   {"principals": {"values": ["dev"]}, "users": {"values": ["nobody"]}},
                   {"principals": ANY_, "users": NONE_}],
}


def execute(cluster, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESOS_")}
    return subprocess.run(python_module("frameworks.examples.execute",
                                        f"--master={cluster.master_addr}", *args),
                          capture_output=True, text=True, timeout=90, env=env)


def start(cluster, tmp_path: Path) -> None:
    creds = write_credentials(tmp_path / "secrets")
    cluster.start_master(f"--credentials={creds['master']}", "--authenticate_frameworks",
                         "--authenticate_http_readonly", f"--acls={json.dumps(ACLS)}")
    cluster.start_agent(SMALL)
    wait_for(lambda: len(json.loads(call(f"http://{cluster.master_addr}/master/state",
                                         ("ops", OPS_SECRET))[2])["slaves"]) == 1, 30,
             what="the agent")


def test_role_refused_and_root_task_unauthorized(cluster, tmp_path):
    start(cluster, tmp_path)
    fw = ["--principal=fw", f"--secret={FW_SECRET}"]
    refused = execute(cluster, "--name=prod", "--command=true", "--role=prod", *fw)
    assert refused.returncode != 0
    assert "may not register frameworks in role 'prod'" in refused.stdout + refused.stderr
    if os.getuid() != 0:
        pytest.skip("the root case needs the framework user to be root")
    as_root = execute(cluster, "--name=rooted", "--command=id -u", "--role=dev", *fw)
    assert as_root.returncode != 0
    assert "TASK_ERROR" in as_root.stdout and "REASON_TASK_UNAUTHORIZED" in as_root.stdout
    ops = execute(cluster, "--name=allowed", "--command=id -u", "--principal=ops",
                  f"--secret={OPS_SECRET}")
    assert ops.returncode == 0 and "TASK_FINISHED" in ops.stdout, ops.stdout + ops.stderr


def test_view_tasks_filters_master_state(cluster, tmp_path):
    start(cluster, tmp_path)
    drivers = []
    try:
        holders = {}
        # Users this host has (with --switch_user the tasks run as them).
        for user, principal, secret in (("nobody", "fw", FW_SECRET),
                                        ("daemon", "ops", OPS_SECRET)):
            holders[user] = TaskHolder(count=1, command="sleep 300", prefix=f"{user}-")
            info = m.FrameworkInfo(name=f"{user}-fw", user=user, roles=("dev",))
            driver = SchedulerDriver(holders[user], info, cluster.master_addr,
                                     principal=principal, secret=secret)
            driver.start()
            drivers.append(driver)
        wait_for(lambda: all(h.states() and set(h.states().values()) == {task_states.RUNNING}
                             for h in holders.values()), 60, what="both tasks running")
        url = f"http://{cluster.master_addr}/master/state"

        def users_seen(auth):
            state = json.loads(call(url, auth)[2])
            return sorted(f["user"] for f in state["frameworks"] for _ in f["tasks"])

        assert users_seen(("ops", OPS_SECRET)) == ["daemon", "nobody"]
        assert users_seen(("dev", DEV_SECRET)) == ["nobody"]
        assert users_seen(("fw", FW_SECRET)) == []
        tasks = json.loads(call(f"http://{cluster.master_addr}/master/tasks",
                                ("dev", DEV_SECRET))[2])["tasks"]
        assert len(tasks) == 1
    finally:
        for d in drivers:
            d.stop()
            d.join(10)
