"""N `sleep` process tasks on one agent through Corral vs a raw `subprocess.Popen` loop.

Corral: ACCEPT of N tasks -> the N-th TASK_RUNNING (master, agent, per-task cgroups,
checkpoints, status updates all included). Baseline in the same run: Popen of the same N
`sleep` processes, each in its own session. `ratio` = Corral's time / Popen's time.

    python -m benchmarks.launch_process --count 1000
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._common import finish, say
from benchmarks._launch import corral_launch
from mesos_common.daemons import kill_task_processes


def popen_loop(n: int) -> float:
    procs = []
    t0 = time.perf_counter()
    try:
        for _ in range(n):
            procs.append(subprocess.Popen(["sleep", "600"], start_new_session=True,
                                          stdin=subprocess.DEVNULL))
        return time.perf_counter() - t0
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--isolation", default="cgroups", choices=["cgroups", "rlimits", "none"])
    n = ap.parse_args().count
    isolation = ap.parse_args().isolation
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        say(f"Corral: {n} sleep tasks in one ACCEPT on one agent ({isolation})")
        cluster = None
        try:
            corral_s, cluster = corral_launch(
                Path(tmp), n, f"cpus:{n * 0.01 + 1:.2f};mem:{n * 8 + 256};disk:1024",
                (f"--isolation={isolation}",),
                lambda left, i: left.take(f"sleep-{i}", "sleep 600", cpus=0.01, mem=8),
                timeout=600)
        finally:
            if cluster is not None:
                say("stopping (the agent kills its tasks)")
                cluster.stop()
            for d in Path(tmp).glob("agent*"):
                kill_task_processes(d)
    say(f"baseline: {n} x subprocess.Popen(['sleep', '600'])")
    popen_s = popen_loop(n)
    finish("launch_process", {"count": n, "isolation": isolation,
                              "corral_s": round(corral_s, 3), "popen_s": round(popen_s, 3),
                              "ratio": round(corral_s / popen_s, 2)})


if __name__ == "__main__":
    main()
