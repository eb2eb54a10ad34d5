"""`make bench`: run every benchmark with its default flags, one after another."""
from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    ["launch_latency", "--tasks", "100"],
    ["heartbeats"],
    ["master_messages"],
    ["master_memory", "--agents", "1000", "--tasks", "10000"],
    ["marathon_launch", "--instances", "10000", "--agents", "100"],
    ["failover", "--agents", "3"],
    ["marathon_failover", "--marathons", "2", "--instances", "20", "--rounds", "5"],
    ["allocator", "--agents", "10000", "--frameworks", "1000", "--rounds", "20"],
    ["launch_process", "--count", "1000"],
    ["launch_docker", "--count", "50"],
    ["marathon_docker", "--instances", "200"],
    ["gc_policy"],
    ["v1_launch", "--tasks", "1000"],
]


def main() -> int:
    failed = []
    for name, *args in BENCHMARKS:
        print(f"=== benchmarks.{name} {' '.join(args)}", flush=True)
        if subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *args]) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
