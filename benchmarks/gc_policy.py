"""`python -m benchmarks.gc_policy [--records 100000] [--arrivals 1000000] [--churn 5000000]`

Collector pauses of a daemon-like heap under gc policies: `--records` long-lived records
(dicts with a list and a dict inside, like task records) loaded at start-up, then a loop of
`--churn` short-lived allocations during which `--arrivals` more records arrive. Each policy
runs in a fresh interpreter (gc state is per process):
- `shared`: mesos_common.gc_policy as the daemons use it (THRESHOLDS, freeze after each full
  collection, collect_and_freeze after the load);
- `shared-<a,b,c>`: the same with other thresholds (e.g. the master's former 10000,10,10);
- `marathon-old`: Marathon before the shared policy (freeze at start-up and whenever the
  record count grew by a quarter, thresholds 10000,50,100).
Reports per policy: the longest pause, p99 pause, total collector time, collections per
generation, loop wall time.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks._common import finish, percentile, say

CHILD = r"""
import gc, json, sys, time
import mesos_common.gc_policy as gp
policy, records, arrivals, churn = sys.argv[1], *map(int, sys.argv[2:5])
def rec(i):
    return {"id": f"t{i}", "app": "/a", "state": "TASK_RUNNING", "ports": [i], "hc": {"ok": 1}}
tasks = {i: rec(i) for i in range(records)}
if policy == "marathon-old":
    gc.collect(); gc.freeze(); gc.set_threshold(10_000, 50, 100); frozen_at = len(tasks)
else:
    if policy.startswith("shared-"):
        gp.THRESHOLDS = tuple(int(x) for x in policy[7:].split(","))
    p = gp.GcPolicy(freeze=True); p.install(); p.collect_and_freeze()
pauses, gens, started = [], [0, 0, 0], [0.0]
def timing(phase, info):
    now = time.perf_counter()
    if phase == "start":
        started[0] = now
    else:
        pauses.append(now - started[0]); gens[info["generation"]] += 1
gc.callbacks.append(timing)
every = max(1, churn // max(1, arrivals))
t0 = time.perf_counter()
for i in range(churn):
    x = [i, {"k": i}]
    if i % every == 0:
        tasks[records + i] = rec(i)
    if i % 5000 == 0:  # the daemon's loop: a periodic turn
        if policy == "marathon-old":
            if len(tasks) > max(1000, frozen_at * 5 // 4):
                gc.freeze(); frozen_at = len(tasks)
        else:
            p.maybe_freeze()
wall = time.perf_counter() - t0
print(json.dumps({"pauses": pauses, "gens": gens, "wall": wall,
                  "frozen": gc.get_freeze_count()}))
"""


def run(policy: str, records: int, arrivals: int, churn: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, policy, str(records), str(arrivals),
                          str(churn)], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    pauses = data["pauses"] or [0.0]
    return {"max_pause_ms": round(max(pauses) * 1000, 1),
            "p99_pause_ms": round(percentile(pauses, 99) * 1000, 1),
            "gc_total_ms": round(sum(pauses) * 1000),
            "collections_by_generation": data["gens"], "loop_s": round(data["wall"], 2),
            "frozen_objects": data["frozen"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--arrivals", type=int, default=1_000_000)
    ap.add_argument("--churn", type=int, default=5_000_000)
    ap.add_argument("--policies", default="shared,shared-10000,10,10,marathon-old")
    args = ap.parse_args()
    names, parts = [], args.policies.split(",")
    while parts:  # "shared-a,b,c" carries commas of its own
        head = parts.pop(0)
        if head.startswith("shared-"):
            head = ",".join([head, *parts[:2]])
            parts = parts[2:]
        names.append(head)
    results = {}
    for name in names:
        say(f"{name}: {args.records} records, {args.arrivals} arrive in {args.churn} allocations")
        results[name] = run(name, args.records, args.arrivals, args.churn)
        say(f"{name}: {results[name]}")
    finish("gc_policy", {"records": args.records, "arrivals": args.arrivals,
                         "churn": args.churn, "policies": results})


if __name__ == "__main__":
    main()
