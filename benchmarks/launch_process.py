"""N `sleep` process tasks on one agent through Corral vs a raw `subprocess.Popen` loop.

Corral: ACCEPT of N tasks -> the N-th TASK_RUNNING (master, agent, per-task cgroups,
checkpoints, status updates all included). Baseline in the same run: Popen of the same N
`sleep` processes, each in its own session, timed before and after Corral (`popen_s` is
their mean: the host's load drifts). `ratio` = Corral's time / Popen's time.

CPU seconds too, which the host's other load does not change much: `corral_cpu_s` is what
the master, the agent (with its launch helpers) and this process (the framework) used from
ACCEPT to the last TASK_RUNNING plus what the N task processes had used by then (their
start: fork, exec), and `corral_cpu_split_s` the same per process (master, agent1,
framework, tasks); `popen_cpu_s` the same for the Popen loop (this process plus its N children).

    python -m benchmarks.launch_process --count 1000

The agent's work dir is a temporary directory (`TMPDIR`, else /tmp); `work_dir_mkdir_ms`
is the cost of one inode there, measured in the same run (see `inode_cost_ms`).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks._common import finish, say
from benchmarks._launch import corral_launch
from mesos_common import launch_log
from mesos_common.daemons import LocalCluster, kill_task_processes


def cpu_s(pid: int) -> float:
    """Seconds a live process's threads have run (schedstat: nanoseconds, where /proc stat
    counts 10 ms ticks and a `sleep` that just started has used none); 0 when it is gone."""
    total = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in threads:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def helpers(pid: int) -> list[int]:
    """A daemon's own child processes (the agent's launch helpers; the tasks are the
    helpers' children), whose CPU is the daemon's."""
    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def task_pids(work_dir: Path) -> list[int]:
    return list(launch_log.task_pids(str(work_dir)).values())


def inode_cost_ms(root: str, n: int = 500) -> float:
    """CPU ms to create one directory under `root` now. The agent creates six inodes per
    task (sandbox dirs, `latest`, stdout, stderr); on this host's ext4 that costs 0.01 ms
    in a quiet directory and 0.15-0.2 ms in one with a history of churn (e.g. /tmp), so the
    figure says how much of `corral_s` the filesystem's state decided. The probe's
    directories stay until `root` goes: removing them now would itself churn the group
    the agent is about to use (ext4 without a journal skips recently freed inodes)."""
    d = tempfile.mkdtemp(prefix="corral-inode-", dir=root)
    t = time.thread_time()
    for i in range(n):
        os.mkdir(os.path.join(d, str(i)))
    return (time.thread_time() - t) * 1000 / n


def popen_loop(n: int) -> tuple[float, float]:
    """(seconds, cpu seconds) of n x Popen(['sleep', '600'])."""
    procs = []
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        for _ in range(n):
            procs.append(subprocess.Popen(["sleep", "600"], start_new_session=True,
                                          stdin=subprocess.DEVNULL))
        took = time.perf_counter() - t0
        cpu = time.process_time() - cpu0 + sum(cpu_s(p.pid) for p in procs)
        return took, cpu
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
    say(f"baseline: {n} x subprocess.Popen(['sleep', '600'])")
    popen_before, popen_cpu = popen_loop(n)
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        inode_ms = inode_cost_ms(tmp)
        say(f"Corral: {n} sleep tasks in one ACCEPT on one agent ({isolation})")
        cluster = None
        start_cpu: dict[str, float] = {}
        end_cpu: dict[str, float] = {}

        def cpu_by_process(c: LocalCluster) -> dict[str, float]:  # the framework: ours
            out = {d.name: cpu_s(d.pid) + sum(cpu_s(h) for h in helpers(d.pid))
                   for d in c.daemons()}
            out["framework"] = time.process_time()
            return out

        def at_end(c: LocalCluster) -> None:
            end_cpu.update(cpu_by_process(c))
            end_cpu["tasks"] = sum(cpu_s(p) for d in c.agent_dirs for p in task_pids(d))
        try:
            corral_s, cluster = corral_launch(
                Path(tmp), n, f"cpus:{n * 0.01 + 1:.2f};mem:{n * 8 + 256};disk:1024",
                (f"--isolation={isolation}",),
                lambda left, i: left.take(f"sleep-{i}", "sleep 600", cpus=0.01, mem=8),
                timeout=600, before=lambda c: start_cpu.update(cpu_by_process(c)),
                after=at_end)
            split = {k: round(v - start_cpu.get(k, 0.0), 2) for k, v in end_cpu.items()}
            corral_cpu = sum(end_cpu.values()) - sum(start_cpu.values())
        finally:
            if cluster is not None:
                say("stopping (the agent kills its tasks)")
                cluster.stop()
            for d in Path(tmp).glob("agent*"):
                kill_task_processes(d)
    say(f"baseline again: {n} x subprocess.Popen(['sleep', '600'])")
    popen_after, cpu_after = popen_loop(n)
    popen_s = (popen_before + popen_after) / 2
    finish("launch_process", {"count": n, "isolation": isolation,
                              "corral_s": round(corral_s, 3), "popen_s": round(popen_s, 3),
                              "ratio": round(corral_s / popen_s, 2),
                              "popen_before_s": round(popen_before, 3),
                              "popen_after_s": round(popen_after, 3),
                              "corral_cpu_s": round(corral_cpu, 2), "corral_cpu_split_s": split,
                              "popen_cpu_s": round((popen_cpu + cpu_after) / 2, 2),
                              "work_dir": tempfile.gettempdir(),
                              "work_dir_mkdir_ms": round(inode_ms, 3),
                              "load_avg_1m": round(os.getloadavg()[0], 1)})


if __name__ == "__main__":
    main()
