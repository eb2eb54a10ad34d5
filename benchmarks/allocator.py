"""Mesos' DeclineOffers allocator benchmark (src/tests/hierarchical_allocator_tests.cpp).

Frameworks (role `*`) are added, then agents of `cpus:24;mem:4096;disk:4096;ports:[31000-32000]`
each with `cpus:16;mem:2014;disk:1024` and 16 port fragments already used by framework
`i % F`. Then rounds: every offer of the previous round is declined with an (effectively)
infinite filter, time advances one allocation interval and one allocation cycle runs, until
every framework has refused every agent (Mesos loops 2F rounds; the rounds after that make no
offers). `cycle_s` is the median time of a cycle that made offers (the max alongside);
`add_agents_s` the time to add every agent. Wall-clock figures, with the process's CPU time
beside them (`*_cpu_s`: close to what the wall clock shows on a machine nobody else uses).
Pure allocator, no processes.

    python -m benchmarks.allocator --agents 10000 --frameworks 1000
    python -m benchmarks.allocator            # the grid: 1k/5k/10k agents x 1/100/1000 fws
"""
from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import sys
import time
from typing import Any

from benchmarks._common import finish, say
from mesos_common.resources import Resources
from mesos_master.allocator.hierarchical import HierarchicalAllocator

AGENT = "cpus:24;mem:4096;disk:4096;ports:[31000-32000]"
INTERVAL = 1.0  # Mesos' default allocation_interval in that benchmark
GRID_AGENTS = (1000, 5000, 10000)
GRID_FRAMEWORKS = (1, 100, 1000)


def _used() -> Resources:
    """cpus:16;mem:2014;disk:1024 plus 16 fragments of [31000-32000] (Mesos `fragment`)."""
    step = 1001 // 16
    ports = ",".join(f"{31000 + i * step}-{31000 + i * step + step // 2}" for i in range(16))
    return Resources.parse(f"cpus:16;mem:2014;disk:1024;ports:[{ports}]")


def run(agents: int, frameworks: int, rounds: int | None) -> dict:
    alloc = HierarchicalAllocator(random.Random(1))
    fws = [f"fw-{i}" for i in range(frameworks)]
    t = time.perf_counter()
    for fw in fws:
        alloc.add_framework(fw, frozenset({"*"}), {}, True)
    add_fws = time.perf_counter() - t
    total, used = Resources.parse(AGENT), _used()
    gc.collect()
    gc.disable()  # as in any long-lived daemon tuned for throughput; re-enabled below
    names = [f"agent-{i}" for i in range(agents)]
    t, c = time.perf_counter(), time.process_time()
    for i in range(agents):
        alloc.add_agent(names[i], total, {fws[i % frameworks]: used})
    add_agents, add_agents_cpu = time.perf_counter() - t, time.process_time() - c
    say(f"{agents} agents x {frameworks} frameworks: added frameworks in {add_fws:.3f}s, "
        f"agents in {add_agents:.3f}s")
    now, declined = 0.0, 0
    offers: list[Any] = []
    cycles: list[tuple[float, int, float]] = []
    limit = rounds if rounds is not None else 2 * frameworks
    for r in range(limit):
        for g in offers:
            alloc.recover(g.framework_id, g.agent_id, g.resources, 2**31 - 1, now)
        declined += len(offers)
        now += INTERVAL
        t, c = time.perf_counter(), time.process_time()
        offers = alloc.allocate(now)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        cycles.append((dt, len(offers), dc))
        if r < 3 or r % max(1, limit // 10) == 0 or not offers:
            say(f"round {r}: allocate() took {dt:.4f}s (cpu {dc:.4f}s) to make {len(offers)} "
                f"offers after filtering {declined} offers")
        if not offers:
            break
    gc.enable()
    busy = [dt for dt, n, _ in cycles if n] or [cycles[0][0]]
    busy_cpu = [dc for _, n, dc in cycles if n] or [cycles[0][2]]
    return {"agents": agents, "frameworks": frameworks, "add_agents_s": round(add_agents, 4),
            "add_agents_cpu_s": round(add_agents_cpu, 4), "add_frameworks_s": round(add_fws, 4),
            "cycle_s": round(statistics.median(busy), 4), "cycle_max_s": round(max(busy), 4),
            "cycle_cpu_s": round(statistics.median(busy_cpu), 4),
            "cycle_cpu_max_s": round(max(busy_cpu), 4),
            "first_cycle_s": round(cycles[0][0], 4), "rounds": len(cycles),
            "offers_per_round_first": cycles[0][1],
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int)
    p.add_argument("--frameworks", type=int)
    p.add_argument("--rounds", type=int, default=None,
                   help="stop after this many rounds (default: until no offers, at most 2F)")
    a = p.parse_args(argv)
    if a.agents is not None or a.frameworks is not None:
        result = run(a.agents or 10000, a.frameworks or 1000, a.rounds)
        finish("allocator", result)
        return 0
    grid = []
    for n in GRID_AGENTS:
        for f in GRID_FRAMEWORKS:
            grid.append(run(n, f, a.rounds))
            say(f"=> {grid[-1]}")
    big = next(g for g in grid if g["agents"] == 10000 and g["frameworks"] == 1000)
    finish("allocator", {"cycle_s": big["cycle_s"], "add_agents_s": big["add_agents_s"],
                         "grid": grid})
    return 0


if __name__ == "__main__":
    sys.exit(main())
