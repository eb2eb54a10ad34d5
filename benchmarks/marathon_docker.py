"""One Marathon app of N busybox containers on one agent, all RUNNING, against Docker Swarm and
a `docker run -d` loop on the same engine in the same run.

- Corral: a real master, one agent (`--containerizers=mesos,docker`) and Marathon; the time
  from POST /v2/apps to N tasks running.
- Swarm: `docker service create --replicas N` (a single-node swarm is initialised when none
  is active, and left afterwards); the time until N replicas run.
- `docker run -d`, N times one after another.

Every run is `sleep 600` in corral/busybox:test on the host network with 16 MB and 0.01 cpus.
The engine is left as found: each run's containers and the service are removed, a swarm this
benchmark started is left. Ratios are Corral's time over the other's (below 1: Corral faster).

    python -m benchmarks.marathon_docker --instances 200
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from benchmarks._common import finish, say, wait_until
from mesos_agent.containerizer.docker import LABEL_AGENT
from mesos_common.daemons import LocalCluster

BENCH = "marathon_docker"
IMAGE = "corral/busybox:test"
CPUS, MEM = 0.01, 16


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True,
                          check=check).stdout.strip()


def count(*filters: str) -> int:
    return len(docker("ps", "-q", *(f for x in filters for f in ("--filter", x))).split())


def remove_labelled(label: str) -> None:
    ids = docker("ps", "-aq", "--filter", f"label={label}").split()
    for i in range(0, len(ids), 100):
        docker("rm", "-f", *ids[i:i + 100], check=False)


def call(method: str, url: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
        return json.loads(text) if text else {}


def corral(n: int, timeout: float) -> tuple[float, int]:
    """(seconds to N running, the agent's most threads seen meanwhile)."""
    import psutil
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), log_level="WARNING")
        label = f"{LABEL_AGENT}={os.path.abspath(Path(tmp) / 'agent1')}"
        try:
            cluster.start_master()
            agent = cluster.start_agent(f"cpus:{n * CPUS + 2:.2f};mem:{n * MEM + 1024};"
                                        "disk:1024", "--containerizers=mesos,docker")
            base = cluster.start_marathon().field("http")
            threads = psutil.Process(agent.pid)
            say(f"Corral: posting one app of {n} containers")
            t0 = time.perf_counter()
            call("POST", f"{base}/v2/apps", {
                "id": "/bench", "instances": n, "cpus": CPUS, "mem": MEM, "cmd": "sleep 600",
                "portDefinitions": [], "container": {"type": "DOCKER",
                                                     "docker": {"image": IMAGE}}})
            most = 0

            def running() -> bool:
                nonlocal most
                most = max(most, threads.num_threads())
                return call("GET", f"{base}/v2/apps/bench")["app"]["tasksRunning"] >= n
            wait_until(running, timeout, f"{n} Corral tasks running", BENCH, 0.2)
            took = time.perf_counter() - t0
            say(f"Corral: {n} running after {took:.1f} s ({count('label=' + label)} "
                f"containers); agent threads at most {most}; removing the app")
            call("DELETE", f"{base}/v2/apps/bench")
            wait_until(lambda: count(f"label={label}") == 0, timeout, "Corral's containers gone",
                       BENCH, 1.0)
            return took, most
        finally:
            cluster.stop()
            remove_labelled(label)


def swarm(n: int, timeout: float) -> float:
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}")
    created = state == "inactive"
    if created:
        say("Swarm: initialising a single-node swarm (left afterwards)")
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    elif state != "active":
        raise SystemExit(f"{BENCH}: the engine's swarm is {state!r}; cannot compare with Swarm")
    name = f"corral-bench-{uuid.uuid4().hex[:8]}"
    label = f"com.docker.swarm.service.name={name}"
    try:
        say(f"Swarm: docker service create --replicas {n}")
        t0 = time.perf_counter()
        docker("service", "create", "--detach", "--name", name, "--replicas", str(n),
               "--no-resolve-image", "--network", "host", "--limit-memory", f"{MEM}m",
               "--limit-cpu", str(CPUS), IMAGE, "sleep", "600")

        def replicas() -> bool:
            running, _, wanted = docker("service", "ls", "--filter", f"name={name}",
                                        "--format", "{{.Replicas}}").partition("/")
            return running.isdigit() and int(running) >= n
        wait_until(replicas, timeout, f"{n} swarm replicas running", BENCH, 0.2)
        took = time.perf_counter() - t0
        say(f"Swarm: {n} running after {took:.1f} s ({count('label=' + label)} containers)")
        return took
    finally:
        docker("service", "rm", name, check=False)
        wait_until(lambda: docker("ps", "-aq", "--filter", f"label={label}") == "", timeout,
                   "the service's containers gone", BENCH, 1.0)
        if created:
            docker("swarm", "leave", "--force", check=False)


def docker_run(n: int) -> float:
    label = f"corral.bench={uuid.uuid4().hex[:8]}"
    say(f"docker run -d: {n} times")
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            docker("run", "-d", "--label", label, "--network", "host", "-m", f"{MEM}m",
                   "--cpus", str(CPUS), IMAGE, "sleep", "600")
        took = time.perf_counter() - t0
        say(f"docker run -d: {n} running after {took:.1f} s")
        return took
    finally:
        remove_labelled(label)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()
    n = args.instances
    corral_s, threads = corral(n, args.timeout)
    swarm_s = swarm(n, args.timeout)
    docker_run_s = docker_run(n)
    finish(BENCH, {
        "instances": n, "corral_s": round(corral_s, 2), "swarm_s": round(swarm_s, 2),
        "docker_run_s": round(docker_run_s, 2),
        "corral_vs_swarm": round(corral_s / swarm_s, 2),
        "corral_vs_docker_run": round(corral_s / docker_run_s, 2),
        "agent_threads_max": threads})


if __name__ == "__main__":
    main()
