"""One Marathon app of many instances on many simulated agents, all RUNNING, end to end.

A real master, `--agents` simulated agents (mesos_agent.fleet: real agent cores on real
sockets, tasks that do not run), a real Marathon. Reports the time from POST /v2/apps to all
instances RUNNING, the placement rate, and /v2/apps latency (p50/p99) sampled while it runs.

    python -m benchmarks.marathon_launch --instances 10000 --agents 100
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks._common import finish, percentile, say
from benchmarks._fleet import agent_resources, start_fleets
from mesos_common.daemons import LocalCluster



def get(url: str, timeout: float = 60.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def post(url: str, body: dict) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status


def sample_apps(base: str, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            get(f"{base}/v2/apps")
            out.append((time.perf_counter() - t0) * 1000)
        except OSError:
            pass
        stop.wait(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    res = agent_resources(args.instances, args.agents)
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), log_level="WARNING")
        fleets = []
        stop, lat = threading.Event(), []
        try:
            cluster.start_master()
            fleets = start_fleets(cluster, args.agents, res)
            marathon = cluster.start_marathon()
            base = marathon.field("http")
            say(f"{args.agents} simulated agents and Marathon up; posting {args.instances} instances")
            sampler = threading.Thread(target=sample_apps, args=(base, stop, lat), daemon=True)
            t0 = time.perf_counter()
            assert post(f"{base}/v2/apps", {"id": "/bench", "cmd": "run-forever", "cpus": 0.01,
                                            "mem": 1, "instances": args.instances,
                                            "portDefinitions": []}) == 201  # no ports
            sampler.start()
            running = 0
            while running < args.instances:
                if time.perf_counter() - t0 > args.timeout:
                    raise SystemExit(f"only {running} of {args.instances} running in time")
                time.sleep(0.5)
                running = get(f"{base}/v2/apps/bench")["app"]["tasksRunning"]
            all_running = time.perf_counter() - t0
            say(f"all {args.instances} running after {all_running:.1f}s")
        finally:
            stop.set()
            for f in fleets:
                f.stop()
            cluster.stop()
    finish("marathon_launch", {
        "instances": args.instances, "agents": args.agents,
        "all_running_s": round(all_running, 2),
        "tasks_per_s": round(args.instances / all_running),
        "apps_p50_ms": round(percentile(lat, 50), 1) if lat else None,
        "apps_p99_ms": round(percentile(lat, 99), 1) if lat else None,
        "apps_samples": len(lat)})


if __name__ == "__main__":
    main()
