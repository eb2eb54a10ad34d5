"""The agent fleet: many real agent cores on real sockets in one process, driven by a real
master and the real batch framework."""
from __future__ import annotations

import json
import os
import subprocess

from mesos_common.daemons import python_module, spawn


def test_fleet_agents_register_and_run_a_batch(cluster):
    cluster.start_master("--allocation_interval=100ms")
    fleet = spawn("fleet", python_module(
        "mesos_agent.fleet", f"--master={cluster.master_addr}", "--agents=20",
        "--resources=cpus:1;mem:256;disk:100;ports:[31000-31001]"),
        cluster.root / "logs" / "fleet.log", "mesos-agent-fleet: started", timeout=60)
    try:
        state = cluster.wait_agents(20)
        assert {a["hostname"] for a in state["slaves"]} == {f"fleet-{i}" for i in range(20)}
        assert cluster.metrics()["master/cpus_total"] == 20.0
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESOS_")}
        batch = subprocess.run(python_module(
            "frameworks.examples.batch", f"--master={cluster.master_addr}", "--tasks=60",
            "--cpus=0.5", "--mem=32", "--command=sleep 0.3"),
            capture_output=True, text=True, timeout=120, env=env)
        assert batch.returncode == 0, batch.stdout + batch.stderr
        summary = json.loads(batch.stdout.strip().splitlines()[-1])
        assert summary["finished"] == 60 and len(summary["by_agent"]) > 1
    finally:
        fleet.stop()
