"""One Marathon app of many instances on many simulated agents, all RUNNING, end to end.

A real master, `--agents` simulated agents (mesos_agent.fleet: real agent cores on real
sockets, tasks that do not run), a real Marathon. Reports the time from POST /v2/apps to all
instances RUNNING, the placement rate, and /v2/apps latency (p50/p99) sampled while it runs.

    python -m benchmarks.marathon_launch --instances 10000 --agents 100 [--secure]

With `--secure` the master runs with CURVE and authenticates agents and frameworks (the
fleet and Marathon have credentials); compare with the same run without it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
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


def sample(url: str, stop: threading.Event, out: list[float]) -> None:
    """GET `url` every 0.2 s until `stop`, recording latencies in ms."""
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                r.read()
            out.append((time.perf_counter() - t0) * 1000)
        except OSError:
            pass
        stop.wait(0.2)


def _profile(pid: int, out: str) -> subprocess.Popen:
    """py-spy recording Marathon until the run ends (SIGINT makes it write `out`)."""
    exe = shutil.which("py-spy") or str(Path(__file__).resolve().parents[1] / ".venv/bin/py-spy")
    say(f"profiling Marathon (pid {pid}) into {out}")
    fmt = "raw" if out.endswith(".txt") else "flamegraph"
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "50", "--nonblocking",
                             "--format", fmt, "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _security(root: Path, on: bool) -> tuple[list[str], list[str], list[str]]:
    """Master, fleet and Marathon flags: CURVE (the key the master publishes) and
    authentication of agents and frameworks, or nothing."""
    if not on:
        return [], [], []
    creds, agent, secret = root / "credentials.json", root / "agent.json", root / "mara"
    creds.write_text(json.dumps({"credentials": [{"principal": "agent", "secret": "a-s"},
                                                 {"principal": "marathon", "secret": "m-s"}]}))
    agent.write_text(json.dumps({"principal": "agent", "secret": "a-s"}))
    secret.write_text("m-s\n")
    return (["--zmq_curve", f"--credentials={creds}", "--authenticate_agents",
             "--authenticate_frameworks"], [f"--credential={agent}"],
            ["--mesos_authentication_principal=marathon",
             f"--mesos_authentication_secret_file={secret}"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--secure", action="store_true",
                    help="CURVE and authentication on: the master refuses agents and "
                         "frameworks without a credential; Marathon and the agents have one")
    ap.add_argument("--profile", default=None,
                    help="py-spy profile of Marathon: .svg flame graph, .txt collapsed stacks")
    args = ap.parse_args()
    res = agent_resources(args.instances, args.agents)
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), log_level="WARNING")
        fleets = []
        spy = None
        stop = threading.Event()
        lat: list[float] = []
        pings: list[float] = []
        try:
            master_flags, fleet_flags, marathon_flags = _security(Path(tmp), args.secure)
            cluster.start_master(*master_flags)
            fleets = start_fleets(cluster, args.agents, res, *fleet_flags)
            marathon = cluster.start_marathon(0, *marathon_flags)
            base = marathon.field("http")
            say(f"{args.agents} simulated agents and Marathon up; "
                f"posting {args.instances} instances")
            spy = _profile(marathon.pid, args.profile) if args.profile else None
            samplers = [threading.Thread(target=sample, args=(f"{base}{path}", stop, out),
                                         daemon=True)
                        for path, out in (("/v2/apps", lat), ("/ping", pings))]
            t0 = time.perf_counter()
            assert post(f"{base}/v2/apps", {"id": "/bench", "cmd": "run-forever", "cpus": 0.01,
                                            "mem": 1, "instances": args.instances,
                                            "portDefinitions": []}) == 201  # no ports
            for th in samplers:
                th.start()
            running = 0
            while running < args.instances:
                if time.perf_counter() - t0 > args.timeout:
                    raise SystemExit(f"only {running} of {args.instances} running in time")
                time.sleep(0.5)
                # the list carries the counts; /v2/apps/bench would embed every task
                running = next(a["tasksRunning"] for a in get(f"{base}/v2/apps")["apps"]
                               if a["id"] == "/bench")
            all_running = time.perf_counter() - t0
            say(f"all {args.instances} running after {all_running:.1f}s")
            # the master's books must agree with Marathon's count (not part of the timing)
            metrics = get(f"http://{cluster.master_addr}/metrics/snapshot")
            master_running = int(metrics["master/tasks_running"])
            say(f"the master counts {master_running} tasks running")
        finally:
            stop.set()
            if spy is not None:
                spy.send_signal(2)  # py-spy writes its flame graph on SIGINT
                spy.wait(60)
            for f in fleets:
                f.stop()
            cluster.stop()
    finish("marathon_launch", {
        "instances": args.instances, "agents": args.agents, "secure": args.secure,
        "all_running_s": round(all_running, 2), "master_tasks_running": master_running,
        "tasks_per_s": round(args.instances / all_running),
        "apps_p50_ms": round(percentile(lat, 50), 1) if lat else None,
        "apps_p99_ms": round(percentile(lat, 99), 1) if lat else None,
        "apps_samples": len(lat),
        "ping_p99_ms": round(percentile(pings, 99), 1) if pings else None})


if __name__ == "__main__":
    main()
