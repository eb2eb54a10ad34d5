"""GPUs end to end with a fake `nvidia-smi` on the agent's PATH (the detection code path is
the real one): the agent advertises `gpus`, Marathon (GPU_RESOURCES) is offered them, and
each task of an app with `gpus: 1` sees exactly its own device in CUDA_VISIBLE_DEVICES; an
instance beyond the agent's GPUs waits with "insufficient gpus"."""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest

from mesos_common.daemons import free_port
from tests.conftest import Cluster
from tests.helpers import wait_for
from tests.integration.marathon_helpers import MarathonApi
from tests.unit.agent.test_gpus import UUIDS, fake_smi

pytestmark = pytest.mark.slow


def _devices(box: Path) -> str:
    return (box / "devices").read_text().strip()


def test_gpu_app_tasks_get_their_own_devices(cluster: Cluster, tmp_path: Path,
                                             monkeypatch) -> None:
    monkeypatch.setenv("PATH", f"{fake_smi(tmp_path / 'bin')}:{os.environ['PATH']}")
    ports = ",".join(f"{p}-{p}" for p in sorted({free_port() for _ in range(4)}))
    cluster.start_master()
    cluster.start_agent(f"cpus:2;mem:512;disk:64;ports:[{ports}]", "--containerizers=mesos")
    (agent,) = cluster.wait_agents(1)["slaves"]
    assert agent["resources"]["gpus"] == 2
    marathon = cluster.start_marathon(0, "--scale_apps_interval=0.5",
                                      "--decline_offer_duration=1secs")
    api = MarathonApi(marathon.field("http"))
    status, body = api.call("POST", "/v2/apps", {
        "id": "/cuda", "cmd": "echo $CUDA_VISIBLE_DEVICES > devices && sleep 600",
        "cpus": 0.1, "mem": 16, "gpus": 1, "instances": 3})
    assert status == 201, body
    tasks = wait_for(lambda: len(ts := [t for t in api.app("/cuda")["tasks"]
                                       if t["state"] == "TASK_RUNNING"]) == 2 and ts,
                     60, 0.2, "two GPU tasks running")
    seen = []
    for t in tasks:
        (box,) = list(cluster.agent_dirs[0].glob(f"**/executors/{t['id']}/runs/latest"))
        seen.append(wait_for(partial(_devices, box), 30, 0.1, "the task's devices"))
    assert sorted(seen) == sorted(UUIDS)
    queue = wait_for(lambda: [q for q in api.call("GET", "/v2/queue")[1]["queue"]
                              if q["app"]["id"] == "/cuda" and q["processedOffersSummary"]
                              ["rejectSummaryLastOffers"]], 30, 0.2, "the third waiting")
    reasons = {r["reason"] for r in queue[0]["processedOffersSummary"]["rejectSummaryLastOffers"]
               if r["declined"]}
    assert "insufficient gpus" in reasons, queue
