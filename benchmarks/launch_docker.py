"""N containers on one agent through Corral vs a plain `docker run -d` loop, same image.

Corral: ACCEPT of N DOCKER tasks (`sleep 600` in corral/busybox:test, host network, cpu and
memory limits) -> the N-th TASK_RUNNING. Baseline in the same run: `docker run -d` with the
same image, command and limits, one after another. `ratio` = Corral's time / docker's time.

    python -m benchmarks.launch_docker --count 50
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks._common import finish, say
from benchmarks._launch import corral_launch
from mesos_agent.containerizer.docker import LABEL_AGENT
from mesos_common.messages import ContainerInfo, DockerInfo

IMAGE = "corral/busybox:test"
CPUS, MEM = 0.05, 32


def remove_labelled(label: str) -> None:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def docker_loop(n: int) -> float:
    label = f"corral.bench={uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    try:
        for _ in range(n):
            subprocess.run(["docker", "run", "-d", "--label", label, "--network", "host",
                            "-m", f"{MEM}m", "--cpus", str(CPUS), IMAGE, "sleep", "600"],
                           check=True, capture_output=True)
        return time.perf_counter() - t0
    finally:
        remove_labelled(label)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50)
    n = ap.parse_args().count
    container = ContainerInfo("DOCKER", DockerInfo(IMAGE))
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        say(f"Corral: {n} containers in one ACCEPT on one agent")
        cluster = None
        try:
            corral_s, cluster = corral_launch(
                Path(tmp), n, f"cpus:{n * CPUS + 1:.2f};mem:{n * MEM + 256};disk:1024",
                ("--containerizers=mesos,docker",),
                lambda left, i: left.take(f"box-{i}", "sleep 600", cpus=CPUS, mem=MEM,
                                          container=container),
                timeout=600)
        finally:
            if cluster is not None:
                say("stopping (the agent stops its containers)")
                cluster.stop()
            remove_labelled(f"{LABEL_AGENT}={os.path.abspath(Path(tmp) / 'agent1')}")
    say(f"baseline: {n} x docker run -d")
    docker_s = docker_loop(n)
    finish("launch_docker", {"count": n, "corral_s": round(corral_s, 3),
                             "docker_s": round(docker_s, 3),
                             "corral_per_s": round(n / corral_s, 2),
                             "docker_per_s": round(n / docker_s, 2),
                             "ratio": round(corral_s / docker_s, 2)})


if __name__ == "__main__":
    main()
